/**
 * The flag surface of `pd bench run`, `pd bench search` and `pd bench` (the sprint), as zod schemas: commander
 * hands over strings (or string lists); these schemas check and convert them, and `parseFlags` turns the first
 * problem into a UsageError in the style of config errors (the flag, what was wrong, a hint). The types the rest
 * of the bench code uses come from here (z.infer), and the help text of each flag is kept beside its schema
 * (`FLAG_HELP`, checked for completeness by the compiler), so the flag surface has one source of truth.
 * Defaults that have a config field are not repeated here: undefined means "take bench.* from the config"
 * (see run-plan.ts), and the help text names that field and its default from the config schema.
 */
import * as z from 'zod';
import { UsageError } from '../util/errors.js';
import { defaultConfig } from '../config/schema.js';

type NumOpts = { int?: boolean; min?: number; max?: number; above?: number; below?: number; allowInf?: boolean };

function describe(o: NumOpts): string {
  const kind = o.int ? 'a whole number' : 'a number';
  const parts: string[] = [];
  if (o.above !== undefined) parts.push(o.above === 0 ? '' : `above ${o.above}`);
  if (o.min !== undefined) parts.push(`at least ${o.min}`);
  if (o.below !== undefined) parts.push(`below ${o.below}`);
  if (o.max !== undefined) parts.push(`at most ${o.max}`);
  const range = parts.filter(Boolean).join(' and ');
  const positive = o.above === 0 ? (o.int ? 'a positive whole number' : 'a positive number') : kind;
  return `${positive}${range ? ` ${range}` : ''}${o.allowInf ? ' or inf' : ''}`;
}

/** One number from its text (commander gives strings). */
export function numberText(o: NumOpts) {
  return z.string().transform((text, ctx) => {
    const s = text.trim();
    if (o.allowInf && s.toLowerCase() === 'inf') return Infinity;
    const n = Number(s);
    const ok =
      s !== '' &&
      Number.isFinite(n) &&
      (!o.int || Number.isInteger(n)) &&
      (o.min === undefined || n >= o.min) &&
      (o.max === undefined || n <= o.max) &&
      (o.above === undefined || n > o.above) &&
      (o.below === undefined || n < o.below);
    if (!ok) {
      ctx.addIssue({ code: 'custom', message: `must be ${describe(o)}, got "${text}"` });
      return z.NEVER;
    }
    return n;
  });
}

