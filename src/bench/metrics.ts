/**
 * Turns timed request outcomes into the numbers `vllm bench serve` reports (calculate_metrics in
 * vllm/benchmarks/serve.py), with pd's extras. Definitions:
 * - completed/failed: successful / unsuccessful requests among those SENT (unsent prompts of an interrupted
 *   run are not failures; `pd_partial` says the run was cut short).
 * - duration: first dispatch → last response end (seconds).
 * - TTFT: send → first chunk with generated output. TPOT: (E2EL − TTFT)/(output tokens − 1) for requests
 *   with more than one output token. ITL: gaps between output chunks, pooled over requests. E2EL: send → last
 *   output chunk. Each gets mean, median, population std and numpy-linear percentiles.
 * - throughputs: completed requests, output tokens and input+output tokens of completed requests / duration.
 * - goodput (with SLOs): completed requests meeting every SLO (TPOT counted as 0 for ≤1 token, as vLLM) /
 *   duration; pd_good_request_fraction = good / sent (failures are not good; without SLOs good = completed).
 */
import type { GoodputSlos, Lateness, StageSplit } from './result.js';
import { mean, percentileSorted, sortedCopy, summarize, withP99 } from './stats.js';
import type { TimedOutcome } from './generator.js';

export interface MetricOptions {
  percentiles: readonly number[];
  slos?: GoodputSlos | null;
}

export interface RunMetrics {
  duration: number;
  completed: number;
  failed: number;
  total_input_tokens: number;
  total_output_tokens: number;
  request_throughput: number;
  request_goodput: number | null;
  output_throughput: number;
  total_token_throughput: number;
  max_output_tokens_per_s: number;
  max_concurrent_requests: number;
  /** mean_ttft_ms, median_ttft_ms, std_ttft_ms, p99_ttft_ms, … for ttft, tpot, itl, e2el. */
  latency: Record<string, number>;
  input_lens: number[];
  output_lens: number[];
  ttfts: number[];
  itls: number[][];
  latencies: number[];
  start_times: number[];
  generated_texts: string[];
  errors: string[];
  pd_good_request_fraction: number;
  pd_error_kinds: Record<string, number>;
  pd_usage_source: 'server' | 'chunks';
  pd_send_lateness_ms: Lateness;
  pd_stage_split: StageSplit | null;
  pd_itl_per_token_ms: Record<string, number> | null;
  pd_percentiles: number[];
}

function fieldsFor(metric: string, values: number[], percentiles: number[]): Record<string, number> {
  const s = summarize(values, percentiles);
  const out: Record<string, number> = {
    [`mean_${metric}_ms`]: s.mean,
    [`median_${metric}_ms`]: s.median,
    [`std_${metric}_ms`]: s.std,
  };
  for (const [p, v] of s.percentiles) out[`p${String(p)}_${metric}_ms`] = v;
  return out;
}

function stageStats(values: number[]): { mean: number; median: number; p99: number } {
  const sorted = Array.from(sortedCopy(values));
  return { mean: mean(values), median: percentileSorted(sorted, 50), p99: percentileSorted(sorted, 99) };
}

/** vLLM's peak output tokens per second (chunks bucketed per whole second from the first start). */
function peakOutputPerSecond(ok: TimedOutcome[]): number {
  if (ok.length === 0) return 0;
  const startS = (o: TimedOutcome): number => o.sentMs / 1000;
  const minStart = ok.reduce((m, o) => Math.min(m, startS(o)), Infinity);
  const maxEnd = ok.reduce((m, o) => Math.max(m, startS(o) + (o.e2elMs ?? 0) / 1000), -Infinity);
  const buckets = new Float64Array(Math.ceil(maxEnd - minStart) + 1);
  for (const o of ok) {
    let t = startS(o) + (o.ttftMs ?? 0) / 1000;
    const add = (time: number): void => {
      const b = Math.floor(time - minStart);
      if (b >= 0 && b < buckets.length) buckets[b]! += 1;
    };
    add(t);
    for (const gap of o.itlMs) {
      t += gap / 1000;
      add(t);
    }
  }
  let max = 0;
  for (const v of buckets) if (v > max) max = v;
  return max;
}

/** Exact peak of concurrently open successful requests over half-open [start, start+latency). */
function peakConcurrency(ok: TimedOutcome[]): number {
  const events: Array<[number, number]> = [];
  for (const o of ok) {
    events.push([o.sentMs, 1], [o.sentMs + (o.e2elMs ?? 0), -1]);
  }
  events.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let peak = 0;
  for (const [, d] of events) {
    cur += d;
    if (cur > peak) peak = cur;
  }
  return peak;
}

