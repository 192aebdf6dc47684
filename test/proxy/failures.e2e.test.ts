/** Client disconnects, broken streams, timeouts, retries, health probing and the Nixl parameter hand-off. */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { rig, chat, post, sleep, until } from './harness.js';
import { completionJson, sseChunk } from './fake-engine.js';
import { freePort } from '../helpers/ports.js';

describe('client disconnect aborts the running stage', () => {
  test('during prefill: the producer sees the connection close and decode never starts', async () => {
    const r = await rig({ producer: { delayMs: 5_000 } });
    try {
      const ac = new AbortController();
      const p = post(r.proxy.url + '/v1/completions', { prompt: 'a' }, {}, ac.signal).catch((e: Error) => e);
      const rec = await r.producers[0]!.waitForRequest();
      ac.abort();
      await r.producers[0]!.waitForAbort(rec);
      assert.ok((await p) instanceof Error);
      await until(() => r.proxy.stats().inFlight === 0, 5000, 'in-flight to drop');
      assert.equal(r.consumers[0]!.calls().length, 0);
      assert.ok(r.lines.some((l) => l.includes(' 499 ') && l.includes('client_abort')));
    } finally {
      await r.close();
    }
  });

  test('during a decode stream: the consumer sees the connection close', async () => {
    const r = await rig({ consumer: { tokens: 1000, tokenGapMs: 20 } });
    try {
      const ac = new AbortController();
      const res = await fetch(r.proxy.url + '/v1/chat/completions', {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(chat({ stream: true })),
        signal: ac.signal,
      });
      assert.equal(res.status, 200);
      const reader = res.body!.getReader();
      await reader.read();
      const rec = await r.consumers[0]!.waitForRequest();
      ac.abort();
      await r.consumers[0]!.waitForAbort(rec);
      assert.equal(rec.aborted, true);
      await until(() => r.proxy.stats().inFlight === 0, 5000, 'in-flight to drop');
      assert.equal(r.proxy.stats().engines.find((e) => e.name === 'consumer-0')!.inFlight, 0);
      const metrics = await r.proxy.registry.metrics();
      assert.match(metrics, /pd_proxy_client_aborts_total\{stage="decode"\} 1/);
    } finally {
      await r.close();
    }
  });

  test('while queued: the request leaves the queue and never reaches an engine', async () => {
    const r = await rig({ maxConcurrent: 1, queueSize: 5, producer: { delayMs: 300 } });
    try {
      const first = post(r.proxy.url + '/v1/completions', { prompt: 'first' });
      await r.producers[0]!.waitForRequest();
      const ac = new AbortController();
      const second = post(r.proxy.url + '/v1/completions', { prompt: 'second' }, {}, ac.signal).catch((e: Error) => e);
      await until(() => r.proxy.stats().queued === 1, 5000, 'the second request to queue');
      ac.abort();
      await second;
      await until(() => r.proxy.stats().queued === 0, 5000, 'the queue to empty');
      assert.equal((await first).status, 200);
      assert.ok(!r.producers[0]!.calls().some((c) => c.json?.prompt === 'second'));
    } finally {
      await r.close();
    }
  });
});

