import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Histogram, Registry } from 'prom-client';
import { StageHistogram } from '../../src/proxy/stage-histogram.js';
import { ProxyMetrics } from '../../src/proxy/metrics.js';

const BUCKETS = [0.001, 0.005, 0.01, 0.1, 1, 10];

test('the stage histogram exposes exactly what a prom-client Histogram would for the same observations', async () => {
  const ours = new Registry();
  const theirs = new Registry();
  const h = new StageHistogram('x_seconds', 'help text', 'stage', ['prefill', 'decode_ttfb', 'total'], BUCKETS, ours);
  const p = new Histogram({ name: 'x_seconds', help: 'help text', labelNames: ['stage'], buckets: BUCKETS, registers: [theirs] });
  // Values on bucket bounds, between them, above the top bucket, zero; one label value never observed.
  const values = [0, 0.001, 0.0010001, 0.004, 0.005, 0.5, 1, 9.99, 10, 10.5, 1234];
  for (const [i, v] of values.entries()) {
    // prefill first: prom-client lists label values in the order first observed, ours in declared order.
    const stage = i % 2 ? 'total' : 'prefill';
    h.labels(stage).observe(v);
    p.labels(stage).observe(v);
  }
  h.labels('total').observe(Number.NaN); // ignored (prom-client would throw on the hot path)
  assert.equal(await ours.metrics(), await theirs.metrics());
  assert.match(await ours.metrics(), /x_seconds_bucket\{le="0.005",stage="prefill"\} 3\n/);
  assert.doesNotMatch(await ours.metrics(), /decode_ttfb/);
  assert.throws(() => h.labels('other' as 'total'), /unknown stage "other"/);
  h.reset();
  assert.equal(await ours.metrics(), '# HELP x_seconds help text\n# TYPE x_seconds histogram\n');
});

test('request counts reach pd_proxy_requests_total when /metrics is read, and keep adding up', async () => {
  const m = new ProxyMetrics({ inFlight: () => 0, queued: () => 0, engines: () => [] });
  for (let i = 0; i < 5; i++) m.countRequest('/v1/completions', 200);
  m.countRequest('/v1/completions', 503);
  m.prefillSeconds.observe(0.02);
  let text = await m.registry.metrics();
  assert.match(text, /pd_proxy_requests_total\{route="\/v1\/completions",status="200"\} 5\n/);
  assert.match(text, /pd_proxy_requests_total\{route="\/v1\/completions",status="503"\} 1\n/);
  assert.match(text, /pd_proxy_stage_duration_seconds_count\{stage="prefill"\} 1\n/);
  m.countRequest('/v1/completions', 200);
  text = await m.registry.metrics();
  assert.match(text, /pd_proxy_requests_total\{route="\/v1\/completions",status="200"\} 6\n/);
  assert.match(text, /pd_proxy_requests_total\{route="\/v1\/completions",status="503"\} 1\n/);
  // A reset drops what was counted but not yet scraped, too.
  m.countRequest('/v1/completions', 200);
  m.registry.resetMetrics();
  assert.doesNotMatch(await m.registry.metrics(), /pd_proxy_requests_total\{/);
  m.countRequest('/v1/completions', 200);
  assert.match(await m.registry.metrics(), /pd_proxy_requests_total\{route="\/v1\/completions",status="200"\} 1\n/);
});
