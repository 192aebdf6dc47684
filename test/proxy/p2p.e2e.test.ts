/**
 * P2pNcclConnector: both stages carry the request id of vLLM's P2P proxy example
 * (examples/online_serving/disaggregated_serving_p2p_nccl_xpyd/disagg_proxy_p2p_nccl_xpyd.py):
 * `___prefill_addr_<ip:kv_port>___decode_addr_<ip:kv_port>_<uuid>` in X-Request-Id, naming the producer that
 * prefills and the consumer that decodes (the connector parses both addresses from it).
 */
import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { startFakeEngine, type FakeEngine } from './fake-engine.js';
import { post, chat, until } from './harness.js';
import { startProxy, type ProxyHandle } from '../../src/proxy/server.js';
import { defaultConfig } from '../../src/config/schema.js';

const ID = /^___prefill_addr_(.+:\d+)___decode_addr_(.+:\d+)_([0-9a-f]{32})$/;

async function p2pRig(nP: number, nC: number): Promise<{ proxy: ProxyHandle; producers: FakeEngine[]; consumers: FakeEngine[]; lines: string[]; close(): Promise<void> }> {
  const producers = await Promise.all(Array.from({ length: nP }, () => startFakeEngine()));
  const consumers = await Promise.all(Array.from({ length: nC }, () => startFakeEngine()));
  const lines: string[] = [];
  const proxy = await startProxy({
    ...defaultConfig().proxy,
    host: '127.0.0.1',
    port: 0,
    rateLimit: 0,
    balance: 'round-robin',
    connector: 'P2pNcclConnector',
    producers: producers.map((e, i) => ({ name: `producer-${i}`, url: e.url, kvAddress: `10.0.0.1:${21001 + i}` })),
    consumers: consumers.map((e, i) => ({ name: `consumer-${i}`, url: e.url, kvAddress: `10.0.0.2:${22001 + i}` })),
    log: (l) => lines.push(l),
  });
  return {
    proxy,
    producers,
    consumers,
    lines,
    async close() {
      await proxy.close();
      await Promise.all([...producers, ...consumers].map((e) => e.close()));
    },
  };
}

describe('P2P NCCL request ids', () => {
  test('both stages get the same id naming the producer and the consumer that serve them; the client sees pd\'s id', async () => {
    const r = await p2pRig(2, 2);
    try {
      const ids = new Set<string>();
      for (let i = 0; i < 4; i++) {
        const pBefore = r.producers.map((e) => e.calls().length);
        const cBefore = r.consumers.map((e) => e.calls().length);
        const res = await post(r.proxy.url + '/v1/chat/completions', chat({ stream: true }), { 'x-request-id': `client-${i}` });
        assert.equal(res.status, 200);
        assert.equal(res.headers.get('x-request-id'), `client-${i}`);
        const pIdx = r.producers.findIndex((e, k) => e.calls().length > pBefore[k]!);
        const cIdx = r.consumers.findIndex((e, k) => e.calls().length > cBefore[k]!);
        const p = r.producers[pIdx]!.calls().at(-1)!;
        const c = r.consumers[cIdx]!.calls().at(-1)!;
        assert.equal(c.headers['x-request-id'], p.headers['x-request-id'], 'the decode request carries the prefill request id');
        const m = ID.exec(String(p.headers['x-request-id']));
        assert.ok(m, String(p.headers['x-request-id']));
        assert.equal(m[1], `10.0.0.1:${21001 + pIdx}`, 'prefill_addr names the producer that prefilled');
        assert.equal(m[2], `10.0.0.2:${22001 + cIdx}`, 'decode_addr names the consumer that decoded');
        ids.add(m[0]);
      }
      assert.equal(ids.size, 4, 'a fresh uuid per request');
      assert.deepEqual(r.consumers.map((e) => e.calls().length), [2, 2]);
      await until(() => r.lines.filter((l) => l.includes('/v1/chat/completions')).length === 4, 2000, 'access lines');
      assert.ok(r.lines.some((l) => l.includes('client-2')), 'the access log keeps pd\'s own request id');
      assert.ok(!r.lines.some((l) => l.includes('___prefill_addr_')));
    } finally {
      await r.close();
    }
  });

  test('a prefill retried on another producer names that producer; the consumer stays the one named', async () => {
    const r = await p2pRig(2, 1);
    try {
      await until(() => r.proxy.stats().engines.every((e) => e.healthy), 5000, 'all in rotation');
      await r.producers[0]!.close(); // refuses connections from now on
      const res = await post(r.proxy.url + '/v1/completions', { prompt: 'a', max_tokens: 2 });
      assert.equal(res.status, 200, res.text);
      const p = r.producers[1]!.calls().at(-1)!;
      const c = r.consumers[0]!.calls().at(-1)!;
      assert.equal(p.headers['x-request-id'], c.headers['x-request-id']);
      assert.equal(ID.exec(String(p.headers['x-request-id']))![1], '10.0.0.1:21002');
    } finally {
      await r.close();
    }
  });

  test('startProxy refuses P2pNcclConnector without every engine\'s kvAddress', async () => {
    await assert.rejects(
      startProxy({
        ...defaultConfig().proxy,
        port: 0,
        connector: 'P2pNcclConnector',
        producers: [{ name: 'producer-0', url: 'http://127.0.0.1:1', kvAddress: '10.0.0.1:21001' }],
        consumers: [{ name: 'consumer-0', url: 'http://127.0.0.1:2' }],
      }),
      /kvAddress.*consumer-0/,
    );
  });
});
