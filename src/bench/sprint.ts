/**
 * A sprint: every steady rate of `bench.sprint` (ceil(duration × rate) prompts each, Poisson/gamma arrivals),
 * then the flood run (floodPrompts sent at once), each archived under <resultsDir>/<set>/, the KV cache
 * cleared before each run unless told not to; then the sheet CSV (reference layout) and the long CSV.
 * Ctrl+C (stopSignal) ends the current run with partial results and skips the remaining runs.
 */
import { join } from 'node:path';
import type { BenchConfig } from '../config/schema.js';
import type { DatasetSpec } from './dataset.js';
import type { LoadEvent } from './generator.js';
import { loadRunResults, type GoodputSlos, type RunKind, type RunResult } from './result.js';
import { runBenchmark, runName, type RunOptions, type RunOutput } from './run.js';
import { runWithVllm } from './vllm-engine.js';
import { writeLongCsv, writeSheet } from './sheet.js';

export interface PlannedRun {
  kind: RunKind;
  rate: number;
  count: number;
  name: string;
}

/** The runs a sprint makes, in order. */
export function planSprint(sprint: BenchConfig['sprint']): PlannedRun[] {
  const runs: PlannedRun[] = sprint.rates.map((rate) => {
    const count = Math.ceil(sprint.durationSeconds * rate);
    return { kind: 'steady' as const, rate, count, name: runName('steady', rate, count) };
  });
  if (sprint.floodPrompts > 0) runs.push({ kind: 'flood', rate: Infinity, count: sprint.floodPrompts, name: runName('flood', Infinity, sprint.floodPrompts) });
  return runs;
}

export interface SprintOptions {
  bench: BenchConfig;
  target: string;
  set: string;
  resultsDir: string;
  sheetPath: string | null;
  /** Called before each run (e.g. to clear the KV cache); may return a note to print. */
  beforeRun?: (run: PlannedRun) => Promise<void>;
  /** Progress hooks. */
  onRunStart?: (run: PlannedRun, index: number, total: number) => ((ev: LoadEvent) => void) | void;
  onRunEnd?: (run: PlannedRun, out: RunOutput) => void;
  engine?: 'builtin' | 'vllm';
  vllmCommand?: string;
  model?: string;
  modelPath?: string;
  apiKey?: string;
  stateDir?: string;
  dataset?: DatasetSpec;
  slos?: GoodputSlos | null;
  stopSignal?: AbortSignal;
  abortSignal?: AbortSignal;
}

export interface SprintResult {
  runs: RunOutput[];
  sheetPath: string | null;
  /** Why the sheet could not be written (the runs are archived regardless). */
  sheetError: string | null;
  longCsvPath: string;
  interrupted: boolean;
}

export async function runSprint(o: SprintOptions): Promise<SprintResult> {
  const s = o.bench.sprint;
  const plan = planSprint(s);
  const outputs: RunOutput[] = [];
  for (const [i, run] of plan.entries()) {
    if (o.stopSignal?.aborted) break;
    await o.beforeRun?.(run);
    const onEvent = o.onRunStart?.(run, i, plan.length) ?? undefined;
    const opts: RunOptions = {
      target: o.target,
      set: o.set,
      resultsDir: o.resultsDir,
      kind: run.kind,
      runName: run.name,
      endpoint: s.endpoint,
      model: o.model,
      modelPath: o.modelPath,
      dataset: o.dataset ?? { kind: 'random', inputLen: s.inputLen, outputLen: s.outputLen },
      count: run.count,
      rate: run.rate,
      burstiness: s.burstiness,
      maxConcurrency: s.maxConcurrency ?? null,
      seed: s.seed,
      ignoreEos: s.ignoreEos,
      percentiles: o.bench.percentiles,
      slos: o.slos,
      apiKey: o.apiKey,
      stateDir: o.stateDir,
      stopSignal: o.stopSignal,
      abortSignal: o.abortSignal,
      onEvent,
    };
    const out = o.engine === 'vllm' ? await runWithVllm({ ...opts, command: o.vllmCommand }) : await runBenchmark(opts);
    outputs.push(out);
    o.onRunEnd?.(run, out);
  }
  const results: RunResult[] = outputs.map((x) => x.result);
  // The runs are already archived: a sheet that cannot take them (e.g. rates it has no column for) is
  // reported, never allowed to lose results.
  let sheetError: string | null = null;
  if (o.sheetPath && results.length > 0) {
    try {
      await writeSheet({ sheetPath: o.sheetPath, set: o.set, results });
    } catch (e) {
      sheetError = (e as Error).message;
    }
  }
  const longCsvPath = join(o.resultsDir, 'results-long.csv');
  await writeLongCsv({ path: longCsvPath, results: await loadRunResults(o.resultsDir) });
  return { runs: outputs, sheetPath: sheetError ? null : o.sheetPath, sheetError, longCsvPath, interrupted: Boolean(o.stopSignal?.aborted) };
}
