/**
 * Run-shape rules: from checked flags (flags.ts) and the config's bench section to the runs to make — how many
 * prompts at which rate, the workload (dataset, lengths, endpoint, arrivals), the request options, and for the
 * sprint the list of steady rates plus the flood run. Pure: no I/O except checking that a dataset file exists.
 */
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import type { PdConfig, SprintConfig } from '../config/schema.js';
import { UsageError } from '../util/errors.js';
import type { DatasetSpec } from './dataset.js';
import type { CommonFlags, RunFlags } from './flags.js';
import type { Endpoint } from './request.js';
import type { RunKind } from './result.js';
import { vllmDate } from './write.js';

export interface RequestOptions {
  /** Extra headers of every request (--header). */
  headers: Record<string, string> | null;
  /** Merged into every body: sampling flags, then --extra-body (vLLM: {**sampling_params, **extra_body}). */
  extraBody: Record<string, unknown> | null;
  label: string | null;
  /** --metadata, stored in the result JSON. */
  metadata: Record<string, string> | null;
  /** x-request-id prefix; request i of a run is `${prefix}${i}`. */
  requestIdPrefix: string;
}

export interface Workload {
  endpoint: Endpoint;
  dataset: DatasetSpec;
  burstiness: number;
  seed: number;
  ignoreEos: boolean;
  /** Client-side cap on requests in flight (the first of a --max-concurrency list). */
  maxConcurrency: number | null;
}

export interface PlannedRun {
  kind: RunKind;
  rate: number;
  count: number;
  /** File stem (single runs get their date when they start). */
  name: string;
  maxConcurrency: number | null;
  /** Dataset of this run when a sweep changes the lengths. */
  dataset?: DatasetSpec;
  /** Offset of this run's seed from the workload seed (fresh prompts per run of a sprint). */
  seedOffset?: number;
  /** Sweep coordinates, for the run's name and the Pareto chart. */
  sweep?: { maxConcurrency: number | null; inputLen: number | null; outputLen: number | null };
}

export function rateLabel(rate: number): string {
  return rate === Infinity ? 'inf' : String(rate);
}

/** File stem of a run: steady-rate8, flood-n1024, single-rate8-n240[-mc4-in128-out64]-<date>. */
export function runName(kind: RunKind, rate: number, count: number, date = vllmDate(), sweep?: PlannedRun['sweep']): string {
  if (kind === 'steady') return `steady-rate${rateLabel(rate)}`;
  if (kind === 'flood') return `flood-n${count}`;
  const extra = sweep
    ? [sweep.maxConcurrency !== null ? `mc${sweep.maxConcurrency}` : '', sweep.inputLen !== null ? `in${sweep.inputLen}-out${sweep.outputLen}` : '']
        .filter(Boolean)
        .map((x) => `-${x}`)
        .join('')
    : '';
  return rate === Infinity ? `single-inf-n${count}${extra}-${date}` : `single-rate${rateLabel(rate)}-n${count}${extra}-${date}`;
}

export function requestOptions(f: CommonFlags): RequestOptions {
  const sampling: Record<string, unknown> = {};
  if (f.topP !== undefined) sampling.top_p = f.topP;
  if (f.topK !== undefined) sampling.top_k = f.topK;
  if (f.temperature !== undefined) sampling.temperature = f.temperature;
  const extraBody = { ...sampling, ...(f.extraBody ?? {}) };
  return {
    headers: f.header && Object.keys(f.header).length > 0 ? f.header : null,
    extraBody: Object.keys(extraBody).length > 0 ? extraBody : null,
    label: f.label ?? null,
    metadata: f.metadata && Object.keys(f.metadata).length > 0 ? f.metadata : null,
    // vLLM's default --request-id-prefix: bench-<8 hex>-
    requestIdPrefix: f.requestIdPrefix ?? `bench-${randomBytes(4).toString('hex')}-`,
  };
}

