/**
 * A real token bucket: `rate` tokens per second refill a bucket of `burst` tokens. One token is charged per
 * client request (never per stage). Tokens may go negative through `reserve()`, which is how waiting callers
 * queue up in FIFO order without a timer loop: the n-th waiter simply sleeps until its token has accrued.
 */
export interface TokenBucketOptions {
  /** Tokens per second (> 0). */
  rate: number;
  /** Capacity; defaults to max(1, rate). */
  burst?: number;
  /** Clock in milliseconds (injectable for tests). */
  now?: () => number;
}

export class TokenBucket {
  readonly rate: number;
  readonly burst: number;
  private tokens: number;
  private last: number;
  private readonly now: () => number;

  constructor(opts: TokenBucketOptions) {
    if (!(opts.rate > 0) || !Number.isFinite(opts.rate)) throw new RangeError('token bucket rate must be > 0');
    this.rate = opts.rate;
    this.burst = Math.max(1, opts.burst ?? Math.ceil(opts.rate));
    this.now = opts.now ?? (() => performance.now());
    this.tokens = this.burst;
    this.last = this.now();
  }

  private refill(): void {
    const t = this.now();
    const elapsed = t - this.last;
    if (elapsed > 0) {
      this.tokens = Math.min(this.burst, this.tokens + (elapsed * this.rate) / 1000);
      this.last = t;
    }
  }

  /** Take a token if one is available now: returns 0; otherwise takes nothing and returns ms until one is. */
  tryTake(): number {
    this.refill();
    if (this.tokens >= 1) {
      this.tokens -= 1;
      return 0;
    }
    return Math.max(1, ((1 - this.tokens) * 1000) / this.rate);
  }

  /**
   * Reserve a token, possibly in the future: returns how many ms the caller must wait before using it (0 = now),
   * or null (nothing reserved) when that wait would exceed `maxWaitMs`.
   */
  reserve(maxWaitMs = Infinity): number | null {
    this.refill();
    const after = this.tokens - 1;
    const waitMs = after >= 0 ? 0 : (-after * 1000) / this.rate;
    if (waitMs > maxWaitMs) return null;
    this.tokens = after;
    return waitMs;
  }

  /** Give back a reserved token whose caller went away before using it. */
  refund(): void {
    this.refill();
    this.tokens = Math.min(this.burst, this.tokens + 1);
  }

  /** Tokens available now (may be negative while callers are waiting). */
  available(): number {
    this.refill();
    return this.tokens;
  }
}
