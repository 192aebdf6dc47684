/**
 * Reading request bodies within bounds: a per-request size limit (413), a deadline for the whole body once the
 * proxy starts reading it (408: a client that trickles its body in is cut), and a global budget of bytes held
 * in memory across all requests. A body that does not fit the budget is not read until enough is given back
 * (the client waits on TCP backpressure, at most proxy.timeouts.queueMs, then 503), so a burst of huge bodies
 * cannot grow the process without limit.
 */
import type { IncomingMessage } from 'node:http';
import { ProxyFailure, clientGone } from './failures.js';
import type { AbortLike } from './abort-flag.js';

/** Emitted on a request whose body read ran out of time, with the ProxyFailure (see BodyDeadlines). */
const BODY_TIMEOUT = Symbol('pd.bodyTimeout');

/** A body read in progress: a node of BodyDeadlines' list. */
interface Read {
  deadline: number;
  /** The request being read; null once unlinked. */
  req: IncomingMessage | null;
  prev: Read | null;
  next: Read | null;
}

/**
 * The body reads in progress and the time each must be complete by. One interval timer for all of them (as
 * node checks its own header deadlines), so a request costs linking a node into a list, not a timer.
 *
 * A node points at the request, never at a closure of the read: when it held the read's callback, V8 soon
 * allocated those closures' contexts straight in the old generation (allocation-site pretenuring), everything
 * they reached was promoted, and the collector's extra work cost about a fifth of the proxy's throughput in the
 * proxy bench. The read is told of its deadline by an event on its request instead.
 */
export class BodyDeadlines {
  private head: Read | null = null;
  private readonly timer: NodeJS.Timeout;
  constructor(
    readonly timeoutMs: number,
    /** How long a read may take (timeoutMs, less the slack for when the checks come). */
    private readonly allowMs: number,
    intervalMs: number,
  ) {
    this.timer = setInterval(() => this.sweep(), intervalMs);
    this.timer.unref();
  }

  /** Watch a read: `req` gets a BODY_TIMEOUT event (with the failure) when it is late. */
  add(req: IncomingMessage): Read {
    const r: Read = { deadline: performance.now() + this.allowMs, req, prev: null, next: this.head };
    if (this.head !== null) this.head.prev = r;
    this.head = r;
    return r;
  }

  /** Unlink a read (a no-op once it was). */
  delete(r: Read): void {
    if (r.req === null) return;
    r.req = null;
    if (r.prev !== null) r.prev.next = r.next;
    else this.head = r.next;
    if (r.next !== null) r.next.prev = r.prev;
    r.prev = r.next = null;
  }

  private sweep(): void {
    if (this.head === null) return;
    const now = performance.now();
    let r: Read | null = this.head;
    while (r !== null) {
      const next: Read | null = r.next;
      if (r.deadline <= now) {
        const req = r.req!;
        this.delete(r);
        req.emit(
          BODY_TIMEOUT,
          new ProxyFailure('request_timeout', `The request body did not arrive within ${this.timeoutMs} ms (proxy.timeouts.requestMs).`),
        );
      }
      r = next;
    }
  }

  close(): void {
    clearInterval(this.timer);
    while (this.head !== null) this.delete(this.head);
  }
}

interface Waiter {
  n: number;
  resolve: () => void;
  reject: (e: ProxyFailure) => void;
}

/** Bytes of request bodies in memory at once: FIFO waiters, so a large body is not starved by small ones. */
export class ByteBudget {
  private used = 0;
  /** The most bytes held since the budget was last empty. */
  private peak = 0;
  private readonly waiters: Waiter[] = [];

  constructor(
    readonly capacity: number,
    /** Told when the budget empties again, with the peak since it was last empty. */
    private readonly onIdle?: (peakBytes: number) => void,
  ) {}

  get inUse(): number {
    return this.used;
  }

  tryTake(n: number): boolean {
    if (this.waiters.length > 0 || this.used + n > this.capacity) return false;
    this.used += n;
    if (this.used > this.peak) this.peak = this.used;
    return true;
  }

