/**
 * Giving memory back after a burst of large request bodies. Once the bodies are answered nothing allocates, so
 * V8 has no reason to collect: its heap (and the body buffers it keeps alive) stayed at its peak for a minute
 * or more. After a burst, one full collection a second later hands the memory back at once.
 *
 * The collector is reached the way `node --expose-gc` exposes it, in a context of its own (the flag only
 * applies to contexts created after it is set); where that is not possible, V8's own memory reducer still
 * shrinks the heap, only later.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

let collector: (() => void) | null | undefined;

function fullGc(): (() => void) | null {
  if (collector !== undefined) return collector;
  try {
    setFlagsFromString('--expose-gc');
    const gc: unknown = runInNewContext('gc');
    collector = typeof gc === 'function' ? (gc as () => void) : null;
  } catch {
    collector = null;
  }
  return collector;
}

/** Schedules one full collection after a burst of large bodies; close() cancels it. */
export class MemoryRelease {
  private timer: NodeJS.Timeout | undefined;

  constructor(
    /** A burst is when the bodies held at once reached this many bytes. */
    readonly burstBytes: number,
    private readonly delayMs = 1000,
  ) {}

  /** Called when the body bytes held drop to zero, with the most held since they were last zero. */
  idle(peakBytes: number): void {
    if (peakBytes < this.burstBytes || this.timer !== undefined) return;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      fullGc()?.();
    }, this.delayMs);
    this.timer.unref();
  }

  close(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
  }
}