describe('upstream failures', () => {
  test('a decode stream that breaks midway ends with an SSE error event', async () => {
    const r = await rig({
      consumer: {
        handler: async (rec, _req, res) => {
          if (rec.url === '/health') return void res.writeHead(200).end();
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(sseChunk(rec.json, 0));
          res.write('data: {"partial"'); // half an event, then the engine dies
          await sleep(20);
          res.socket!.destroy();
        },
      },
    });
    try {
      const res = await post(r.proxy.url + '/v1/chat/completions', chat({ stream: true }));
      assert.equal(res.status, 200);
      const events = res.text.split('\n\n').filter((e) => e.startsWith('data: '));
      const errEvent = events.find((e) => e.includes('"error"'))!;
      assert.ok(errEvent, res.text);
      const j = JSON.parse(errEvent.slice(6));
      assert.match(j.error.message, /failed mid-stream/);
      assert.ok(res.text.endsWith('data: [DONE]\n\n'));
      const m = await (await fetch(r.proxy.url + '/metrics')).text();
      assert.match(m, /pd_proxy_mid_stream_errors_total 1/);
    } finally {
      await r.close();
    }
  });

  test('a decode stream that goes silent longer than decodeIdleMs ends with an SSE error event', async () => {
    const r = await rig({
      timeouts: { decodeIdleMs: 150 },
      consumer: {
        handler: (rec, _req, res) => {
          res.writeHead(200, { 'content-type': 'text/event-stream' });
          res.write(sseChunk(rec.json, 0)); // and then nothing
        },
      },
    });
    try {
      const res = await post(r.proxy.url + '/v1/chat/completions', chat({ stream: true }));
      assert.match(res.text, /"error":\{"message":"[^"]*decodeIdleMs/);
    } finally {
      await r.close();
    }
  });

  test('prefill longer than prefillMs is a 504 in the OpenAI error shape', async () => {
    const r = await rig({ timeouts: { prefillMs: 100 }, producer: { delayMs: 2_000 } });
    try {
      const res = await post(r.proxy.url + '/v1/completions', { prompt: 'a' });
      assert.equal(res.status, 504);
      assert.equal(res.json.error.code, 504);
      assert.match(res.json.error.message, /prefillMs/);
    } finally {
      await r.close();
    }
  });

  test('an unreachable engine is a 502 naming it (no engine listening)', async () => {
    const dead = `http://127.0.0.1:${await freePort()}`;
    const r = await rig();
    await r.close();
    const { startProxy } = await import('../../src/proxy/server.js');
    const { defaultConfig } = await import('../../src/config/schema.js');
    const lines: string[] = [];
    const p = await startProxy({
      ...defaultConfig().proxy,
      host: '127.0.0.1',
      port: 0,
      healthIntervalMs: 60_000,
      producers: [{ name: 'producer-0', url: dead }],
      consumers: [{ name: 'consumer-0', url: dead }],
      connector: 'SharedStorageConnector',
      log: (l) => lines.push(l),
    });
    try {
      const res = await post(p.url + '/v1/completions', { prompt: 'a' });
      assert.ok(res.status === 502 || res.status === 503, String(res.status));
      assert.equal(res.json.error.code, res.status);
      assert.match(res.json.error.message, /producer/);
      const h = await fetch(p.url + '/health');
      assert.equal(h.status, 503);
    } finally {
      await p.close();
    }
  });

  test('a refused connection (nothing sent) is retried once on another engine', async () => {
    // producer-0 passes its first /health probe and then stops listening; producer-1 works
    const { startProxy } = await import('../../src/proxy/server.js');
    const { defaultConfig } = await import('../../src/config/schema.js');
    const { startFakeEngine } = await import('./fake-engine.js');
    const gone = await startFakeEngine();
    const refused = gone.url;
    const good = await startFakeEngine();
    const cons = await startFakeEngine();
    const p = await startProxy({
      ...defaultConfig().proxy,
      host: '127.0.0.1',
      port: 0,
      rateLimit: 0,
      balance: 'round-robin',
      healthIntervalMs: 60_000,
      producers: [
        { name: 'producer-0', url: refused },
        { name: 'producer-1', url: good.url },
      ],
      consumers: [{ name: 'consumer-0', url: cons.url }],
      connector: 'SharedStorageConnector',
      log: () => undefined,
    });
    try {
      await until(() => gone.requests.some((q) => q.url === '/health'), 5000, 'the first probe');
      await until(() => p.stats().engines.every((e) => e.healthy), 5000, 'every engine in rotation');
      await gone.close();
      for (let i = 0; i < 4; i++) {
        const res = await post(p.url + '/v1/completions', { prompt: `a${i}` });
        assert.equal(res.status, 200, res.text);
      }
      assert.equal(good.calls().filter((c) => c.url === '/v1/completions').length, 4);
      const m = await (await fetch(p.url + '/metrics')).text();
      assert.match(m, /pd_proxy_retries_total\{stage="prefill"\} 1/);
    } finally {
      await p.close();
      await good.close();
      await cons.close();
    }
  });

  test('a connection that breaks after the request went out is not retried: 502, and no other engine runs it', async () => {
    // consumer-0 reads the whole request and then drops the connection (the engine may be generating);
    // consumer-1 works. Retrying would run the generation twice.
    const r = await rig({
      consumer: [
        {
          handler: (rec, req, res) => {
            if (rec.url === '/health') return void res.writeHead(200).end();
            req.socket.destroy();
          },
        },
        {},
      ],
      balance: 'round-robin',
      healthIntervalMs: 60_000,
    });
    try {
      const statuses: number[] = [];
      for (let i = 0; i < 4; i++) {
        const res = await post(r.proxy.url + '/v1/completions', { prompt: `p${i}` });
        statuses.push(res.status);
        if (res.status !== 200) {
          assert.equal(res.status, 502, res.text);
          assert.match(res.json.error.message, /consumer-0/);
        }
      }
      assert.deepEqual([...statuses].sort(), [200, 200, 502, 502]);
      // every prompt reached exactly one consumer
      const seen = [...r.consumers[0]!.calls(), ...r.consumers[1]!.calls()].map((c) => c.json?.prompt).sort();
      assert.deepEqual(seen, ['p0', 'p1', 'p2', 'p3']);
      const m = await (await fetch(r.proxy.url + '/metrics')).text();
      assert.doesNotMatch(m, /pd_proxy_retries_total\{/);
    } finally {
      await r.close();
    }
  });
});

describe('several engines and health', () => {
  test('round-robin spreads both stages over xPyD engines', async () => {
    const r = await rig({ producer: [{}, {}], consumer: [{}, {}, {}], balance: 'round-robin' });
    try {
      for (let i = 0; i < 6; i++) assert.equal((await post(r.proxy.url + '/v1/completions', { prompt: `x${i}` })).status, 200);
      assert.deepEqual(r.producers.map((e) => e.calls().length), [3, 3]);
      assert.deepEqual(r.consumers.map((e) => e.calls().length), [2, 2, 2]);
    } finally {
      await r.close();
    }
  });

  test('least-in-flight avoids a busy consumer', async () => {
    const r = await rig({ consumer: [{ tokens: 50, tokenGapMs: 20 }, {}], balance: 'least-in-flight' });
    try {
      const ac = new AbortController();
      const long = fetch(r.proxy.url + '/v1/chat/completions', { method: 'POST', body: JSON.stringify(chat({ stream: true })), signal: ac.signal, headers: { 'content-type': 'application/json' } });
      const res = await long;
      const busy = r.consumers.findIndex((e) => e.calls().length === 1);
      for (let i = 0; i < 3; i++) await post(r.proxy.url + '/v1/completions', { prompt: 'q' });
      assert.equal(r.consumers[1 - busy]!.calls().length, 3);
      ac.abort();
      await res.body?.cancel().catch(() => undefined);
    } finally {
      await r.close();
    }
  });

  test('a failing /health takes an engine out and a passing one puts it back; /health needs one of each role', async () => {
    const r = await rig({ producer: [{}, { healthStatus: 500 }], healthIntervalMs: 50 });
    try {
      await until(() => r.proxy.stats().engines.find((e) => e.name === 'producer-1')!.healthy === false, 5000, 'producer-1 out');
      let s = r.proxy.stats();
      assert.equal(s.engines.find((e) => e.name === 'producer-1')!.healthy, false);
      assert.equal((await fetch(r.proxy.url + '/health')).status, 200);
      for (let i = 0; i < 4; i++) await post(r.proxy.url + '/v1/completions', { prompt: 'q' });
      assert.equal(r.producers[1]!.calls().length, 0, 'no traffic to the unhealthy producer');
      r.producers[1]!.opts.healthStatus = 200;
      await until(() => r.proxy.stats().engines.find((e) => e.name === 'producer-1')!.healthy, 5000, 'producer-1 back');
      s = r.proxy.stats();
      assert.equal(s.engines.find((e) => e.name === 'producer-1')!.healthy, true);
      assert.ok(r.lines.some((l) => l.includes('producer-1') && l.includes('back in rotation')));
      r.consumers[0]!.opts.healthStatus = 503;
      await until(() => !r.proxy.stats().engines.find((e) => e.name === 'consumer-0')!.healthy, 5000, 'consumer-0 out');
      const h = await fetch(r.proxy.url + '/health');
      assert.equal(h.status, 503);
      const res = await post(r.proxy.url + '/v1/completions', { prompt: 'q' });
      assert.equal(res.status, 503);
      assert.match(res.json.error.message, /No healthy consumer/);
    } finally {
      await r.close();
    }
  });

  test('setEngineHealthy takes an engine out at once and puts it back', async () => {
    const r = await rig({ consumer: [{}, {}], healthIntervalMs: 60_000 });
    try {
      r.proxy.setEngineHealthy('consumer-0', false);
      for (let i = 0; i < 3; i++) await post(r.proxy.url + '/v1/completions', { prompt: 'q' });
      assert.equal(r.consumers[0]!.calls().length, 0);
      r.proxy.setEngineHealthy('consumer-1', false);
      assert.equal((await fetch(r.proxy.url + '/health')).status, 503);
      r.proxy.setEngineHealthy('consumer-0', true);
      assert.equal((await fetch(r.proxy.url + '/health')).status, 200);
      assert.throws(() => r.proxy.setEngineHealthy('nope', true), /no engine named/);
    } finally {
      await r.close();
    }
  });
});

describe('NixlConnector parameter hand-off', () => {
  const params = { do_remote_prefill: true, do_remote_decode: false, remote_block_ids: [1, 2, 3], remote_engine_id: 'eng-p', remote_host: '10.0.0.1', remote_port: 5600, tp_size: 1 };

  test('stage 1 asks for remote decode; stage 2 carries the params stage 1 returned', async () => {
    const r = await rig({ connector: 'NixlConnector', producer: { kvTransferParams: params } });
    try {
      const res = await post(r.proxy.url + '/v1/chat/completions', chat({ stream: true }));
      assert.equal(res.status, 200);
      const p = r.producers[0]!.calls().at(-1)!.json!;
      assert.deepEqual(p.kv_transfer_params, { do_remote_decode: true, do_remote_prefill: false, remote_engine_id: null, remote_block_ids: null, remote_host: null, remote_port: null });
      const c = r.consumers[0]!.calls().at(-1)!.json!;
      assert.deepEqual(c.kv_transfer_params, params);
      assert.equal(c.stream, true);
      assert.equal(c.max_tokens, 4);
    } finally {
      await r.close();
    }
  });

  test('missing params from stage 1 are counted and logged as a warning (decode still runs)', async () => {
    const r = await rig({ connector: 'NixlConnector' });
    try {
      const res = await post(r.proxy.url + '/v1/completions', { prompt: 'a' });
      assert.equal(res.status, 200);
      assert.equal(r.consumers[0]!.calls().at(-1)!.json!.kv_transfer_params, undefined);
      assert.ok(r.lines.some((l) => l.startsWith('warning:') && l.includes('kv_transfer_params') && l.includes('recompute')));
      const m = await (await fetch(r.proxy.url + '/metrics')).text();
      assert.match(m, /pd_proxy_kv_transfer_params_missing_total 1/);
    } finally {
      await r.close();
    }
  });
});

describe('close()', () => {
  test('aborts in-flight upstream requests and stops accepting', async () => {
    const r = await rig({ consumer: { tokens: 1000, tokenGapMs: 20 } });
    const res = await fetch(r.proxy.url + '/v1/chat/completions', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(chat({ stream: true })) });
    const reader = res.body!.getReader();
    await reader.read();
    const rec = await r.consumers[0]!.waitForRequest();
    await r.proxy.close();
    await r.consumers[0]!.waitForAbort(rec);
    await assert.rejects(fetch(r.proxy.url + '/health'));
    await reader.cancel().catch(() => undefined);
    await Promise.all([...r.producers, ...r.consumers].map((e) => e.close()));
  });
});
void completionJson;
