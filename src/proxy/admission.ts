/**
 * Admission control: at most `maxConcurrent` requests inside the two stages at once, and a FIFO queue of at
 * most `queueSize` waiting behind them, each for at most `queueMs`. Beyond that callers are refused.
 */
import type { AbortLike } from './abort-flag.js';

export type AdmissionRejectReason = 'queue_full' | 'queue_timeout' | 'aborted' | 'closed';

export class AdmissionRejected extends Error {
  constructor(readonly reason: AdmissionRejectReason) {
    super(`admission rejected: ${reason}`);
  }
}

interface Waiter {
  resolve: () => void;
  reject: (e: AdmissionRejected) => void;
  timer: NodeJS.Timeout | undefined;
  done: boolean;
  enqueuedAt: number;
}

export interface AdmissionOptions {
  maxConcurrent: number;
  queueSize: number;
  queueMs: number;
}

export class Admission {
  private active = 0;
  private queue: Waiter[] = [];
  private head = 0;
  private waiting = 0;
  private closed = false;
  /** Called with the ms a queued request waited (admitted or not). */
  onWait: ((ms: number, admitted: boolean) => void) | undefined;

  constructor(private readonly opts: AdmissionOptions) {}

  get inFlight(): number {
    return this.active;
  }
  get queued(): number {
    return this.waiting;
  }

  /** Take a slot at once if one is free (fast path, no promise). */
  tryAcquire(): boolean {
    if (this.closed) return false;
    if (this.active < this.opts.maxConcurrent && this.waiting === 0) {
      this.active++;
      return true;
    }
    return false;
  }

  /**
   * Wait in the FIFO queue for a slot. Rejects with AdmissionRejected: `queue_full` at once when the queue is
   * full, `queue_timeout` after queueMs, `aborted` when the signal fires (the caller's client went away).
   */
  acquire(signal?: AbortLike): Promise<void> {
    if (this.tryAcquire()) return Promise.resolve();
    if (this.closed) return Promise.reject(new AdmissionRejected('closed'));
    if (this.waiting >= this.opts.queueSize) return Promise.reject(new AdmissionRejected('queue_full'));
    return new Promise<void>((resolve, reject) => {
      const w: Waiter = { resolve, reject, timer: undefined, done: false, enqueuedAt: performance.now() };
      const fail = (reason: AdmissionRejectReason): void => {
        if (w.done) return;
        w.done = true;
        this.waiting--;
        if (w.timer) clearTimeout(w.timer);
        signal?.removeEventListener('abort', onAbort);
        this.onWait?.(performance.now() - w.enqueuedAt, false);
        reject(new AdmissionRejected(reason));
      };
      const onAbort = (): void => fail('aborted');
      w.timer = setTimeout(() => fail('queue_timeout'), this.opts.queueMs);
      w.resolve = () => {
        if (w.timer) clearTimeout(w.timer);
        signal?.removeEventListener('abort', onAbort);
        this.onWait?.(performance.now() - w.enqueuedAt, true);
        resolve();
      };
      w.reject = (e) => fail(e.reason);
      if (signal) {
        if (signal.aborted) return fail('aborted');
        signal.addEventListener('abort', onAbort, { once: true });
      }
      this.queue.push(w);
      this.waiting++;
    });
  }

  /** Give a slot back; the oldest live waiter (if any) gets it. */
  release(): void {
    while (this.head < this.queue.length) {
      const w = this.queue[this.head++]!;
      if (this.head > 1024 && this.head * 2 > this.queue.length) {
        this.queue = this.queue.slice(this.head);
        this.head = 0;
      }
      if (w.done) continue;
      w.done = true;
      this.waiting--;
      w.resolve(); // the slot passes straight to the waiter: `active` is unchanged
      return;
    }
    this.queue.length = 0;
    this.head = 0;
    this.active--;
  }

  /** Refuse every waiter (proxy shutting down). */
  close(): void {
    this.closed = true;
    for (let i = this.head; i < this.queue.length; i++) {
      const w = this.queue[i]!;
      if (!w.done) w.reject(new AdmissionRejected('closed'));
    }
    this.queue = [];
    this.head = 0;
  }
}