export function computeMetrics(outcomes: readonly TimedOutcome[], opts: MetricOptions): RunMetrics {
  const percentiles = withP99(opts.percentiles);
  const sent = [...outcomes].sort((a, b) => a.index - b.index);
  const ok = sent.filter((o) => o.success);
  const ttfts: number[] = [];
  const tpots: number[] = [];
  const allTpots: number[] = [];
  const itls: number[] = [];
  const itlsPerToken: number[] = [];
  const e2els: number[] = [];
  let totalInput = 0;
  let totalOutput = 0;
  let anyChunkCounted = false;
  for (const o of ok) {
    totalInput += o.promptLen;
    totalOutput += o.outputTokens;
    if (o.usageSource === 'chunks') anyChunkCounted = true;
    const ttft = o.ttftMs ?? 0;
    const e2el = o.e2elMs ?? 0;
    ttfts.push(ttft);
    e2els.push(e2el);
    let tpot = 0;
    if (o.outputTokens > 1) {
      tpot = (e2el - ttft) / (o.outputTokens - 1);
      tpots.push(tpot);
    }
    allTpots.push(tpot);
    for (let i = 0; i < o.itlMs.length; i++) {
      const gap = o.itlMs[i]!;
      itls.push(gap);
      const k = o.chunkTokens[i] ?? 1;
      for (let j = 0; j < k; j++) itlsPerToken.push(gap / k);
    }
  }

  const endMs = sent.length ? sent.reduce((m, o) => Math.max(m, o.endAt), -Infinity) : 0;
  const firstMs = sent.length ? sent.reduce((m, o) => Math.min(m, o.startAt), Infinity) : 0;
  const durationS = sent.length ? Math.max(0, endMs - firstMs) / 1000 : 0;
  const per = (x: number): number => (durationS > 0 ? x / durationS : 0);

  const slos = opts.slos && Object.keys(opts.slos).length > 0 ? opts.slos : null;
  let good = 0;
  ok.forEach((o, i) => {
    if (!slos) return void good++;
    const pass =
      (slos.ttft === undefined || ttfts[i]! <= slos.ttft) &&
      (slos.tpot === undefined || allTpots[i]! <= slos.tpot) &&
      (slos.e2el === undefined || e2els[i]! <= slos.e2el);
    if (pass) good++;
  });

  const errorKinds: Record<string, number> = {};
  for (const o of sent) if (!o.success) errorKinds[o.errorKind ?? 'other'] = (errorKinds[o.errorKind ?? 'other'] ?? 0) + 1;

  const lateness = sent.map((o) => o.latenessMs);
  const lateSorted = Array.from(sortedCopy(lateness));
  const withTiming = sent.filter((o) => o.prefillMs !== null || o.decodeTtfbMs !== null);
  const stageSplit: StageSplit | null =
    withTiming.length === 0
      ? null
      : {
          samples: withTiming.length,
          prefill_ms: stageStats(withTiming.flatMap((o) => (o.prefillMs === null ? [] : [o.prefillMs]))),
          decode_ttfb_ms: stageStats(withTiming.flatMap((o) => (o.decodeTtfbMs === null ? [] : [o.decodeTtfbMs]))),
        };

  const perToken = fieldsFor('itl', itlsPerToken, percentiles);
  const perTokenShort: Record<string, number> = {};
  for (const [k, v] of Object.entries(perToken)) perTokenShort[k.replace('_itl_ms', '_ms')] = v;

  return {
    duration: durationS,
    completed: ok.length,
    failed: sent.length - ok.length,
    total_input_tokens: totalInput,
    total_output_tokens: totalOutput,
    request_throughput: per(ok.length),
    request_goodput: slos ? per(good) : null,
    output_throughput: per(totalOutput),
    total_token_throughput: per(totalInput + totalOutput),
    max_output_tokens_per_s: peakOutputPerSecond(ok),
    max_concurrent_requests: peakConcurrency(ok),
    latency: {
      ...fieldsFor('ttft', ttfts, percentiles),
      ...fieldsFor('tpot', tpots, percentiles),
      ...fieldsFor('itl', itls, percentiles),
      ...fieldsFor('e2el', e2els, percentiles),
    },
    input_lens: sent.map((o) => o.promptLen),
    output_lens: sent.map((o) => (o.success ? o.outputTokens : 0)),
    ttfts: sent.map((o) => (o.success ? (o.ttftMs ?? 0) / 1000 : 0)),
    itls: sent.map((o) => (o.success ? o.itlMs.map((g) => g / 1000) : [])),
    latencies: sent.map((o) => (o.success ? (o.e2elMs ?? 0) / 1000 : 0)),
    start_times: sent.map((o) => o.sentMs / 1000),
    generated_texts: sent.map((o) => o.generatedText),
    errors: sent.map((o) => (o.success ? '' : o.error)),
    pd_good_request_fraction: sent.length ? good / sent.length : 0,
    pd_error_kinds: errorKinds,
    pd_usage_source: anyChunkCounted ? 'chunks' : 'server',
    pd_send_lateness_ms: {
      mean: mean(lateness),
      p50: percentileSorted(lateSorted, 50),
      p99: percentileSorted(lateSorted, 99),
      max: lateSorted.length ? lateSorted[lateSorted.length - 1]! : 0,
    },
    pd_stage_split: stageSplit,
    pd_itl_per_token_ms: itlsPerToken.length ? perTokenShort : null,
    pd_percentiles: percentiles,
  };
}
