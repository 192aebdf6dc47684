/**
 * The one place that sleeps, waits with a deadline and polls. Every timer here is cleared when its wait ends and
 * every abort listener is removed, so a loop that sleeps a thousand times adds no listener and leaves no timer
 * behind; timers that only bound a wait are unref'd and never keep the process alive.
 */

/**
 * Resolves after `ms`, or at once when `signal` aborts (never rejects): true when the full time passed.
 * With `unref`, the timer does not keep the process alive (for pacing that must not delay an exit).
 */
export function sleep(ms: number, signal?: AbortSignal, opts: { unref?: boolean } = {}): Promise<boolean> {
  if (signal?.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const done = (full: boolean): void => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      resolve(full);
    };
    const onAbort = (): void => done(false);
    const timer = setTimeout(() => done(true), ms);
    if (opts.unref) timer.unref();
    signal?.addEventListener('abort', onAbort, { once: true });
  });
}

/** Thrown by withTimeout when the deadline passes first. */
export class TimeoutError extends Error {
  override readonly name = 'TimeoutError';
  readonly code = 'ETIMEDOUT';
  constructor(readonly ms: number, what = 'operation') {
    super(`${what} did not finish within ${ms} ms`);
  }
}

/**
 * Settles like `work`, or rejects with TimeoutError after `ms`. The timer is cleared as soon as either happens
 * and is unref'd, so a pending deadline never keeps the process alive. `work` may be a function that receives
 * an AbortSignal, which aborts when the deadline passes (so the work can stop too).
 */
export function withTimeout<T>(work: Promise<T> | ((signal: AbortSignal) => Promise<T>), ms: number, what?: string): Promise<T> {
  const ac = new AbortController();
  const promise = typeof work === 'function' ? work(ac.signal) : work;
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const e = new TimeoutError(ms, what);
      ac.abort(e);
      reject(e);
    }, ms);
    timer.unref();
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

/**
 * Call `check` every `intervalMs` until it returns a value other than undefined, the deadline passes (resolves
 * undefined) or `signal` aborts (resolves undefined). One timer at a time, no listener left behind.
 */
export async function pollUntil<T>(
  check: () => T | undefined | Promise<T | undefined>,
  opts: { intervalMs: number; timeoutMs: number; signal?: AbortSignal },
): Promise<T | undefined> {
  const deadline = Date.now() + opts.timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    const left = deadline - Date.now();
    if (left <= 0 || opts.signal?.aborted) return undefined;
    if (!(await sleep(Math.min(opts.intervalMs, left), opts.signal))) return undefined;
  }
}

/** A signal that aborts when any of `signals` does (AbortSignal.any, with the listeners it adds bounded by GC). */
export function anySignal(...signals: Array<AbortSignal | undefined>): AbortSignal {
  const present = signals.filter((s): s is AbortSignal => s !== undefined);
  return present.length === 1 ? present[0]! : AbortSignal.any(present);
}
