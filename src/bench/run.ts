/**
 * One benchmark run with the built-in generator: prompts → warm-up → open-loop load → metrics → RunResult +
 * files. A run that measured nothing (every request failed, or it could not start) is still archived, marked
 * `pd_failed` with its error, so no reader mistakes its zeros for measurements.
 */
import { Pool } from 'undici';
import { arrivalOffsetsMs } from './arrivals.js';
import { describeDataset, isSynthetic, loadPrompts, type DatasetSpec, type PromptTokens } from './dataset.js';
import { runLoad, type LoadEvent, type TimedOutcome } from './generator.js';
import { warmConnectionCount, warmConnections, warmRequests } from './warm-up.js';
import { kvDelta, kvSnapshot } from './kv-stats.js';
import { computeMetrics } from './metrics.js';
import type { Endpoint, RequestSettings } from './request.js';
import { runResultSchema, type GoodputSlos, type RequestRecord, type RunKind, type RunResult } from './result.js';
import { firstServedModel, servedBy, type ServedModel } from './target.js';
import { pdVersion, vllmDate, writeRunFiles } from './write.js';
import { judgeSaturation } from './saturation.js';
import { runName, type PlannedRun, type RequestOptions } from './run-plan.js';

export { rateLabel, runName } from './run-plan.js';

export interface RunOptions {
  /** Base URL, e.g. http://127.0.0.1:8000 */
  target: string;
  set: string;
  resultsDir: string;
  kind: RunKind;
  /** File stem; default from kind/rate/count (see runName). */
  runName?: string;
  endpoint: Endpoint;
  /** Model name to send; default: first of GET /v1/models. */
  model?: string;
  /** Model path for a local tokenizer.json (chat prompt lengths). */
  modelPath?: string;
  dataset: DatasetSpec;
  count: number;
  /** req/s; Infinity = all at once. */
  rate: number;
  burstiness?: number;
  maxConcurrency?: number | null;
  seed?: number;
  ignoreEos?: boolean;
  percentiles?: number[];
  slos?: GoodputSlos | null;
  apiKey?: string;
  /** Headers, body extras, label, metadata and request ids (run-plan.ts requestOptions). */
  request?: Partial<RequestOptions>;
  /** Warm-up requests before the measured run (vLLM's --num-warmups; excluded from the results). */
  numWarmups?: number;
  /** Use the target's /tokenize for exact prompt lengths when it has one (default true). */
  serverTokenizer?: boolean;
  /** Where the running stack's state lives (KV cache hit counts, the engines' /tokenize, provenance). */
  stateDir?: string;
  /** Sweep coordinates (stored in the result). */
  sweep?: PlannedRun['sweep'];
  stopSignal?: AbortSignal;
  abortSignal?: AbortSignal;
  onEvent?: (ev: LoadEvent) => void;
  /** Keep generated texts in the result (default true). */
  keepText?: boolean;
  /** Write files (default true). */
  write?: boolean;
}

export interface RunOutput {
  result: RunResult;
  records: RequestRecord[];
  files: { json: string; requests: string } | null;
}

function toRecord(o: TimedOutcome, idPrefix: string | null): RequestRecord {
  const tpot = o.success && o.outputTokens > 1 && o.e2elMs !== null && o.ttftMs !== null ? (o.e2elMs - o.ttftMs) / (o.outputTokens - 1) : null;
  return {
    index: o.index,
    request_id: idPrefix === null ? null : idPrefix + o.index,
    scheduled_ms: o.scheduledMs,
    sent_ms: o.sentMs,
    lateness_ms: o.latenessMs,
    queue_ms: o.queueMs,
    success: o.success,
    status: o.status,
    error: o.error,
    error_kind: o.errorKind,
    input_len: o.promptLen,
    output_len: o.success ? o.outputTokens : 0,
    usage_source: o.usageSource,
    ttft_ms: o.ttftMs,
    e2el_ms: o.e2elMs,
    tpot_ms: tpot,
    itl_ms: o.itlMs,
    chunk_tokens: o.chunkTokens,
    prefill_ms: o.prefillMs,
    decode_ttfb_ms: o.decodeTtfbMs,
    server_timing: o.serverTiming,
  };
}

function settingsOf(opts: RunOptions, served: ServedModel, basePath: string, idPrefix: string | null): RequestSettings {
  return {
    endpoint: opts.endpoint,
    model: served.name,
    ignoreEos: opts.ignoreEos ?? true,
    basePath,
    apiKey: opts.apiKey,
    keepText: opts.keepText,
    headers: opts.request?.headers ?? null,
    extraBody: opts.request?.extraBody ?? null,
    requestIdPrefix: idPrefix,
  };
}

