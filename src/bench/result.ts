/**
 * The result format of one benchmark run — the contract between the load generator (writer) and the
 * sheet / compare / report code (readers).
 *
 * Field names are a superset of what `vllm bench serve --save-result [--save-detailed]` writes
 * (vllm/benchmarks/serve.py): the same names, units and semantics (`*_ms` in milliseconds; `duration`,
 * `ttfts`, `itls`, `latencies`, `start_times` in SECONDS like vLLM). pd's own extras are namespaced `pd_*`.
 *
 * Percentile fields are named exactly like vLLM: `p50_ttft_ms`, `p99_ttft_ms`, `p99.9_ttft_ms` (see
 * `percentileKey`). They are dynamic (the configured percentiles), so the schema keeps unknown keys; pd always
 * computes p99 in addition to the configured ones, so `p99_{ttft,tpot,itl,e2el}_ms` is always present in
 * results pd writes. Use `percentileOf()` to read one.
 *
 * Files (see `runFiles`): `<resultsDir>/<set>/<run-name>.json` (this schema) and
 * `<resultsDir>/<set>/<run-name>.requests.jsonl` (one `requestRecordSchema` line per request).
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import { RuntimeError } from '../util/errors.js';

/** The latency metrics that carry mean/median/std/pXX fields. */
export const LATENCY_METRICS = ['ttft', 'tpot', 'itl', 'e2el'] as const;
export type LatencyMetric = (typeof LATENCY_METRICS)[number];

export const RUN_KINDS = ['steady', 'flood', 'single'] as const;
export type RunKind = (typeof RUN_KINDS)[number];

const num = z.number();
const nullableNum = z.number().nullable();

/** {mean, median, p99} of one stage duration, in ms. */
export const stageStatsSchema = z.object({ mean: num, median: num, p99: num });

/** Per-stage split from the proxy's Server-Timing header (null when the target sent none). */
export const stageSplitSchema = z.object({
  /** Requests whose response carried the header. */
  samples: z.number().int().min(0),
  /** Stage 1: the producer's prefill request (max_tokens=1), ms. */
  prefill_ms: stageStatsSchema,
  /** Stage 2: consumer request sent → first response byte (decode TTFB), ms. */
  decode_ttfb_ms: stageStatsSchema,
});
export type StageSplit = z.infer<typeof stageSplitSchema>;

export const kvCacheStatsSchema = z.object({
  /** KV loads that hit (external/connector cache) during the run. */
  hits: z.number().min(0),
  /** Lookups that missed (null when the source only counts hits). */
  misses: z.number().min(0).nullable(),
  /** Where the counts came from, e.g. "proxy-metrics", "engine-metrics:http://127.0.0.1:8200". */
  source: z.string(),
  /** What hits/misses count: requests (pd's engine-log counts) or tokens (vLLM's external_prefix_cache metrics). */
  unit: z.enum(['requests', 'tokens']).optional(),
});
export type KvCacheStats = z.infer<typeof kvCacheStatsSchema>;

export const latenessSchema = z.object({ mean: num, p50: num, p99: num, max: num });
export type Lateness = z.infer<typeof latenessSchema>;

/** mean/median/std/pXX of a distribution, keys like the vLLM ones without the metric: mean_ms, p99_ms … */
export const distributionSchema = z.record(z.string(), num);

export const goodputSlosSchema = z
  .object({ ttft: num.optional(), tpot: num.optional(), e2el: num.optional() })
  .describe('SLOs in ms, like vLLM --goodput ttft:MS tpot:MS e2el:MS');
export type GoodputSlos = z.infer<typeof goodputSlosSchema>;

