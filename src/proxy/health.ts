/**
 * Background health probing: GET <engine>/health every interval; 200 puts an engine (back) in rotation,
 * anything else (status, connection error, timeout) takes it out. Only one probe per engine at a time, and an
 * engine its supervisor marked down for good is not probed at all.
 *
 * Each probe has its own abort flag (dropped when the probe ends) and is bounded by undici's own header/body
 * timers, so probing forever adds no listener and leaves no timer behind; stop() aborts the probes in flight.
 */
import type { EngineState } from './engine.js';
import { AbortFlag } from './abort-flag.js';
import { callUpstream } from './upstream-call.js';

export interface HealthProberOptions {
  intervalMs: number;
  /** Per-probe timeout (default max(intervalMs, 5 s): a loaded engine answers /health slowly). */
  timeoutMs?: number;
  onChange?: (engine: EngineState, healthy: boolean, reason: string) => void;
}

export class HealthProber {
  private timer: NodeJS.Timeout | undefined;
  private readonly probing = new Map<EngineState, AbortFlag>();
  private stopped = false;

  constructor(
    private readonly engines: readonly EngineState[],
    private readonly opts: HealthProberOptions,
  ) {}

  start(): void {
    void this.probeAll();
    this.timer = setInterval(() => void this.probeAll(), this.opts.intervalMs);
    this.timer.unref();
  }

  stop(): void {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    for (const flag of this.probing.values()) flag.abort(new Error('health prober stopped'));
    this.probing.clear();
  }

  /** Probes in flight now (at most one per engine). */
  get inFlight(): number {
    return this.probing.size;
  }

  /** Probe every engine once (resolves when all probes finished). */
  async probeAll(): Promise<void> {
    await Promise.all(this.engines.map((e) => this.probe(e)));
  }

  private async probe(e: EngineState): Promise<void> {
    if (this.stopped || e.down !== null || this.probing.has(e)) return;
    const flag = new AbortFlag();
    this.probing.set(e, flag);
    const timeout = this.opts.timeoutMs ?? Math.max(this.opts.intervalMs, 5_000);
    const epoch = e.healthEpoch;
    let ok = false;
    let reason = '';
    try {
      const res = await callUpstream(e.pool, {
        method: 'GET',
        path: `${e.prefix}/health`,
        headers: {},
        body: null,
        signal: flag,
        headersTimeout: timeout,
        bodyTimeout: timeout,
      });
      await res.body.dump();
      ok = res.statusCode >= 200 && res.statusCode < 300;
      reason = `/health answered ${res.statusCode}`;
    } catch (err) {
      reason = `/health failed: ${(err as Error).message}`;
    } finally {
      if (this.probing.get(e) === flag) this.probing.delete(e);
    }
    if (this.stopped || e.healthEpoch !== epoch || e.down !== null) return;
    if (e.healthy !== ok) {
      e.healthy = ok;
      this.opts.onChange?.(e, ok, reason);
    }
  }
}