/** The result fields every run has, measured or not (vLLM's setup block and pd's provenance). */
function setupFields(opts: RunOptions, served: ServedModel, startedAt: Date, engines: RunResult['pd_engines'], tokens: PromptTokens | null): Record<string, unknown> {
  const backend = opts.endpoint === 'chat' ? 'openai-chat' : 'openai';
  const d = opts.dataset;
  const meta = opts.request?.metadata ?? null;
  return {
    date: vllmDate(startedAt),
    endpoint_type: backend,
    backend,
    label: opts.request?.label ?? null,
    model_id: served.root,
    tokenizer_id: served.root,
    num_prompts: opts.count,
    // vLLM writes --metadata pairs as top-level keys; they never replace a key pd or vLLM defines.
    ...Object.fromEntries(Object.entries(meta ?? {}).filter(([k]) => !(k in runResultSchema.shape))),
    request_rate: opts.rate === Infinity ? 'inf' : opts.rate,
    burstiness: opts.burstiness ?? 1,
    max_concurrency: opts.maxConcurrency ?? null,
    pd_version: pdVersion(),
    pd_started_at: startedAt.toISOString(),
    pd_set: opts.set,
    pd_run_name: opts.runName ?? runName(opts.kind, opts.rate, opts.count, vllmDate(startedAt), opts.sweep),
    pd_run_kind: opts.kind,
    pd_target: opts.target,
    pd_endpoint: opts.endpoint,
    pd_engine: 'builtin',
    pd_offered_rate: opts.rate === Infinity ? null : opts.rate,
    pd_goodput_slos: opts.slos && Object.keys(opts.slos).length ? opts.slos : null,
    pd_input_len: isSynthetic(d) ? d.inputLen : null,
    pd_output_len: isSynthetic(d) ? d.outputLen : (d.outputLen ?? null),
    pd_dataset: describeDataset(d),
    pd_seed: opts.seed ?? 0,
    pd_engines: engines,
    pd_ignore_eos: opts.ignoreEos ?? true,
    pd_num_warmups: opts.numWarmups ?? 0,
    pd_request_id_prefix: opts.request?.requestIdPrefix ?? null,
    pd_header_names: opts.request?.headers ? Object.keys(opts.request.headers) : null,
    pd_extra_body: opts.request?.extraBody ?? null,
    pd_metadata: meta,
    pd_prompt_tokens: tokens,
    pd_sweep: opts.sweep ?? null,
  };
}

