/**
 * A capacity search against a target: each probe is a built-in steady run (not archived as a run; the search
 * file keeps every probe), the KV cache cleared before it, warm-up requests once before the first probe.
 */
import type { PdConfig } from '../config/schema.js';
import { UsageError } from '../util/errors.js';
import type { SearchFlags } from './flags.js';
import type { LoadEvent } from './generator.js';
import type { GoodputSlos } from './result.js';
import { runBenchmark } from './run.js';
import { runSeed, type RequestOptions, type Workload } from './run-plan.js';
import { searchCapacity, writeSearch, type Probe, type SearchResult, type SearchSettings } from './search.js';

/** Search settings: flags over config bench.search. */
export function searchSettings(f: Partial<Pick<SearchFlags, 'goodput' | 'attainment' | 'precision' | 'budget' | 'duration' | 'minRate' | 'maxRate'>>, config: PdConfig): SearchSettings {
  const c = config.bench.search;
  const slos: GoodputSlos = f.goodput ?? c.goodput ?? {};
  if (Object.keys(slos).length === 0) {
    throw new UsageError('a capacity search needs SLOs: --goodput ttft:MS tpot:MS', {
      hint: 'e.g. pd bench search --goodput ttft:500 tpot:50 (or set bench.search.goodput in the config)',
    });
  }
  const s: SearchSettings = {
    slos,
    attainment: f.attainment ?? c.attainment,
    precision: f.precision ?? c.precision,
    budgetSeconds: f.budget ?? c.budgetSeconds,
    probeSeconds: f.duration ?? c.probeSeconds,
    minRate: f.minRate ?? c.minRate,
    maxRate: f.maxRate ?? c.maxRate,
  };
  if (s.minRate > s.maxRate) throw new UsageError(`--min-rate ${s.minRate} is above --max-rate ${s.maxRate}`, { hint: 'swap them' });
  return s;
}

export interface SearchTargetOptions {
  settings: SearchSettings;
  workload: Workload;
  target: string;
  set: string;
  resultsDir: string;
  model?: string;
  modelPath?: string;
  apiKey?: string;
  stateDir?: string;
  percentiles?: number[];
  request?: Partial<RequestOptions>;
  numWarmups?: number;
  /** Before each probe (clear the KV cache). */
  beforeProbe?: () => Promise<void>;
  onProbeStart?: (rate: number, index: number, count: number) => ((ev: LoadEvent) => void) | void;
  onProbe?: (p: Probe, index: number) => void;
  stopSignal?: AbortSignal;
  abortSignal?: AbortSignal;
}

export async function searchTarget(o: SearchTargetOptions): Promise<{ result: SearchResult; file: string }> {
  const w = o.workload;
  let warmups = o.numWarmups ?? 0;
  const result = await searchCapacity(
    o.settings,
    async (rate, index) => {
      await o.beforeProbe?.();
      const count = Math.max(1, Math.ceil(o.settings.probeSeconds * rate));
      const onEvent = o.onProbeStart?.(rate, index, count) ?? undefined;
      const numWarmups = warmups;
      warmups = 0;
      try {
        const out = await runBenchmark({
          target: o.target,
          set: o.set,
          resultsDir: o.resultsDir,
          kind: 'single',
          endpoint: w.endpoint,
          model: o.model,
          modelPath: o.modelPath,
          dataset: w.dataset,
          count,
          rate,
          burstiness: w.burstiness,
          maxConcurrency: w.maxConcurrency,
          seed: runSeed(w.seed, { kind: 'single', rate, count, name: '', maxConcurrency: null, seedOffset: index }),
          ignoreEos: w.ignoreEos,
          percentiles: o.percentiles,
          slos: o.settings.slos,
          apiKey: o.apiKey,
          request: o.request,
          numWarmups,
          stateDir: o.stateDir,
          stopSignal: o.stopSignal,
          abortSignal: o.abortSignal,
          onEvent,
          keepText: false,
          write: false,
        });
        return { result: out.result };
      } catch (e) {
        if (e instanceof UsageError) throw e;
        return { result: null, error: (e as Error).message };
      }
    },
    { set: o.set, target: o.target, onProbe: o.onProbe, stopSignal: o.stopSignal },
  );
  return { result, file: await writeSearch(o.resultsDir, result) };
}