export const runResultSchema = z
  .looseObject({
    // ---- vLLM setup block --------------------------------------------------------------------------------
    /** `%Y%m%d-%H%M%S` local time, like vLLM. */
    date: z.string(),
    /** vLLM backend name: 'openai-chat' (chat endpoint) or 'openai' (completions endpoint). */
    endpoint_type: z.string(),
    backend: z.string(),
    label: z.string().nullable(),
    model_id: z.string(),
    tokenizer_id: z.string().nullable(),
    num_prompts: z.number().int().min(0),
    /** Offered rate in req/s, or the string "inf" (flood). */
    request_rate: z.union([z.number(), z.literal('inf')]),
    burstiness: num,
    max_concurrency: z.number().int().nullable(),

    // ---- vLLM benchmark block ----------------------------------------------------------------------------
    /** Seconds from the first dispatch to the last completion. */
    duration: num,
    completed: z.number().int().min(0),
    failed: z.number().int().min(0),
    total_input_tokens: z.number().int().min(0),
    total_output_tokens: z.number().int().min(0),
    request_throughput: num,
    /** Good requests / duration; null when no SLO was given (as vLLM). */
    request_goodput: nullableNum,
    output_throughput: num,
    total_token_throughput: num,
    max_output_tokens_per_s: num,
    max_concurrent_requests: z.number().int().min(0),

    mean_ttft_ms: num,
    median_ttft_ms: num,
    std_ttft_ms: num,
    mean_tpot_ms: num,
    median_tpot_ms: num,
    std_tpot_ms: num,
    mean_itl_ms: num,
    median_itl_ms: num,
    std_itl_ms: num,
    /** vLLM writes e2el stats only when asked (--percentile-metrics …,e2el); pd always writes them. */
    mean_e2el_ms: num.optional(),
    median_e2el_ms: num.optional(),
    std_e2el_ms: num.optional(),

    // Detailed arrays, one entry per request in send order (vLLM drops them without --save-detailed).
    input_lens: z.array(z.number().int()).optional(),
    /** 0 for failed requests, as vLLM. */
    output_lens: z.array(z.number().int()).optional(),
    /** Seconds; 0 for failed requests. */
    ttfts: z.array(num).optional(),
    /** Seconds; per request, the gaps between output chunks. */
    itls: z.array(z.array(num)).optional(),
    /** Seconds (send → last output chunk). */
    latencies: z.array(num).optional(),
    /** Seconds since the run's first scheduled send (vLLM writes its perf_counter() values here). */
    start_times: z.array(num).optional(),
    generated_texts: z.array(z.string()).optional(),
    /** "" for successful requests, as vLLM. */
    errors: z.array(z.string()).optional(),

    // ---- pd extras ---------------------------------------------------------------------------------------
    pd_version: z.string(),
    /** ISO-8601 time the run started. */
    pd_started_at: z.string(),
    pd_set: z.string(),
    /** File stem of this run inside <resultsDir>/<set>/ (e.g. steady-rate8, flood-n1024). */
    pd_run_name: z.string(),
    pd_run_kind: z.enum(RUN_KINDS),
    /** Base URL benchmarked, e.g. http://127.0.0.1:8000 */
    pd_target: z.string(),
    pd_endpoint: z.enum(['chat', 'completions']),
    /** 'builtin' = pd's load generator; 'vllm' = parsed from `vllm bench serve --save-result`. */
    pd_engine: z.enum(['builtin', 'vllm']).default('builtin'),
    /** Offered request rate (req/s); null for inf (flood). */
    pd_offered_rate: nullableNum,
    /** Good requests / all requests sent (failures count as not good); 0 when nothing was sent. */
    pd_good_request_fraction: num,
    pd_goodput_slos: goodputSlosSchema.nullable().default(null),
    /** Failure kind → count, e.g. {"http_503": 3, "in_band_error": 1, "connect": 2}. */
    pd_error_kinds: z.record(z.string(), z.number().int()),
    /** 'server' when every completed request's token count came from `usage`; 'chunks' when any was counted. */
    pd_usage_source: z.enum(['server', 'chunks']),
    /** How late each send was versus its pre-computed arrival time, ms (null: not measured, e.g. --engine vllm). */
    pd_send_lateness_ms: latenessSchema.nullable(),
    pd_stage_split: stageSplitSchema.nullable(),
    pd_kv_cache: kvCacheStatsSchema.nullable(),
    /** True when the run was interrupted (Ctrl+C): not every prompt was sent. */
    pd_partial: z.boolean(),
    /** ITL statistics per token (a chunk carrying k tokens contributes k gaps of gap/k): mean_ms, p99_ms … */
    pd_itl_per_token_ms: distributionSchema.nullable().default(null),
    /** Percentiles computed (always includes 99). */
    pd_percentiles: z.array(num).default([50, 90, 95, 99]),
    pd_input_len: z.number().int().nullable().default(null),
    pd_output_len: z.number().int().nullable().default(null),
    /** 'random' | 'sharegpt:<path>' | 'jsonl:<path>' */
    pd_dataset: z.string().default('random'),
    pd_seed: z.number().int().nullable().default(null),
    /** Requests sent (= num_prompts unless partial). */
    pd_sent: z.number().int().min(0).optional(),
    /**
     * True when the run produced no measurement (every request failed, or it could not run at all): its numbers
     * are vLLM's zeros and every reader (sheet, long CSV, compare, report) treats them as missing.
     */
    pd_failed: z.boolean().default(false),
    /** Why the run failed (the first request error, or what stopped it). */
    pd_error: z.string().nullable().default(null),
    /** What served the run: pd's simulator, real engines, or unknown (a --target pd did not start). */
    pd_engines: z.enum(['simulated', 'real', 'unknown']).default('unknown'),
    pd_ignore_eos: z.boolean().nullable().default(null),
    /** Warm-up requests sent before this run (not in its results). */
    pd_num_warmups: z.number().int().min(0).default(0),
    /** x-request-id of request i is this prefix + i (see the .requests.jsonl's request_id). */
    pd_request_id_prefix: z.string().nullable().default(null),
    /** Names of the --header headers sent (values are not stored: they may be secrets). */
    pd_header_names: z.array(z.string()).nullable().default(null),
    /** Sampling flags and --extra-body merged into every request body. */
    pd_extra_body: z.record(z.string(), z.unknown()).nullable().default(null),
    /** --metadata pairs (also written top-level, as vLLM does). */
    pd_metadata: z.record(z.string(), z.string()).nullable().default(null),
    /** How prompt lengths were made exact (see dataset.ts PromptTokens). */
    pd_prompt_tokens: z
      .object({ source: z.string(), chat_template_tokens: z.number().int().nullable(), adjusted: z.number().int(), pruned: z.number().int() })
      .nullable()
      .default(null),
    /** Coordinates of a sweep run (--max-concurrency list, --lengths). */
    pd_sweep: z
      .object({ maxConcurrency: z.number().int().nullable(), inputLen: z.number().int().nullable(), outputLen: z.number().int().nullable() })
      .nullable()
      .default(null),
    /** Whether the offered rate was clearly more than the target could serve (see saturation.ts). */
    pd_saturation: z.object({ saturated: z.boolean(), reason: z.string().nullable() }).nullable().default(null),
  });

