/**
 * Single-stage mode (TP, PP, DP stacks): whole requests balanced over engines, with the same limits, queue,
 * request ids, access log, metrics and Server-Timing (one stage) as the two-stage proxy.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rig, chat, post, until, type Rig } from './harness.js';
import { freePort } from '../helpers/ports.js';
import { startFakeEngine } from './fake-engine.js';
import { startProxy } from '../../src/proxy/server.js';
import { defaultConfig } from '../../src/config/schema.js';

describe('single-stage routing', () => {
  let r: Rig;
  before(async () => {
    r = await rig({ mode: 'single-stage', engine: [{}, {}], balance: 'round-robin', accessLog: 'json' });
  });
  after(() => r.close());

  test('each request runs whole on one engine, round-robin; the body goes as sent', async () => {
    const raw = '{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":3}';
    for (let i = 0; i < 4; i++) {
      const res = await post(r.proxy.url + '/v1/chat/completions', raw, { 'x-request-id': `rid-${i}` });
      assert.equal(res.status, 200);
      assert.ok(res.text.endsWith('data: [DONE]\n\n'));
      assert.equal(res.headers.get('x-request-id'), `rid-${i}`);
      assert.match(res.headers.get('server-timing')!, /^queue;dur=[\d.]+, engine;dur=[\d.]+$/);
    }
    assert.deepEqual(r.engines.map((e) => e.calls().length), [2, 2]);
    const c = r.engines[0]!.calls()[0]!;
    assert.equal(c.body, raw, 'no stage rewrite: the engine gets the client bytes');
    assert.equal(c.headers['x-request-id'], 'rid-0');
    await until(() => r.lines.filter((l) => l.includes('"/v1/chat/completions"')).length === 4, 2000, 'four access lines');
    const j = JSON.parse(r.lines.find((l) => l.includes('"rid-1"'))!);
    assert.equal(j.engine, 'engine-1');
    assert.equal(j.status, 200);
    assert.equal(typeof j.ttfb_ms, 'number');
    assert.equal(j.prefill_ms, undefined);
  });

  test('other /v1/* requests go to an engine; /health and /metrics speak of engines', async () => {
    const m = await fetch(r.proxy.url + '/v1/models');
    assert.equal(m.status, 200);
    const h = (await (await fetch(r.proxy.url + '/health')).json()) as Record<string, any>;
    assert.equal(h.status, 'ok');
    assert.equal(h.mode, 'single-stage');
    assert.deepEqual(h.engines.map((e: { name: string; role: string }) => `${e.name}:${e.role}`), ['engine-0:engine', 'engine-1:engine']);
    assert.equal(h.producers, undefined);
    const text = await (await fetch(r.proxy.url + '/metrics')).text();
    assert.match(text, /pd_proxy_stage_duration_seconds_count\{stage="engine_ttfb"\} \d+/);
    assert.match(text, /pd_proxy_engine_healthy\{engine="engine-0",role="engine"\} 1/);
  });

  test('the same checks as two-stage: content type and rewritten fields', async () => {
    const before = r.engines[0]!.calls().length + r.engines[1]!.calls().length;
    const bad = await post(r.proxy.url + '/v1/completions', { prompt: 'a', max_tokens: 'many' });
    assert.equal(bad.status, 400);
    assert.equal(bad.json.error.param, 'max_tokens');
    const ct = await fetch(r.proxy.url + '/v1/completions', { method: 'POST', body: '{"prompt":"a"}', headers: { 'content-type': 'text/plain' } });
    assert.equal(ct.status, 400);
    assert.equal(((await ct.json()) as { error: { type: string } }).error.type, 'Bad Request');
    assert.equal(r.engines[0]!.calls().length + r.engines[1]!.calls().length, before);
  });
});

describe('single-stage limits and failures', () => {
  test('rate limit and admission queue apply to every generation route', async () => {
    const r = await rig({ mode: 'single-stage', rateLimit: 0.2, burst: 2, onRateLimit: 'reject' });
    try {
      assert.equal((await post(r.proxy.url + '/v1/completions', { prompt: 'a' })).status, 200);
      assert.notEqual((await post(r.proxy.url + '/v1/embeddings', { input: 'a' })).status, 429);
      const res = await post(r.proxy.url + '/v1/chat/completions', chat());
      assert.equal(res.status, 429);
      assert.ok(res.headers.get('retry-after'));
    } finally {
      await r.close();
    }
  });

  test('an engine failing /health is left out; a refused connection is retried on another engine', async () => {
    const r = await rig({ mode: 'single-stage', engine: [{ healthStatus: 503 }, {}], healthIntervalMs: 20 });
    try {
      await until(() => !r.proxy.stats().engines.find((e) => e.name === 'engine-0')!.healthy, 5000, 'engine-0 out');
      for (let i = 0; i < 3; i++) assert.equal((await post(r.proxy.url + '/v1/completions', { prompt: 'q' })).status, 200);
      assert.equal(r.engines[0]!.calls().length, 0);
      const h = (await (await fetch(r.proxy.url + '/health')).json()) as Record<string, any>;
      assert.equal(h.status, 'degraded');
      assert.deepEqual(h.unhealthy, ['engine-0']);
    } finally {
      await r.close();
    }
    const refused = `http://127.0.0.1:${await freePort()}`;
    const good = await startFakeEngine();
    const p = await startProxy({
      ...defaultConfig().proxy,
      host: '127.0.0.1',
      port: 0,
      rateLimit: 0,
      balance: 'round-robin',
      healthIntervalMs: 60_000,
      mode: 'single-stage',
      engines: [
        { name: 'engine-0', url: good.url },
        { name: 'engine-1', url: refused },
      ],
      connector: null,
      log: () => undefined,
    });
    try {
      await until(() => p.stats().engines.some((e) => !e.healthy), 5000, 'the first probe of engine-1');
      p.setEngineHealthy('engine-1', true); // as if it had passed: the request finds the port closed
      for (let i = 0; i < 2; i++) assert.equal((await post(p.url + '/v1/completions', { prompt: `x${i}` })).status, 200);
      assert.equal(good.calls().length, 2);
      assert.match(await (await fetch(p.url + '/metrics')).text(), /pd_proxy_retries_total\{stage="engine"\} 1/);
    } finally {
      await p.close();
      await good.close();
    }
  });

  test('startProxy refuses a single-stage proxy without engines', async () => {
    await assert.rejects(
      startProxy({ ...defaultConfig().proxy, port: 0, mode: 'single-stage', engines: [], connector: null }),
      /at least one engine/,
    );
  });
});
