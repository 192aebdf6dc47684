/**
 * A minimal abort signal for one proxied request. undici accepts any EventEmitter- or EventTarget-shaped
 * signal; a real AbortController/AbortSignal pair (an EventTarget with its own machinery) cost about a fifth of
 * the proxy's throughput in the proxy bench, for an event that fires only when a client goes away.
 */
type Listener = () => void;

export interface AbortLike {
  readonly aborted: boolean;
  readonly reason: unknown;
  addEventListener(type: 'abort', fn: Listener, opts?: { once?: boolean }): void;
  removeEventListener(type: 'abort', fn: Listener): void;
}

export class AbortFlag implements AbortLike {
  aborted = false;
  reason: unknown = undefined;
  private listeners: Listener[] | null = null;

  abort(reason?: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.reason = reason;
    const ls = this.listeners;
    this.listeners = null;
    if (ls) for (const fn of ls) fn();
  }

  // EventTarget shape (used by undici and by the admission queue); listeners always fire once.
  addEventListener(_type: 'abort', fn: Listener): void {
    (this.listeners ??= []).push(fn);
  }

  removeEventListener(_type: 'abort', fn: Listener): void {
    const ls = this.listeners;
    if (!ls) return;
    const i = ls.lastIndexOf(fn);
    if (i >= 0) ls.splice(i, 1);
  }

  // EventEmitter shape, for callers that check for `on`.
  on(type: 'abort', fn: Listener): this {
    this.addEventListener(type, fn);
    return this;
  }

  once(type: 'abort', fn: Listener): this {
    this.addEventListener(type, fn);
    return this;
  }

  removeListener(type: 'abort', fn: Listener): this {
    this.removeEventListener(type, fn);
    return this;
  }
}