export type RunResult = z.infer<typeof runResultSchema>;
export type RunResultInput = z.input<typeof runResultSchema>;

/** One line of `<run-name>.requests.jsonl`. Times in ms relative to the run's start unless stated. */
export const requestRecordSchema = z.object({
  index: z.number().int(),
  /** The x-request-id sent (find the request in the proxy's and engines' logs); null when none was sent. */
  request_id: z.string().nullable().optional(),
  /** Pre-computed arrival time. */
  scheduled_ms: num,
  /** When the request was actually handed to the socket (after any --max-concurrency wait). */
  sent_ms: num.nullable(),
  /** max(0, dispatch time − scheduled time), not counting a --max-concurrency wait. */
  lateness_ms: num,
  /** Time waiting for a --max-concurrency slot. */
  queue_ms: num,
  success: z.boolean(),
  status: z.number().int().nullable(),
  error: z.string(),
  error_kind: z.string().nullable(),
  input_len: z.number().int(),
  output_len: z.number().int(),
  usage_source: z.enum(['server', 'chunks']).nullable(),
  ttft_ms: nullableNum,
  e2el_ms: nullableNum,
  tpot_ms: nullableNum,
  /** Gaps between output chunks. */
  itl_ms: z.array(num),
  /** Tokens carried by each output chunk after the first (same length as itl_ms), when known. */
  chunk_tokens: z.array(z.number().int()).optional(),
  prefill_ms: nullableNum,
  decode_ttfb_ms: nullableNum,
  server_timing: z.string().nullable(),
});
export type RequestRecord = z.infer<typeof requestRecordSchema>;

