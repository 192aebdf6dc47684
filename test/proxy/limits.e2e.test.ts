/** Token bucket over time (charged once per client request), admission queue bounds, 429/503 with Retry-After. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rig, post, until } from './harness.js';

describe('rate limit', () => {
  test('reject mode: burst 3 admits 3 at once, then 429 with Retry-After; each admitted request costs one token', async () => {
    // 0.2 req/s: no token comes back during the test, so the outcome does not depend on timing
    const r = await rig({ rateLimit: 0.2, burst: 3, onRateLimit: 'reject' });
    try {
      const results = [];
      for (let i = 0; i < 5; i++) results.push(await post(r.proxy.url + '/v1/completions', { prompt: `p${i}` }));
      assert.deepEqual(results.map((x) => x.status), [200, 200, 200, 429, 429]);
      const rej = results[3]!;
      assert.equal(rej.json.error.code, 429);
      assert.ok(Number(rej.headers.get('retry-after')) >= 1);
      // two stages per admitted request, but only one token each: 3 prefill + 3 decode calls
      assert.equal(r.producers[0]!.calls().length, 3);
      assert.equal(r.consumers[0]!.calls().length, 3);
      const m = await (await fetch(r.proxy.url + '/metrics')).text();
      assert.match(m, /pd_proxy_rejected_total\{reason="rate_limit"\} 2/);
    } finally {
      await r.close();
    }
  });

  test('wait mode: charged once per client request (burst 4 lets exactly 4 two-stage requests through)', async () => {
    const r = await rig({ rateLimit: 0.01, burst: 4, onRateLimit: 'wait', timeouts: { queueMs: 1000 } });
    try {
      const results = [];
      for (let i = 0; i < 5; i++) results.push((await post(r.proxy.url + '/v1/completions', { prompt: `p${i}` })).status);
      assert.deepEqual(results, [200, 200, 200, 200, 429]);
    } finally {
      await r.close();
    }
  });

  test('wait mode: the rate over time follows the bucket (requests reach the engines spaced by 1/rate)', async () => {
    // 20 req/s, burst 1: 6 requests sent at once reach the producer at least ~50 ms apart
    const r = await rig({ rateLimit: 20, burst: 1, onRateLimit: 'wait' });
    try {
      const res = await Promise.all(Array.from({ length: 6 }, (_, i) => post(r.proxy.url + '/v1/completions', { prompt: `p${i}` })));
      assert.deepEqual(res.map((x) => x.status), [200, 200, 200, 200, 200, 200]);
      const at = r.producers[0]!.calls().map((c) => c.at).sort((a, b) => a - b);
      const span = at.at(-1)! - at[0]!;
      assert.ok(span >= 5 * 50 * 0.9, `6 requests at 20/s reached the producer within ${span.toFixed(0)} ms (expected >= 250 ms)`);
      const m = await (await fetch(r.proxy.url + '/metrics')).text();
      assert.match(m, /pd_proxy_rate_limit_waits_total 5/);
    } finally {
      await r.close();
    }
  });

  test('wait mode refuses with 429 when the wait would exceed the queue timeout', async () => {
    const r = await rig({ rateLimit: 1, burst: 1, onRateLimit: 'wait', timeouts: { queueMs: 200 } });
    try {
      assert.equal((await post(r.proxy.url + '/v1/completions', { prompt: 'a' })).status, 200);
      const res = await post(r.proxy.url + '/v1/completions', { prompt: 'b' });
      assert.equal(res.status, 429);
      assert.ok(res.headers.get('retry-after'));
    } finally {
      await r.close();
    }
  });
});

describe('admission queue', () => {
  test('at most max-concurrent in the stages, a FIFO queue of queue-size, then 503 with Retry-After', async () => {
    const r = await rig({ maxConcurrent: 2, queueSize: 2, producer: { delayMs: 300 } });
    try {
      const reqs = Array.from({ length: 6 }, (_, i) => post(r.proxy.url + '/v1/completions', { prompt: `p${i}` }));
      await until(() => r.proxy.stats().queued === 2 && r.producers[0]!.calls().length === 2 && r.proxy.stats().rejected === 2, 5000, '2 running, 2 queued, 2 refused');
      // 2 in the producer, 2 queued, 2 refused
      assert.equal(r.producers[0]!.calls().length, 2);
      const s = r.proxy.stats();
      assert.equal(s.inFlight, 2);
      assert.equal(s.queued, 2);
      const m = await (await fetch(r.proxy.url + '/metrics')).text();
      assert.match(m, /pd_proxy_queue_depth 2/);
      assert.match(m, /pd_proxy_in_flight 2/);
      const res = await Promise.all(reqs);
      const statuses = res.map((x) => x.status).sort();
      assert.deepEqual(statuses, [200, 200, 200, 200, 503, 503]);
      const refused = res.find((x) => x.status === 503)!;
      assert.equal(refused.json.error.code, 503);
      assert.ok(Number(refused.headers.get('retry-after')) >= 1);
      // never more than 2 prefills at once
      assert.equal(r.producers[0]!.calls().length, 4);
      assert.equal(r.proxy.stats().rejected, 2);
      const m2 = await (await fetch(r.proxy.url + '/metrics')).text();
      assert.match(m2, /pd_proxy_rejected_total\{reason="queue_full"\} 2/);
      assert.match(m2, /pd_proxy_queue_waits_total\{outcome="admitted"\} 2/);
    } finally {
      await r.close();
    }
  });

  test('a queued request that waits longer than queueMs gets 503', async () => {
    const r = await rig({ maxConcurrent: 1, queueSize: 5, timeouts: { queueMs: 100 }, producer: { delayMs: 400 } });
    try {
      const first = post(r.proxy.url + '/v1/completions', { prompt: 'slow' });
      await r.producers[0]!.waitForRequest();
      const second = await post(r.proxy.url + '/v1/completions', { prompt: 'queued' });
      assert.equal(second.status, 503);
      assert.match(second.json.error.message, /waited 100 ms/);
      assert.equal((await first).status, 200);
    } finally {
      await r.close();
    }
  });
});