/** A comma-separated list of numbers ("1,4,16"). */
function numberList(o: NumOpts) {
  return z.string().transform((text, ctx) => {
    const items = text.split(',').map((x) => x.trim());
    const out: number[] = [];
    for (const item of items) {
      const r = numberText(o).safeParse(item);
      if (!r.success || item === '') {
        ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of ${describe(o).replace(/^an? /, '')}s, got "${item}" in "${text}"` });
        return z.NEVER;
      }
      out.push(r.data);
    }
    return out;
  });
}

/** KEY=VALUE pairs (vLLM's --header / --metadata syntax); later keys win. */
function keyValues() {
  return z.array(z.string()).transform((items, ctx) => {
    const out: Record<string, string> = {};
    for (const item of items) {
      const eq = item.indexOf('=');
      const key = eq > 0 ? item.slice(0, eq).trim() : '';
      if (key === '') {
        ctx.addIssue({ code: 'custom', message: `takes KEY=VALUE pairs, got "${item}"` });
        return z.NEVER;
      }
      out[key] = item.slice(eq + 1).trim();
    }
    return out;
  });
}

/** `--lengths 128:128,1024:256` → input/output length pairs. */
const lengthPairs = z.string().transform((text, ctx) => {
  const out: Array<{ input: number; output: number }> = [];
  for (const item of text.split(',').map((s) => s.trim())) {
    const m = /^(\d+):(\d+)$/.exec(item);
    if (!m || Number(m[1]) < 1 || Number(m[2]) < 1) {
      ctx.addIssue({ code: 'custom', message: `takes INPUT:OUTPUT pairs of token counts of at least 1, got "${item}"` });
      return z.NEVER;
    }
    out.push({ input: Number(m[1]), output: Number(m[2]) });
  }
  return out;
});

/** vLLM's --goodput syntax: KEY:MS pairs, keys ttft/tpot/e2el. */
export const goodputText = z.array(z.string()).transform((pairs, ctx) => {
  const out: { ttft?: number; tpot?: number; e2el?: number } = {};
  for (const pair of pairs.flatMap((p) => p.split(/[\s,]+/)).filter(Boolean)) {
    const [k, v, extra] = pair.split(':');
    const n = Number(v);
    if (extra !== undefined || !k || v === undefined || v.trim() === '' || !Number.isFinite(n) || n < 0) {
      ctx.addIssue({ code: 'custom', message: `takes KEY:MS pairs, got "${pair}"` });
      return z.NEVER;
    }
    if (k !== 'ttft' && k !== 'tpot' && k !== 'e2el') {
      ctx.addIssue({ code: 'custom', message: `has an unknown metric "${k}" (use ttft, tpot or e2el)` });
      return z.NEVER;
    }
    out[k] = n;
  }
  return out;
});

const percentileList = z.string().transform((text, ctx) => {
  const ps = text.split(',').map((s) => Number(s.trim()));
  if (ps.some((p, i) => !Number.isFinite(p) || p < 0 || p > 100 || text.split(',')[i]!.trim() === '')) {
    ctx.addIssue({ code: 'custom', message: `must be a comma-separated list of numbers in 0..100, got "${text}"` });
    return z.NEVER;
  }
  return ps;
});

const jsonObject = z.string().transform((text, ctx) => {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch (e) {
    ctx.addIssue({ code: 'custom', message: `is not valid JSON (${(e as Error).message})` });
    return z.NEVER;
  }
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    ctx.addIssue({ code: 'custom', message: 'must be a JSON object' });
    return z.NEVER;
  }
  return v as Record<string, unknown>;
});

const wholeNumber = z.string().transform((text, ctx) => {
  if (!/^\s*-?\d+\s*$/.test(text)) {
    ctx.addIssue({ code: 'custom', message: `must be a whole number, got "${text}"` });
    return z.NEVER;
  }
  return Number(text);
});

export const DATASETS = ['random', 'sharegpt', 'jsonl', 'prefix-sharing', 'multi-turn'] as const;
export type DatasetKind = (typeof DATASETS)[number];
/** vLLM's dataset names that mean the same thing. */
const DATASET_ALIASES: Record<string, DatasetKind> = { prefix_repetition: 'prefix-sharing', custom: 'jsonl' };

const datasetName = z.string().transform((text, ctx) => {
  const k = DATASET_ALIASES[text] ?? text;
  if (!(DATASETS as readonly string[]).includes(k)) {
    ctx.addIssue({ code: 'custom', message: `must be one of ${DATASETS.join(', ')}, got "${text}"` });
    return z.NEVER;
  }
  return k as DatasetKind;
});

/** Flags of every bench verb that measures (sprint, run, search). */
export const commonFlagsSchema = z.object({
  set: z.string().min(1).optional(),
  target: z.string().min(1).optional(),
  keepCache: z.boolean().optional(),
  engine: z.enum(['builtin', 'vllm']).optional(),
  model: z.string().min(1).optional(),
  goodput: goodputText.optional(),
  percentiles: percentileList.optional(),
  resultsDir: z.string().min(1).optional(),
  progress: z.boolean().optional(),
  json: z.boolean().optional(),
  header: keyValues().optional(),
  extraBody: jsonObject.optional(),
  temperature: numberText({ min: 0 }).optional(),
  topP: numberText({ above: 0, max: 1 }).optional(),
  topK: numberText({ int: true, min: -1 }).optional(),
  label: z.string().min(1).optional(),
  metadata: keyValues().optional(),
  requestIdPrefix: z.string().min(1).optional(),
  numWarmups: numberText({ int: true, min: 0 }).optional(),
});
export type CommonFlags = z.infer<typeof commonFlagsSchema>;

/** The workload: what is sent (dataset, lengths, endpoint, arrivals). */
export const workloadFlagsSchema = z.object({
  endpoint: z.enum(['chat', 'completions']).optional(),
  randomInputLen: numberText({ int: true, above: 0 }).optional(),
  randomOutputLen: numberText({ int: true, above: 0 }).optional(),
  /** Aliases kept from before (and vLLM's general --input-len/--output-len). */
  inputLen: numberText({ int: true, above: 0 }).optional(),
  outputLen: numberText({ int: true, above: 0 }).optional(),
  randomRangeRatio: numberText({ min: 0, below: 1 }).optional(),
  randomPrefixLen: numberText({ int: true, min: 0 }).optional(),
  numPrefixes: numberText({ int: true, above: 0 }).optional(),
  turns: numberText({ int: true, above: 0 }).optional(),
  burstiness: numberText({ above: 0 }).optional(),
  seed: wholeNumber.optional(),
  dataset: datasetName.optional(),
  datasetPath: z.string().min(1).optional(),
  ignoreEos: z.boolean().optional(),
  maxConcurrency: numberList({ int: true, above: 0 }).optional(),
  lengths: lengthPairs.optional(),
});

/** `pd bench run`: how many and how fast. */
export const runFlagsSchema = commonFlagsSchema.extend(workloadFlagsSchema.shape).extend({
  rate: numberText({ above: 0, allowInf: true }).optional(),
  duration: numberText({ above: 0 }).optional(),
  flood: z.boolean().optional(),
  numPrompts: numberText({ int: true, above: 0 }).optional(),
});
export type RunFlags = z.infer<typeof runFlagsSchema>;

/** `pd bench search`: the SLO, the attainment and the search's own bounds. */
export const searchFlagsSchema = commonFlagsSchema.extend(workloadFlagsSchema.shape).extend({
  duration: numberText({ above: 0 }).optional(),
  attainment: numberText({ above: 0, max: 1 }).optional(),
  precision: numberText({ above: 0, below: 1 }).optional(),
  budget: numberText({ above: 0 }).optional(),
  minRate: numberText({ above: 0 }).optional(),
  maxRate: numberText({ above: 0 }).optional(),
});
export type SearchFlags = z.infer<typeof searchFlagsSchema>;

/** `pd bench` (the sprint from config). */
export const sprintFlagsSchema = commonFlagsSchema.extend({ sheet: z.boolean().optional() });
export type SprintFlags = z.infer<typeof sprintFlagsSchema>;

/** `pd bench matrix` (the configs come from -c/--config, read apart: the root command owns that flag). */
export const matrixFlagsSchema = z.object({
  simulate: z.boolean().optional(),
  rates: numberList({ above: 0 }).optional(),
  duration: numberText({ above: 0 }).optional(),
  floodPrompts: numberText({ int: true, min: 0 }).optional(),
  sheet: z.string().min(1).optional(),
  resume: z.boolean().optional(),
  resultsDir: z.string().min(1).optional(),
  search: z.boolean().optional(),
  goodput: goodputText.optional(),
  attainment: numberText({ above: 0, max: 1 }).optional(),
  precision: numberText({ above: 0, below: 1 }).optional(),
  budget: numberText({ above: 0 }).optional(),
  progress: z.boolean().optional(),
  json: z.boolean().optional(),
});
export type MatrixFlags = z.infer<typeof matrixFlagsSchema>;

const sprintDefaults = defaultConfig().bench.sprint;
const fromConfig = (path: string, value: unknown): string => `(default: ${path} = ${JSON.stringify(value)})`;

/** commander flag spelling and help of every flag above (the compiler checks none is missing). */
export const FLAG_HELP = {
  set: ['--set <name>', 'experiment set the results are archived under (default: bench.set)'],
  target: ['--target <url>', "OpenAI-compatible base URL to benchmark (default: the running stack's proxy)"],
  keepCache: ['--keep-cache', 'do not clear the KV cache before each run'],
  engine: ['--engine <engine>', 'builtin (default) or vllm (`vllm bench serve`, its saved JSON is parsed)'],
  model: ['--model <name>', 'model name to send (default: the first of GET /v1/models)'],
  goodput: ['--goodput <slo...>', 'SLOs for goodput, vLLM syntax: ttft:MS tpot:MS e2el:MS'],
  percentiles: ['--percentiles <list>', 'percentiles to compute, e.g. 50,90,95,99,99.9 (default: bench.percentiles; P99 always)'],
  resultsDir: ['--results-dir <dir>', 'where runs are archived (default: bench.resultsDir)'],
  progress: ['--no-progress', 'no progress line on stderr'],
  json: ['--json', 'print the result JSON on stdout instead of the summary'],
  header: ['--header <key=value...>', 'HTTP header sent with every request (repeatable, vLLM syntax)'],
  extraBody: ['--extra-body <json>', 'JSON object merged into every request body, e.g. \'{"chat_template_kwargs":{"enable_thinking":false}}\''],
  temperature: ['--temperature <t>', 'sampling temperature (default: the server\'s)'],
  topP: ['--top-p <p>', 'top-p sampling (default: the server\'s)'],
  topK: ['--top-k <k>', 'top-k sampling (default: the server\'s)'],
  label: ['--label <text>', 'label stored in the result JSON (vLLM\'s "label")'],
  metadata: ['--metadata <key=value...>', 'KEY=VALUE pairs stored in the result JSON (repeatable, vLLM syntax)'],
  requestIdPrefix: ['--request-id-prefix <p>', 'prefix of each request\'s x-request-id (default: bench-<8 hex>-)'],
  numWarmups: ['--num-warmups <n>', `warm-up requests sent (and excluded) before the measured run (run: 0 like vLLM; sprint: bench.sprint.numWarmups = ${sprintDefaults.numWarmups}, once)`],
  endpoint: ['--endpoint <kind>', `chat or completions ${fromConfig('bench.sprint.endpoint', sprintDefaults.endpoint)}`],
  randomInputLen: ['--random-input-len <n>', `input tokens per prompt (alias --input-len) ${fromConfig('bench.sprint.inputLen', sprintDefaults.inputLen)}`],
  randomOutputLen: ['--random-output-len <n>', `output tokens per request (alias --output-len) ${fromConfig('bench.sprint.outputLen', sprintDefaults.outputLen)}`],
  inputLen: ['--input-len <n>', 'alias of --random-input-len'],
  outputLen: ['--output-len <n>', 'alias of --random-output-len (also the output length of file datasets)'],
  randomRangeRatio: ['--random-range-ratio <r>', `lengths uniform in [len x (1-r), len x (1+r)], 0 <= r < 1 ${fromConfig('bench.sprint.rangeRatio', sprintDefaults.rangeRatio)}`],
  randomPrefixLen: ['--random-prefix-len <n>', `shared prefix tokens in front of every prompt (prefix-sharing: each pool entry's length, default 256) ${fromConfig('bench.sprint.prefixLen', sprintDefaults.prefixLen)}`],
  numPrefixes: ['--num-prefixes <k>', 'prefix-sharing dataset: size of the pool of shared system prompts (default 10)'],
  turns: ['--turns <n>', 'multi-turn dataset: turns per conversation (default 4)'],
  burstiness: ['--burstiness <b>', `gamma shape of arrival gaps, 1 = Poisson ${fromConfig('bench.sprint.burstiness', sprintDefaults.burstiness)}`],
  seed: ['--seed <n>', `random seed for arrivals and prompts ${fromConfig('bench.sprint.seed', sprintDefaults.seed)}`],
  dataset: ['--dataset <kind>', 'random (default), sharegpt, jsonl, prefix-sharing or multi-turn'],
  datasetPath: ['--dataset-path <file>', 'ShareGPT JSON or JSONL file of prompts'],
  ignoreEos: ['--ignore-eos', 'set ignore_eos on every request (default: on for --dataset random, as vLLM; off for the others)'],
  maxConcurrency: ['--max-concurrency <list>', 'cap on requests in flight from the client; a list sweeps over the values'],
  lengths: ['--lengths <pairs>', 'input:output token pairs to sweep, e.g. 128:128,1024:256'],
  rate: ['--rate <r>', 'request rate in req/s (or inf)'],
  duration: ['--duration <s>', 'seconds of steady load: sends ceil(duration x rate) prompts'],
  flood: ['--flood', 'send every prompt at once (rate inf)'],
  numPrompts: ['-n, --num-prompts <n>', `number of prompts (flood default: bench.sprint.floodPrompts = ${sprintDefaults.floodPrompts})`],
  attainment: ['--attainment <f>', 'fraction of requests that must meet every SLO (default 0.9)'],
  precision: ['--precision <f>', 'stop when the bracket is narrower than this fraction of the rate (default 0.05)'],
  budget: ['--budget <s>', 'time budget of the whole search in seconds (default 600)'],
  minRate: ['--min-rate <r>', 'first rate probed (default 1 req/s)'],
  maxRate: ['--max-rate <r>', 'highest rate probed (default 1024 req/s)'],
  sheet: ['--no-sheet', 'do not merge the results into the sprint sheet CSV'],
} as const satisfies Record<keyof RunFlags | keyof SearchFlags | keyof SprintFlags, readonly [string, string]>;

export type FlagKey = keyof typeof FLAG_HELP;

/** The spelling of a flag for messages: "--max-concurrency", "-n/--num-prompts". */
export function flagName(key: string): string {
  const spec = (FLAG_HELP as Record<string, readonly [string, string]>)[key]?.[0];
  if (!spec) return `--${key.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  const names = spec.split(/[ ,]+/).filter((s) => s.startsWith('-'));
  return names.map((n) => n.replace(/^--no-/, '--')).join('/');
}

/** What to write instead, per flag (shown as the hint). */
const HINTS: Partial<Record<FlagKey, string>> = {
  rate: 'e.g. --rate 8 (requests per second) or --rate inf',
  duration: 'e.g. --duration 30 (seconds)',
  numPrompts: 'e.g. -n 200',
  goodput: 'e.g. --goodput ttft:500 tpot:50 (keys ttft, tpot, e2el; values in ms, >= 0)',
  percentiles: 'e.g. --percentiles 50,90,99,99.9',
  seed: 'e.g. --seed 42',
  maxConcurrency: 'e.g. --max-concurrency 16, or a list to sweep: --max-concurrency 1,4,16',
  lengths: 'e.g. --lengths 128:128,1024:256',
  header: 'e.g. --header x-tenant=bench --header x-debug=1',
  metadata: 'e.g. --metadata gpu=H100 tp=1',
  extraBody: 'e.g. --extra-body \'{"chat_template_kwargs": {"enable_thinking": false}}\'',
  dataset: 'use random, sharegpt, jsonl, prefix-sharing or multi-turn',
  endpoint: 'use chat or completions',
  engine: 'use --engine builtin (default) or --engine vllm',
  randomRangeRatio: 'e.g. --random-range-ratio 0.25 (lengths vary by ±25%)',
  attainment: 'e.g. --attainment 0.9 (90% of requests meet the SLOs)',
  precision: 'e.g. --precision 0.05 (answer within 5%)',
};

/**
 * Check commander's values against `schema`; the first problem becomes a UsageError naming the flag, what was
 * wrong and what to write instead (the further problems are listed under it).
 */
export function parseFlags<S extends z.ZodType>(schema: S, values: Record<string, unknown>): z.infer<S> {
  const defined = Object.fromEntries(Object.entries(values).filter(([, v]) => v !== undefined));
  const r = schema.safeParse(defined);
  if (r.success) return r.data;
  const lines = r.error.issues.map((i) => {
    const key = String(i.path[0] ?? '');
    const msg =
      i.code === 'invalid_value'
        ? `must be one of ${(i as { values?: unknown[] }).values?.map(String).join(', ')}, got "${String(defined[key])}"`
        : i.code === 'too_small'
          ? 'must not be empty'
          : i.message;
    return { key, text: `${flagName(key)} ${msg}` };
  });
  const first = lines[0]!;
  throw new UsageError(first.text, {
    details: lines.slice(1).map((l) => l.text),
    hint: HINTS[first.key as FlagKey] ?? 'See `pd bench run --help` for every flag and its default.',
  });
}
