/** /health naming the engines that are out, "down for good" from the supervisor, and a prober that cleans up. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { createHook } from 'node:async_hooks';
import { rig, post, sleep, until } from './harness.js';

describe('/health says which engine is out', () => {
  test('an engine marked down for good makes the proxy degraded, names it, and is never probed back in', async () => {
    const r = await rig({ consumer: [{}, {}], healthIntervalMs: 20 });
    try {
      let h = (await (await fetch(r.proxy.url + '/health')).json()) as Record<string, any>;
      assert.equal(h.status, 'ok');
      assert.deepEqual(h.unhealthy, []);
      r.proxy.setEngineDown('consumer-1', 'crashed 5 times in 60 s; restart budget spent');
      const res = await fetch(r.proxy.url + '/health');
      assert.equal(res.status, 200);
      h = (await res.json()) as Record<string, any>;
      assert.equal(h.status, 'degraded');
      assert.deepEqual(h.unhealthy, ['consumer-1']);
      const c1 = h.engines.find((e: { name: string }) => e.name === 'consumer-1');
      assert.equal(c1.state, 'down');
      assert.match(c1.reason, /restart budget/);
      assert.equal(h.engines.find((e: { name: string }) => e.name === 'consumer-0').state, 'up');
      // the engine still answers /health 200, but the prober leaves it out
      const probes = r.consumers[1]!.requests.filter((q) => q.url === '/health').length;
      await sleep(100);
      assert.equal(r.consumers[1]!.requests.filter((q) => q.url === '/health').length, probes, 'no probe of a down engine');
      assert.equal(r.proxy.stats().engines.find((e) => e.name === 'consumer-1')!.healthy, false);
      assert.equal(r.proxy.stats().engines.find((e) => e.name === 'consumer-1')!.down, 'crashed 5 times in 60 s; restart budget spent');
      for (let i = 0; i < 3; i++) assert.equal((await post(r.proxy.url + '/v1/completions', { prompt: 'q' })).status, 200);
      assert.equal(r.consumers[1]!.calls().length, 0);
      assert.ok(r.lines.some((l) => l.startsWith('warning:') && l.includes('consumer-1') && l.includes('down for good')));
      // its supervisor brings it back
      r.proxy.setEngineHealthy('consumer-1', true);
      h = (await (await fetch(r.proxy.url + '/health')).json()) as Record<string, any>;
      assert.equal(h.status, 'ok');
    } finally {
      await r.close();
    }
  });

  test('a role with no engine left is unhealthy (503) and the body says which engines', async () => {
    const r = await rig({ healthIntervalMs: 60_000 });
    try {
      r.proxy.setEngineDown('consumer-0', 'exited with code 1');
      const res = await fetch(r.proxy.url + '/health');
      assert.equal(res.status, 503);
      const h = (await res.json()) as Record<string, any>;
      assert.equal(h.status, 'unhealthy');
      assert.equal(h.mode, 'two-stage');
      assert.deepEqual(h.unhealthy, ['consumer-0']);
      assert.equal(h.consumers[0].healthy, false);
      assert.throws(() => r.proxy.setEngineDown('nope', 'x'), /no engine named/);
    } finally {
      await r.close();
    }
  });
});

describe('the health prober', () => {
  test('probes one at a time per engine, and close() is prompt with a probe and a stream hanging', async () => {
    const r = await rig({
      healthIntervalMs: 10,
      producer: {
        handler: (rec, _req, res) => {
          if (rec.url === '/health') return; // never answers
          res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
        },
      },
      consumer: { tokens: 1000, tokenGapMs: 50 },
    });
    const ac = new AbortController();
    try {
      await sleep(150);
      assert.equal(r.producers[0]!.requests.filter((q) => q.url === '/health').length, 1, 'one probe in flight, not one per tick');
      const res = await fetch(r.proxy.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ model: 'm', messages: [{ role: 'user', content: 'x' }], stream: true }),
        signal: ac.signal,
      });
      await res.body!.getReader().read();
      const t0 = performance.now();
      await r.proxy.close();
      const ms = performance.now() - t0;
      assert.ok(ms < 500, `close() took ${ms.toFixed(0)} ms`);
      const hanging = r.producers[0]!.requests.find((q) => q.url === '/health')!;
      await r.producers[0]!.waitForAbort(hanging, 2000);
    } finally {
      ac.abort();
      await r.close();
    }
  });

  test('probing leaves no timer behind once the proxy is closed', async () => {
    const live = new Map<number, string>();
    const hook = createHook({
      init(id, type) {
        if (type === 'Timeout') live.set(id, new Error().stack ?? '');
      },
      destroy(id) {
        live.delete(id);
      },
    });
    const r = await rig({ healthIntervalMs: 10, timeouts: { connectMs: 500 } });
    hook.enable();
    try {
      await until(() => r.producers[0]!.requests.filter((q) => q.url === '/health').length >= 10, 5000, '10 probes');
      await r.proxy.close();
      await Promise.all([...r.producers, ...r.consumers].map((e) => e.close()));
      // undici's own timer wheel ticks every 0.5 s until it is empty
      await until(() => [...live.values()].every((s) => !/src[\\/]proxy[\\/]/.test(s)), 3000, 'the timers the proxy started to end').catch(() => undefined);
      const left = [...live.values()].filter((s) => /src[\\/]proxy[\\/]/.test(s));
      assert.deepEqual(left, [], 'timers started by the proxy are still pending');
    } finally {
      hook.disable();
      await r.close();
    }
  });
});