/** Two spellings of one value (--random-input-len and its alias --input-len) must agree. */
function oneOf(a: number | undefined, b: number | undefined, names: [string, string]): number | undefined {
  if (a !== undefined && b !== undefined && a !== b) {
    throw new UsageError(`${names[0]} ${a} and ${names[1]} ${b} disagree`, { hint: `${names[1]} is an alias of ${names[0]}: give one of them` });
  }
  return a ?? b;
}

type WorkloadFlags = Pick<
  RunFlags,
  | 'endpoint' | 'randomInputLen' | 'randomOutputLen' | 'inputLen' | 'outputLen' | 'randomRangeRatio' | 'randomPrefixLen' | 'numPrefixes'
  | 'turns' | 'burstiness' | 'seed' | 'dataset' | 'datasetPath' | 'ignoreEos' | 'maxConcurrency'
>;

/** The workload of `pd bench run` / `pd bench search`: flags over the config's bench.sprint. */
export function resolveWorkload(f: WorkloadFlags, s: SprintConfig): Workload {
  const inputLen = oneOf(f.randomInputLen, f.inputLen, ['--random-input-len', '--input-len']);
  const outputLen = oneOf(f.randomOutputLen, f.outputLen, ['--random-output-len', '--output-len']);
  const kind = f.dataset ?? (f.datasetPath ? (f.datasetPath.endsWith('.jsonl') ? 'jsonl' : 'sharegpt') : 'random');
  let dataset: DatasetSpec;
  if (kind === 'sharegpt' || kind === 'jsonl') {
    if (!f.datasetPath) throw new UsageError(`--dataset ${kind} needs --dataset-path FILE`, { hint: `e.g. --dataset ${kind} --dataset-path ./prompts.${kind === 'jsonl' ? 'jsonl' : 'json'}` });
    if (!existsSync(f.datasetPath)) throw new UsageError(`--dataset-path ${f.datasetPath} does not exist`, { hint: 'pass the path of a ShareGPT JSON or JSONL file' });
    dataset = { kind, path: f.datasetPath, outputLen };
  } else {
    if (f.datasetPath) throw new UsageError(`--dataset ${kind} takes no --dataset-path`, { hint: 'use --dataset sharegpt or jsonl for a file' });
    if (f.turns !== undefined && kind !== 'multi-turn') throw new UsageError('--turns is an option of --dataset multi-turn', { hint: 'add --dataset multi-turn, or drop --turns' });
    if (f.numPrefixes !== undefined && kind !== 'prefix-sharing') throw new UsageError('--num-prefixes is an option of --dataset prefix-sharing', { hint: 'add --dataset prefix-sharing, or drop --num-prefixes' });
    dataset = {
      kind,
      inputLen: inputLen ?? s.inputLen,
      outputLen: outputLen ?? s.outputLen,
      rangeRatio: f.randomRangeRatio ?? s.rangeRatio,
      prefixLen: f.randomPrefixLen ?? (kind === 'prefix-sharing' ? 256 : s.prefixLen),
      ...(kind === 'prefix-sharing' ? { numPrefixes: f.numPrefixes ?? 10 } : {}),
      ...(kind === 'multi-turn' ? { turns: f.turns ?? 4 } : {}),
    };
    if (kind === 'multi-turn' && f.randomPrefixLen !== undefined) throw new UsageError('--random-prefix-len does not apply to --dataset multi-turn', { hint: 'drop --random-prefix-len' });
  }
  return {
    endpoint: f.endpoint ?? s.endpoint,
    dataset,
    burstiness: f.burstiness ?? s.burstiness,
    seed: f.seed ?? s.seed,
    // vLLM sets ignore_eos by default only for its random dataset (vllm/benchmarks/serve.py, main_async).
    ignoreEos: f.ignoreEos ?? (kind === 'random' ? s.ignoreEos : false),
    maxConcurrency: f.maxConcurrency?.[0] ?? s.maxConcurrency ?? null,
  };
}

function withLengths(d: DatasetSpec, input: number, output: number): DatasetSpec {
  if (d.kind === 'sharegpt' || d.kind === 'jsonl') return { ...d, outputLen: output };
  return { ...d, inputLen: input, outputLen: output };
}

