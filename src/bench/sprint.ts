/**
 * A sprint: warm the target once, then every steady rate of `bench.sprint` (ceil(duration × rate) prompts each,
 * Poisson/gamma arrivals, fresh prompts per run from the run's own seed), then the flood run (floodPrompts at
 * once), each archived under <resultsDir>/<set>/, the KV cache cleared before each run unless told not to; then
 * the sheet CSV (reference layout) and the long CSV.
 * - Once a steady rate is clearly saturated (saturation.ts), the higher steady rates are skipped and the reason
 *   is returned; the flood run still runs (it is a column of the sheet of its own).
 * - A run that fails (every request failed, or it could not run) is archived as failed and ends the sprint: the
 *   remaining runs are skipped with that reason.
 * - Ctrl+C (stopSignal) ends the current run with partial results and skips the remaining runs.
 */
import { join } from 'node:path';
import type { BenchConfig } from '../config/schema.js';
import type { LoadEvent } from './generator.js';
import { loadRunResults, type GoodputSlos, type RunResult } from './result.js';
import { archiveFailedRun, runBenchmark, type RunOptions, type RunOutput } from './run.js';
import { runWithVllm } from './vllm-engine.js';
import { writeLongCsv, writeSheet } from './sheet.js';
import { planSprint, runSeed, sprintWorkload, type PlannedRun, type RequestOptions } from './run-plan.js';
import { ConfigError, UsageError } from '../util/errors.js';

export type { PlannedRun } from './run-plan.js';
export { planSprint } from './run-plan.js';

export interface SprintOptions {
  bench: BenchConfig;
  target: string;
  set: string;
  resultsDir: string;
  sheetPath: string | null;
  /** Called before each run (e.g. to clear the KV cache). */
  beforeRun?: (run: PlannedRun) => Promise<void>;
  /** Progress hooks. */
  onRunStart?: (run: PlannedRun, index: number, total: number) => ((ev: LoadEvent) => void) | void;
  onRunEnd?: (run: PlannedRun, out: RunOutput) => void;
  /** A run is skipped (saturation, an earlier failure). */
  onSkip?: (run: PlannedRun, reason: string) => void;
  engine?: 'builtin' | 'vllm';
  vllmCommand?: string;
  model?: string;
  modelPath?: string;
  apiKey?: string;
  stateDir?: string;
  slos?: GoodputSlos | null;
  request?: Partial<RequestOptions>;
  /** Warm-up requests sent once before the first run (default bench.sprint.numWarmups). */
  numWarmups?: number;
  stopSignal?: AbortSignal;
  abortSignal?: AbortSignal;
}

export interface SprintResult {
  runs: RunOutput[];
  /** Runs not made, and why. */
  skipped: Array<{ run: PlannedRun; reason: string }>;
  sheetPath: string | null;
  /** Why the sheet could not be written (the runs are archived regardless). */
  sheetError: string | null;
  longCsvPath: string;
  interrupted: boolean;
}

export async function runSprint(o: SprintOptions): Promise<SprintResult> {
  const s = o.bench.sprint;
  const plan = planSprint(s);
  const w = sprintWorkload(s);
  const outputs: RunOutput[] = [];
  const skipped: SprintResult['skipped'] = [];
  let stopReason: string | null = null;
  let saturatedAt: { rate: number; reason: string } | null = null;
  let warmups = o.numWarmups ?? s.numWarmups;
  for (const [i, run] of plan.entries()) {
    if (o.stopSignal?.aborted) break;
    const skip = stopReason ?? (saturatedAt && run.kind === 'steady' && run.rate > saturatedAt.rate ? `${saturatedAt.rate} req/s was already saturated (${saturatedAt.reason})` : null);
    if (skip !== null) {
      skipped.push({ run, reason: skip });
      o.onSkip?.(run, skip);
      continue;
    }
    await o.beforeRun?.(run);
    const onEvent = o.onRunStart?.(run, i, plan.length) ?? undefined;
    const opts: RunOptions = {
      target: o.target,
      set: o.set,
      resultsDir: o.resultsDir,
      kind: run.kind,
      runName: run.name,
      endpoint: w.endpoint,
      model: o.model,
      modelPath: o.modelPath,
      dataset: w.dataset,
      count: run.count,
      rate: run.rate,
      burstiness: w.burstiness,
      maxConcurrency: run.maxConcurrency,
      seed: runSeed(w.seed, run),
      ignoreEos: w.ignoreEos,
      percentiles: o.bench.percentiles,
      slos: o.slos,
      apiKey: o.apiKey,
      request: o.request,
      // The sprint warms the target once, before its first run.
      numWarmups: warmups,
      stateDir: o.stateDir,
      stopSignal: o.stopSignal,
      abortSignal: o.abortSignal,
      onEvent,
    };
    warmups = 0;
    let out: RunOutput;
    try {
      out = o.engine === 'vllm' ? await runWithVllm({ ...opts, command: o.vllmCommand }) : await runBenchmark(opts);
    } catch (e) {
      // A mistake in the input is the user's to fix; anything else (the target died…) fails this run only.
      if (e instanceof UsageError || e instanceof ConfigError || !(e instanceof Error)) throw e;
      out = await archiveFailedRun(opts, e.message);
    }
    outputs.push(out);
    o.onRunEnd?.(run, out);
    if (out.result.pd_failed) stopReason = `${run.name} failed: ${out.result.pd_error ?? 'no result'}`;
    const sat = out.result.pd_saturation;
    if (s.stopWhenSaturated && run.kind === 'steady' && sat?.saturated && saturatedAt === null) saturatedAt = { rate: run.rate, reason: sat.reason ?? 'saturated' };
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
  return { runs: outputs, skipped, sheetPath: sheetError ? null : o.sheetPath, sheetError, longCsvPath, interrupted: Boolean(o.stopSignal?.aborted) };
}
