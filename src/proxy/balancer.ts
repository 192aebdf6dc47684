/** Chooses an engine for a stage among the healthy ones: round-robin or least-in-flight (ties rotate). */
import type { EngineState } from './engine.js';

export type BalanceStrategy = 'round-robin' | 'least-in-flight';

export class Balancer {
  private next = 0;

  constructor(private readonly strategy: BalanceStrategy) {}

  /** A healthy engine other than `exclude`, or undefined when there is none. */
  pick(engines: readonly EngineState[], exclude?: EngineState): EngineState | undefined {
    const n = engines.length;
    if (n === 1) {
      const e = engines[0]!;
      return e.healthy && e !== exclude ? e : undefined;
    }
    const start = this.next % n;
    let best: EngineState | undefined;
    let bestIdx = -1;
    for (let i = 0; i < n; i++) {
      const idx = (start + i) % n;
      const e = engines[idx]!;
      if (!e.healthy || e === exclude) continue;
      if (this.strategy === 'round-robin') {
        best = e;
        bestIdx = idx;
        break;
      }
      if (best === undefined || e.inFlight < best.inFlight) {
        best = e;
        bestIdx = idx;
      }
    }
    if (best !== undefined) this.next = bestIdx + 1;
    return best;
  }
}
