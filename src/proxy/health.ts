/**
 * Background health probing: GET <engine>/health every interval; 200 puts an engine (back) in rotation,
 * anything else (status, connection error, timeout) takes it out. Only one probe per engine at a time.
 */
import type { EngineState } from './engine.js';

export interface HealthProberOptions {
  intervalMs: number;
  /** Per-probe timeout (default max(intervalMs, 5 s): a loaded engine answers /health slowly). */
  timeoutMs?: number;
  onChange?: (engine: EngineState, healthy: boolean, reason: string) => void;
}

export class HealthProber {
  private timer: NodeJS.Timeout | undefined;
  private readonly busy = new Set<EngineState>();
  private readonly controller = new AbortController();
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
    this.controller.abort();
  }

  /** Probe every engine once (resolves when all probes finished). */
  async probeAll(): Promise<void> {
    await Promise.all(this.engines.map((e) => this.probe(e)));
  }

  private async probe(e: EngineState): Promise<void> {
    if (this.busy.has(e) || this.stopped) return;
    this.busy.add(e);
    const timeout = this.opts.timeoutMs ?? Math.max(this.opts.intervalMs, 5_000);
    const epoch = e.healthEpoch;
    let ok = false;
    let reason = '';
    try {
      const res = await e.pool.request({
        method: 'GET',
        path: `${e.prefix}/health`,
        headersTimeout: timeout,
        bodyTimeout: timeout,
        signal: AbortSignal.any([this.controller.signal, AbortSignal.timeout(timeout)]),
      });
      await res.body.dump();
      ok = res.statusCode >= 200 && res.statusCode < 300;
      reason = `/health answered ${res.statusCode}`;
    } catch (err) {
      reason = `/health failed: ${(err as Error).message}`;
    } finally {
      this.busy.delete(e);
    }
    if (this.stopped || e.healthEpoch !== epoch) return;
    if (e.healthy !== ok) {
      e.healthy = ok;
      this.opts.onChange?.(e, ok, reason);
    }
  }
}