  /**
   * Wait (FIFO) until `n` bytes fit: rejects with body_budget after `timeoutMs`, with client_abort when `signal`
   * aborts.
   */
  take(n: number, signal: AbortLike, timeoutMs: number): Promise<void> {
    if (this.tryTake(n)) return Promise.resolve();
    return new Promise<void>((resolve, reject) => {
      const leave = (e: ProxyFailure): void => {
        clearTimeout(timer);
        signal.removeEventListener('abort', onAbort);
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        this.grant();
        reject(e);
      };
      const w: Waiter = {
        n,
        resolve: () => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          resolve();
        },
        reject: leave,
      };
      const onAbort = (): void => leave(clientGone());
      const timer = setTimeout(
        () =>
          leave(
            new ProxyFailure(
              'body_budget',
              `The request body waited ${timeoutMs} ms for room in the proxy's body budget ` +
                `(${this.capacity} bytes, proxy.bodyBudgetBytes; proxy.timeouts.queueMs).`,
              { retryAfter: 1 },
            ),
          ),
        timeoutMs,
      );
      signal.addEventListener('abort', onAbort, { once: true });
      this.waiters.push(w);
    });
  }

  give(n: number): void {
    if (n <= 0) return;
    this.used -= n;
    this.grant();
    if (this.used === 0) {
      const peak = this.peak;
      this.peak = 0;
      this.onIdle?.(peak);
    }
  }

  private grant(): void {
    while (this.waiters.length > 0 && this.used + this.waiters[0]!.n <= this.capacity) {
      const w = this.waiters.shift()!;
      this.used += w.n;
      if (this.used > this.peak) this.peak = this.used;
      w.resolve();
    }
  }

  /** Refuse every waiter (proxy shutting down). */
  close(): void {
    for (const w of this.waiters.splice(0)) w.reject(new ProxyFailure('closed', 'The proxy is shutting down.', { retryAfter: 1 }));
  }
}

/** What a request holds of the budget (given back when the body is no longer needed). */
export interface BodyHold {
  bodyBytes: number;
}

export class BodyReader {
  constructor(
    readonly maxBodyBytes: number,
    /** Longest wait for room in the budget (proxy.timeouts.queueMs). */
    private readonly waitMs: number,
    private readonly budget: ByteBudget,
    private readonly deadlines: BodyDeadlines,
  ) {}

  tooLargeMessage(): string {
    return `Request body is larger than the proxy's limit of ${this.maxBodyBytes} bytes (proxy.maxBodyBytes).`;
  }

  /** Read the whole body. Rejects with ProxyFailure (too_large, body_budget, request_timeout, client_abort). */
  read(req: IncomingMessage, hold: BodyHold, signal: AbortLike): Promise<Buffer> {
    const declared = Number(req.headers['content-length']);
    if (declared > this.maxBodyBytes) return Promise.reject(new ProxyFailure('too_large', this.tooLargeMessage()));
    const known = Number.isInteger(declared) && declared >= 0 ? declared : null;
    if (known !== null && known > 0) {
      if (!this.budget.tryTake(known))
        return this.budget.take(known, signal, this.waitMs).then(() => {
          hold.bodyBytes = known;
          return this.collect(req, hold, known);
        });
      hold.bodyBytes = known;
    }
    return this.collect(req, hold, known);
  }

  /**
   * Collect the body. With a Content-Length, chunks are copied into one buffer of that size as they come
   * (unless the body is one chunk): a list of chunks joined at the end leaves the allocator fragmented, and the
   * memory of a burst of large bodies was then never given back to the system.
   */
  private collect(req: IncomingMessage, hold: BodyHold, declared: number | null): Promise<Buffer> {
    const limit = this.maxBodyBytes;
    return new Promise((resolve, reject) => {
      let chunks: Buffer[] | null = declared === null ? [] : null;
      let first: Buffer | null = null;
      let whole: Buffer | null = null;
      let size = 0;
      const stop = (e: ProxyFailure): void => {
        this.deadlines.delete(read);
        req.off('data', onData);
        req.pause();
        reject(e);
      };
      const read = this.deadlines.add(req);
      req.on(BODY_TIMEOUT, stop);
      const onData = (c: Buffer): void => {
        const at = size;
        size += c.length;
        if (size > limit) return stop(new ProxyFailure('too_large', this.tooLargeMessage()));
        if (chunks === null) {
          // known length: node's parser never delivers more than it
          if (at === 0) first = c;
          else {
            if (whole === null) {
              whole = Buffer.allocUnsafeSlow(declared!);
              first!.copy(whole, 0);
              first = null;
            }
            c.copy(whole, at);
          }
          return;
        }
        // A chunked body takes its bytes as they come; one that does not fit is refused rather than parked
        // half-read (parked partial bodies could hold the whole budget and wait on each other).
        if (!this.budget.tryTake(c.length))
          return stop(
            new ProxyFailure(
              'body_budget',
              `The proxy holds ${this.budget.inUse} bytes of request bodies, its budget (proxy.bodyBudgetBytes); ` +
                'retry later, or send a Content-Length so the request can wait for room.',
              { retryAfter: 1 },
            ),
          );
        hold.bodyBytes += c.length;
        chunks.push(c);
      };
      req.on('data', onData);
      req.once('end', () => {
        this.deadlines.delete(read);
        if (chunks !== null) resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
        else resolve(whole !== null ? whole.subarray(0, size) : (first ?? Buffer.alloc(0)));
        chunks = null;
      });
      const onGone = (): void => {
        this.deadlines.delete(read);
        reject(clientGone());
      };
      req.once('error', onGone);
      req.once('aborted', onGone);
    });
  }
}