/** vLLM's percentile key: p99, p99.9, p50 (integers without decimals, others as JS prints them). */
export function percentileKey(p: number, metric: string): string {
  // Python's str() of a float and JS String() agree for the values people use (99, 99.9, 99.99, 50).
  return `p${String(p)}_${metric}_ms`;
}

/** Read a percentile field (undefined when the run did not compute it). */
export function percentileOf(r: RunResult, metric: LatencyMetric, p: number): number | undefined {
  const v = (r as Record<string, unknown>)[percentileKey(p, metric)];
  return typeof v === 'number' ? v : undefined;
}

/** Paths of one run's files. */
export function runFiles(resultsDir: string, set: string, runName: string): { json: string; requests: string } {
  const dir = join(resultsDir, set);
  return { json: join(dir, `${runName}.json`), requests: join(dir, `${runName}.requests.jsonl`) };
}

/** Parse a result JSON (throws RuntimeError naming the file and the bad fields). */
export function parseRunResult(value: unknown, where = 'result'): RunResult {
  const parsed = runResultSchema.safeParse(value);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 5).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`);
    throw new RuntimeError(`${where} is not a pd bench result`, { details: issues });
  }
  return parsed.data;
}

async function listSets(resultsDir: string): Promise<string[]> {
  try {
    const entries = await readdir(resultsDir, { withFileTypes: true });
    return entries.filter((e) => e.isDirectory()).map((e) => e.name).sort();
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw e;
  }
}

/**
 * Every run result under `<resultsDir>/<set>/*.json` (all sets when `set` is omitted), sorted by set, then
 * kind (steady by offered rate, then flood, then single runs by start time). Files that are not pd results
 * (e.g. stray JSON) are skipped; an unreadable results dir gives [].
 */
export async function loadRunResults(resultsDir: string, set?: string): Promise<RunResult[]> {
  const sets = set === undefined ? await listSets(resultsDir) : [set];
  const out: RunResult[] = [];
  for (const s of sets) {
    let names: string[];
    try {
      names = (await readdir(join(resultsDir, s))).filter((n) => n.endsWith('.json'));
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
      throw e;
    }
    for (const name of names.sort()) {
      const path = join(resultsDir, s, name);
      let raw: unknown;
      try {
        raw = JSON.parse(await readFile(path, 'utf8'));
      } catch {
        continue;
      }
      const parsed = runResultSchema.safeParse(raw);
      if (parsed.success) out.push(parsed.data);
    }
  }
  return out.sort(compareRuns);
}

const KIND_ORDER: Record<RunKind, number> = { steady: 0, flood: 1, single: 2 };

export function compareRuns(a: RunResult, b: RunResult): number {
  if (a.pd_set !== b.pd_set) return a.pd_set < b.pd_set ? -1 : 1;
  if (a.pd_run_kind !== b.pd_run_kind) return KIND_ORDER[a.pd_run_kind] - KIND_ORDER[b.pd_run_kind];
  const ra = a.pd_offered_rate ?? Infinity;
  const rb = b.pd_offered_rate ?? Infinity;
  if (ra !== rb) return ra - rb;
  return a.pd_started_at < b.pd_started_at ? -1 : a.pd_started_at > b.pd_started_at ? 1 : 0;
}