export async function runBenchmark(opts: RunOptions): Promise<RunOutput> {
  const startedAt = new Date();
  const served: ServedModel = opts.model ? { name: opts.model, root: opts.modelPath ?? opts.model } : await firstServedModel(opts.target, opts.apiKey);
  const engines = await servedBy(opts.target, opts.stateDir);
  const seed = opts.seed ?? 0;
  const promptOpts = {
    endpoint: opts.endpoint,
    model: opts.modelPath ?? served.root,
    tokenizer:
      opts.serverTokenizer === false
        ? null
        : { target: opts.target, stateDir: opts.stateDir, model: served.name, apiKey: opts.apiKey, headers: opts.request?.headers ?? undefined },
  };
  const { prompts, tokens } = await loadPrompts(opts.dataset, { ...promptOpts, count: opts.count, seed });
  const offsets = arrivalOffsetsMs({ count: opts.count, rate: opts.rate, burstiness: opts.burstiness ?? 1, seed });
  const url = new URL(opts.target);
  const pool = new Pool(url.origin, {
    connections: opts.maxConcurrency ?? null,
    pipelining: 1,
    headersTimeout: 0,
    bodyTimeout: 0,
    keepAliveTimeout: 60_000,
    connect: { timeout: 10_000 },
  });
  const basePath = url.pathname.replace(/\/+$/, '');
  const idPrefix = opts.request?.requestIdPrefix ?? null;
  const settings = settingsOf(opts, served, basePath, idPrefix);
  let load;
  let kvBefore = null;
  try {
    await warmConnections(pool, basePath, warmConnectionCount(opts.count, opts.maxConcurrency), opts.apiKey, 5_000, opts.stopSignal);
    const warmups = opts.numWarmups ?? 0;
    if (warmups > 0) {
      // Warm-up prompts have the run's shape but not its content (a synthetic dataset gets its own seed), so the
      // measured requests are not served from a cache the warm-up filled.
      const warm = isSynthetic(opts.dataset)
        ? (await loadPrompts(opts.dataset, { ...promptOpts, count: warmups, seed: seed ^ 0x5eed })).prompts
        : prompts.slice(0, 1);
      await warmRequests(pool, { ...settings, requestIdPrefix: idPrefix === null ? null : `${idPrefix}warmup-` }, warm, warmups, opts.maxConcurrency ?? null, opts.abortSignal);
    }
    kvBefore = await kvSnapshot({ target: opts.target, stateDir: opts.stateDir });
    load = await runLoad({
      dispatcher: pool,
      settings,
      prompts,
      offsetsMs: offsets,
      maxConcurrency: opts.maxConcurrency,
      stopSignal: opts.stopSignal,
      abortSignal: opts.abortSignal,
      onEvent: opts.onEvent,
    });
  } finally {
    await pool.close().catch(() => pool.destroy());
  }
  const kvAfter = await kvSnapshot({ target: opts.target, stateDir: opts.stateDir });
  const m = computeMetrics(load.outcomes, { percentiles: opts.percentiles ?? [50, 90, 95, 99], slos: opts.slos });
  const failed = m.completed === 0 && load.outcomes.length > 0;
  const result = runResultSchema.parse({
    ...setupFields(opts, served, startedAt, engines, tokens),
    duration: m.duration,
    completed: m.completed,
    failed: m.failed,
    total_input_tokens: m.total_input_tokens,
    total_output_tokens: m.total_output_tokens,
    request_throughput: m.request_throughput,
    request_goodput: m.request_goodput,
    output_throughput: m.output_throughput,
    total_token_throughput: m.total_token_throughput,
    max_output_tokens_per_s: m.max_output_tokens_per_s,
    max_concurrent_requests: m.max_concurrent_requests,
    ...m.latency,
    input_lens: m.input_lens,
    output_lens: m.output_lens,
    ttfts: m.ttfts,
    itls: m.itls,
    latencies: m.latencies,
    start_times: m.start_times,
    generated_texts: m.generated_texts,
    errors: m.errors,
    pd_good_request_fraction: m.pd_good_request_fraction,
    pd_error_kinds: m.pd_error_kinds,
    pd_usage_source: m.pd_usage_source,
    pd_send_lateness_ms: m.pd_send_lateness_ms,
    pd_stage_split: m.pd_stage_split,
    pd_kv_cache: kvDelta(kvBefore, kvAfter),
    pd_partial: load.partial,
    pd_itl_per_token_ms: m.pd_itl_per_token_ms,
    pd_percentiles: m.pd_percentiles,
    pd_sent: load.outcomes.length,
    pd_failed: failed,
    pd_error: failed ? `every request failed: ${m.errors.find((e) => e !== '') ?? 'no output'}` : null,
    pd_saturation: opts.kind === 'flood' || opts.rate === Infinity ? null : judgeSaturation(load.outcomes, opts.rate),
  } satisfies Record<string, unknown>);
  const records = [...load.outcomes].sort((a, b) => a.index - b.index).map((o) => toRecord(o, idPrefix));
  const files = opts.write === false ? null : await writeRunFiles(opts.resultsDir, result, records);
  return { result, records, files };
}

/**
 * Archive a run that could not run at all (the target died, a tokenizer call failed …): vLLM's keys with its
 * zeros, marked `pd_failed` with the error, so the sheet, the long CSV and the report show a failure, not zeros.
 */
export async function archiveFailedRun(opts: RunOptions, error: string, served?: ServedModel): Promise<RunOutput> {
  const startedAt = new Date();
  const model = served ?? { name: opts.model ?? 'unknown', root: opts.modelPath ?? opts.model ?? 'unknown' };
  const m = computeMetrics([], { percentiles: opts.percentiles ?? [50, 90, 95, 99], slos: opts.slos });
  const result = runResultSchema.parse({
    ...setupFields(opts, model, startedAt, await servedBy(opts.target, opts.stateDir).catch(() => 'unknown' as const), null),
    duration: 0,
    completed: 0,
    failed: 0,
    total_input_tokens: 0,
    total_output_tokens: 0,
    request_throughput: 0,
    request_goodput: m.request_goodput,
    output_throughput: 0,
    total_token_throughput: 0,
    max_output_tokens_per_s: 0,
    max_concurrent_requests: 0,
    ...m.latency,
    pd_good_request_fraction: 0,
    pd_error_kinds: {},
    pd_usage_source: 'server',
    pd_send_lateness_ms: null,
    pd_stage_split: null,
    pd_kv_cache: null,
    pd_partial: false,
    pd_percentiles: m.pd_percentiles,
    pd_sent: 0,
    pd_failed: true,
    pd_error: error,
  });
  const files = opts.write === false ? null : await writeRunFiles(opts.resultsDir, result, []);
  return { result, records: [], files };
}
