/**
 * One benchmark run with the built-in generator: prompts → open-loop load → metrics → RunResult + files.
 */
import { Pool } from 'undici';
import { arrivalOffsetsMs } from './arrivals.js';
import { describeDataset, loadPrompts, type DatasetSpec } from './dataset.js';
import { runLoad, type LoadEvent, type TimedOutcome } from './generator.js';
import { warmConnectionCount, warmConnections } from './warm-up.js';
import { kvDelta, kvSnapshot } from './kv-stats.js';
import { computeMetrics } from './metrics.js';
import type { Endpoint } from './request.js';
import { runResultSchema, type GoodputSlos, type RequestRecord, type RunKind, type RunResult } from './result.js';
import { firstServedModel, type ServedModel } from './target.js';
import { pdVersion, vllmDate, writeRunFiles } from './write.js';

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
  label?: string | null;
  /** Where the running stack's state lives (for KV cache hit counts). */
  stateDir?: string;
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

export function rateLabel(rate: number): string {
  return rate === Infinity ? 'inf' : String(rate);
}

export function runName(kind: RunKind, rate: number, count: number, date = vllmDate()): string {
  if (kind === 'steady') return `steady-rate${rateLabel(rate)}`;
  if (kind === 'flood') return `flood-n${count}`;
  return rate === Infinity ? `single-inf-n${count}-${date}` : `single-rate${rateLabel(rate)}-n${count}-${date}`;
}

function toRecord(o: TimedOutcome): RequestRecord {
  const tpot = o.success && o.outputTokens > 1 && o.e2elMs !== null && o.ttftMs !== null ? (o.e2elMs - o.ttftMs) / (o.outputTokens - 1) : null;
  return {
    index: o.index,
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

export async function runBenchmark(opts: RunOptions): Promise<RunOutput> {
  const startedAt = new Date();
  const served: ServedModel = opts.model ? { name: opts.model, root: opts.modelPath ?? opts.model } : await firstServedModel(opts.target, opts.apiKey);
  const seed = opts.seed ?? 0;
  const { prompts } = await loadPrompts(opts.dataset, {
    count: opts.count,
    endpoint: opts.endpoint,
    seed,
    model: opts.modelPath ?? served.root,
  });
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
  await warmConnections(pool, basePath, warmConnectionCount(opts.count, opts.maxConcurrency), opts.apiKey, 5_000, opts.stopSignal);
  const kvBefore = await kvSnapshot({ target: opts.target, stateDir: opts.stateDir });
  let load;
  try {
    load = await runLoad({
      dispatcher: pool,
      settings: {
        endpoint: opts.endpoint,
        model: served.name,
        ignoreEos: opts.ignoreEos ?? true,
        basePath,
        apiKey: opts.apiKey,
        keepText: opts.keepText,
      },
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
  const backend = opts.endpoint === 'chat' ? 'openai-chat' : 'openai';
  const dataset = opts.dataset;
  const result = runResultSchema.parse({
    date: vllmDate(startedAt),
    endpoint_type: backend,
    backend,
    label: opts.label ?? null,
    model_id: served.root,
    tokenizer_id: served.root,
    num_prompts: opts.count,
    request_rate: opts.rate === Infinity ? 'inf' : opts.rate,
    burstiness: opts.burstiness ?? 1,
    max_concurrency: opts.maxConcurrency ?? null,
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
    pd_version: pdVersion(),
    pd_started_at: startedAt.toISOString(),
    pd_set: opts.set,
    pd_run_name: opts.runName ?? runName(opts.kind, opts.rate, opts.count, vllmDate(startedAt)),
    pd_run_kind: opts.kind,
    pd_target: opts.target,
    pd_endpoint: opts.endpoint,
    pd_engine: 'builtin',
    pd_offered_rate: opts.rate === Infinity ? null : opts.rate,
    pd_good_request_fraction: m.pd_good_request_fraction,
    pd_goodput_slos: opts.slos && Object.keys(opts.slos).length ? opts.slos : null,
    pd_error_kinds: m.pd_error_kinds,
    pd_usage_source: m.pd_usage_source,
    pd_send_lateness_ms: m.pd_send_lateness_ms,
    pd_stage_split: m.pd_stage_split,
    pd_kv_cache: kvDelta(kvBefore, kvAfter),
    pd_partial: load.partial,
    pd_itl_per_token_ms: m.pd_itl_per_token_ms,
    pd_percentiles: m.pd_percentiles,
    pd_input_len: dataset.kind === 'random' ? dataset.inputLen : null,
    pd_output_len: dataset.kind === 'random' ? dataset.outputLen : (dataset.outputLen ?? null),
    pd_dataset: describeDataset(dataset),
    pd_seed: seed,
    pd_sent: load.outcomes.length,
  } satisfies Record<string, unknown>);
  const records = [...load.outcomes].sort((a, b) => a.index - b.index).map(toRecord);
  const files = opts.write === false ? null : await writeRunFiles(opts.resultsDir, result, records);
  return { result, records, files };
}
