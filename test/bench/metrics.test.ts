import { test } from 'node:test';
import assert from 'node:assert/strict';
import { computeMetrics } from '../../src/bench/metrics.ts';
import type { TimedOutcome } from '../../src/bench/generator.ts';

const close = (a: number | null | undefined, b: number, eps = 1e-9): void => assert.ok(a !== null && a !== undefined && Math.abs(a - b) <= eps, `${a} != ${b}`);

/** A successful request sent at `sent` ms with output chunks at the given times (ms after send). */
function ok(index: number, sent: number, chunkTimes: number[], tokens = chunkTimes.length, promptLen = 10, extra: Partial<TimedOutcome> = {}): TimedOutcome {
  const itl = chunkTimes.slice(1).map((t, i) => t - chunkTimes[i]!);
  return {
    index, scheduledMs: sent, arrivedMs: sent, latenessMs: 0, queueMs: 0, sentMs: sent,
    success: true, status: 200, error: '', errorKind: null, promptLen, outputTokens: tokens, usageSource: 'server',
    startAt: 1000 + sent, endAt: 1000 + sent + chunkTimes.at(-1)! + 1, ttftMs: chunkTimes[0]!, e2elMs: chunkTimes.at(-1)!,
    itlMs: itl, chunkTokens: itl.map(() => 1), generatedText: 'x', serverTiming: null, prefillMs: null, decodeTtfbMs: null,
    ...extra,
  };
}
function failed(index: number, sent: number, kind: string, endAfter = 5): TimedOutcome {
  return {
    index, scheduledMs: sent, arrivedMs: sent, latenessMs: 0, queueMs: 0, sentMs: sent,
    success: false, status: kind.startsWith('http_') ? Number(kind.slice(5)) : 200, error: kind, errorKind: kind, promptLen: 10,
    outputTokens: 0, usageSource: null, startAt: 1000 + sent, endAt: 1000 + sent + endAfter, ttftMs: null, e2elMs: null,
    itlMs: [], chunkTokens: [], generatedText: '', serverTiming: null, prefillMs: null, decodeTtfbMs: null,
  };
}

test('TTFT, TPOT, ITL, E2EL and throughput on a fixed timeline', () => {
  const outs = [
    ok(0, 0, [100, 110, 120, 130], 4), // ttft 100, e2el 130, tpot 10, itl 10,10,10
    ok(1, 500, [200, 240], 2), // ttft 200, e2el 240, tpot 40, itl 40
    ok(2, 1000, [50], 1), // one token: no tpot, no itl
  ];
  const m = computeMetrics(outs, { percentiles: [50, 99] });
  assert.equal(m.completed, 3);
  assert.equal(m.failed, 0);
  close(m.latency.mean_ttft_ms, (100 + 200 + 50) / 3);
  close(m.latency.median_ttft_ms, 100);
  close(m.latency.p99_ttft_ms, 100 + 0.98 * 100); // sorted [50,100,200], h = 1.98
  close(m.latency.mean_tpot_ms, 25);
  close(m.latency.std_tpot_ms, 15);
  close(m.latency.mean_itl_ms, (10 + 10 + 10 + 40) / 4);
  close(m.latency.median_itl_ms, 10);
  close(m.latency.mean_e2el_ms, (130 + 240 + 50) / 3);
  // duration: first dispatch (t=0) → last response end (request 2 ends at 1000+50+1)
  close(m.duration, 1.051);
  close(m.request_throughput, 3 / 1.051);
  assert.equal(m.total_output_tokens, 7);
  assert.equal(m.total_input_tokens, 30);
  close(m.output_throughput, 7 / 1.051);
  close(m.total_token_throughput, 37 / 1.051);
  assert.equal(m.request_goodput, null);
  assert.equal(m.pd_good_request_fraction, 1);
  assert.deepEqual(m.ttfts, [0.1, 0.2, 0.05]);
  assert.deepEqual(m.output_lens, [4, 2, 1]);
  assert.equal(m.max_concurrent_requests, 1);
  assert.ok('p99_itl_ms' in m.latency && 'p50_e2el_ms' in m.latency);
});

test('failures count: failed, error kinds, good fraction; goodput with SLOs', () => {
  const outs = [ok(0, 0, [100, 110, 120], 3), ok(1, 0, [300, 400, 500], 3), failed(2, 0, 'in_band_error'), failed(3, 0, 'http_503')];
  const m = computeMetrics(outs, { percentiles: [50], slos: { ttft: 150 } });
  assert.equal(m.completed, 2);
  assert.equal(m.failed, 2);
  assert.deepEqual(m.pd_error_kinds, { in_band_error: 1, http_503: 1 });
  assert.equal(m.pd_good_request_fraction, 1 / 4, 'only request 0 meets TTFT ≤ 150 and failures are not good');
  close(m.request_goodput, 1 / m.duration);
  assert.deepEqual(m.output_lens, [3, 3, 0, 0]);
  assert.deepEqual(m.errors.slice(2), ['in_band_error', 'http_503']);
  assert.equal(m.max_concurrent_requests, 2);
  const noSlo = computeMetrics(outs, { percentiles: [50] });
  assert.equal(noSlo.pd_good_request_fraction, 0.5);
});

test('percentile names follow vLLM (p99.9), per-token ITL splits multi-token chunks, usage source reported', () => {
  const a = ok(0, 0, [10, 30], 5, 10, { chunkTokens: [4], usageSource: 'chunks' });
  const m = computeMetrics([a], { percentiles: [99.9] });
  assert.ok('p99.9_ttft_ms' in m.latency);
  assert.ok('p99_ttft_ms' in m.latency);
  close(m.latency.mean_itl_ms, 20);
  close(m.pd_itl_per_token_ms!.mean_ms, 5);
  assert.equal(m.pd_usage_source, 'chunks');
  close(m.latency.mean_tpot_ms, 5); // (30-10)/(5-1)
});

test('stage split from Server-Timing and lateness stats', () => {
  const outs = [0, 1, 2, 3].map((i) => ok(i, i * 10, [20, 30], 2, 10, { prefillMs: 10 + i, decodeTtfbMs: 2, latenessMs: i }));
  const m = computeMetrics(outs, { percentiles: [50] });
  assert.equal(m.pd_stage_split!.samples, 4);
  close(m.pd_stage_split!.prefill_ms.mean, 11.5);
  close(m.pd_stage_split!.decode_ttfb_ms.p99, 2);
  close(m.pd_send_lateness_ms.max, 3);
  close(m.pd_send_lateness_ms.p50, 1.5);
});

test('KV hit deltas say what they count: requests from pd, tokens from vLLM metrics', async () => {
  const { kvDelta } = await import('../../src/bench/kv-stats.ts');
  const pd = kvDelta({ hits: 2, queries: null, source: 'pd-proxy-metrics:http://x' }, { hits: 7, queries: null, source: 'pd-proxy-metrics:http://x' });
  assert.deepEqual(pd, { hits: 5, misses: null, source: 'pd-proxy-metrics:http://x', unit: 'requests' });
  const vllm = kvDelta({ hits: 0, queries: 10, source: 'metrics:http://e' }, { hits: 32, queries: 90, source: 'metrics:http://e' });
  assert.deepEqual(vllm, { hits: 32, misses: 48, source: 'metrics:http://e', unit: 'tokens' });
  assert.equal(kvDelta(null, pd && { hits: 1, queries: null, source: 's' }), null);
});