/** `pd bench run`: one run, or the product of --max-concurrency and --lengths lists (a sweep). */
export function planRun(f: RunFlags, config: PdConfig): { workload: Workload; runs: PlannedRun[] } {
  const s = config.bench.sprint;
  const workload = resolveWorkload(f, s);
  let rate = f.rate;
  let count = f.numPrompts;
  const flood = s.floodPrompts > 0 ? s.floodPrompts : 1024;
  if (f.flood) {
    if (rate !== undefined && rate !== Infinity) throw new UsageError('--flood sends everything at once; drop --rate', { hint: 'or use --rate R --duration S for a steady run' });
    rate = Infinity;
    count ??= flood;
  } else if (rate === undefined) {
    throw new UsageError('say how to send: --rate R --duration S, --rate R -n N, or --flood [-n N]', { hint: 'e.g. pd bench run --rate 8 --duration 30' });
  } else if (rate === Infinity) {
    count ??= flood;
  } else if (count === undefined) {
    if (f.duration === undefined) throw new UsageError('--rate needs --duration S (or -n N prompts)', { hint: 'e.g. pd bench run --rate 8 --duration 30' });
    count = Math.ceil(f.duration * rate);
  }
  if (f.lengths && (workload.dataset.kind === 'sharegpt' || workload.dataset.kind === 'jsonl')) {
    throw new UsageError('--lengths sweeps the synthetic datasets\' lengths', { hint: 'use --output-len with a file dataset, or drop --dataset-path' });
  }
  const concurrencies: Array<number | null> = f.maxConcurrency ?? [workload.maxConcurrency];
  const lengths: Array<{ input: number; output: number } | null> = f.lengths ?? [null];
  const sweep = concurrencies.length > 1 || lengths.length > 1;
  const runs: PlannedRun[] = [];
  for (const len of lengths)
    for (const mc of concurrencies) {
      const dataset = len ? withLengths(workload.dataset, len.input, len.output) : undefined;
      const coords = sweep ? { maxConcurrency: mc, inputLen: len?.input ?? null, outputLen: len?.output ?? null } : undefined;
      runs.push({ kind: 'single', rate, count, name: runName('single', rate, count, 'DATE', coords), maxConcurrency: mc, dataset, sweep: coords, seedOffset: runs.length });
    }
  return { workload, runs };
}

/** The runs a sprint makes, in order: each steady rate (ceil(duration x rate) prompts), then the flood run. */
export function planSprint(sprint: SprintConfig): PlannedRun[] {
  const runs: PlannedRun[] = sprint.rates.map((rate, i) => {
    const count = Math.ceil(sprint.durationSeconds * rate);
    return { kind: 'steady' as const, rate, count, name: runName('steady', rate, count), maxConcurrency: sprint.maxConcurrency ?? null, seedOffset: i };
  });
  if (sprint.floodPrompts > 0) {
    runs.push({
      kind: 'flood',
      rate: Infinity,
      count: sprint.floodPrompts,
      name: runName('flood', Infinity, sprint.floodPrompts),
      maxConcurrency: sprint.maxConcurrency ?? null,
      seedOffset: runs.length,
    });
  }
  return runs;
}

/** The sprint's workload, from config (a sprint is the random dataset by definition: the sheet's layout). */
export function sprintWorkload(s: SprintConfig): Workload {
  return {
    endpoint: s.endpoint,
    dataset: { kind: 'random', inputLen: s.inputLen, outputLen: s.outputLen, rangeRatio: s.rangeRatio, prefixLen: s.prefixLen },
    burstiness: s.burstiness,
    seed: s.seed,
    ignoreEos: s.ignoreEos,
    maxConcurrency: s.maxConcurrency ?? null,
  };
}

/** A run's seed: each run of a sprint (or sweep) gets its own, so no run is served from another's prefix cache. */
export function runSeed(base: number, run: PlannedRun): number {
  return base + 1009 * (run.seedOffset ?? 0);
}

