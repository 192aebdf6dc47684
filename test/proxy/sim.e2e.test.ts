/** The proxy against the real simulator processes (built dist/sim): SharedStorage and Nixl PD end to end. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { tempDir } from '../helpers/tmp.js';
import { startProxy, type ProxyHandle } from '../../src/proxy/server.js';
import { defaultConfig } from '../../src/config/schema.js';
import { post, chat } from './harness.js';

async function metric(url: string, name: string): Promise<number> {
  const text = await (await fetch(url + '/metrics')).text();
  let sum = 0;
  for (const line of text.split('\n')) if (line.startsWith(name + '{') || line.startsWith(name + ' ')) sum += Number(line.split(' ').at(-1));
  return sum;
}

function proxyFor(producer: SimHandle, consumer: SimHandle, connector: string, lines: string[]): Promise<ProxyHandle> {
  return startProxy({
    ...defaultConfig().proxy,
    host: '127.0.0.1',
    port: 0,
    producers: [{ name: 'producer-0', url: producer.url }],
    consumers: [{ name: 'consumer-0', url: consumer.url }],
    connector,
    log: (l) => lines.push(l),
  });
}

describe('proxy + simulator, ExampleConnector', () => {
  let dir: { dir: string; cleanup: () => Promise<void> };
  let p: SimHandle, c: SimHandle, proxy: ProxyHandle;
  const lines: string[] = [];
  before(async () => {
    dir = await tempDir('pd-proxy-sim-');
    const kv = (role: string) => ({ kv_connector: 'ExampleConnector', kv_role: role, kv_connector_extra_config: { shared_storage_path: dir.dir } });
    [p, c] = await Promise.all([startSim({ kvConfig: kv('kv_producer') }), startSim({ kvConfig: kv('kv_consumer') })]);
    proxy = await proxyFor(p, c, 'ExampleConnector', lines);
  });
  after(async () => {
    await proxy?.close();
    await Promise.all([p?.stop(), c?.stop()]);
    await dir?.cleanup();
  });

  test('a streamed chat completion goes prefill → KV files → decode with an external cache hit', async () => {
    const res = await post(proxy.url + '/v1/chat/completions', chat({ model: 'sim-model', stream: true, max_tokens: 8, messages: [{ role: 'user', content: 'the quick brown fox jumps over the lazy dog again and again' }] }));
    assert.equal(res.status, 200, res.text);
    assert.match(res.headers.get('content-type')!, /text\/event-stream/);
    assert.ok(res.text.trimEnd().endsWith('data: [DONE]'));
    assert.match(res.headers.get('server-timing')!, /prefill;dur=.*decode;dur=/);
    assert.ok((await metric(c.url, 'vllm:external_prefix_cache_hits_total')) > 0, 'consumer loaded the KV the producer saved');
  });

  test('models come from the decode engine; /health is 200', async () => {
    const m = (await (await fetch(proxy.url + '/v1/models')).json()) as { data: { id: string }[] };
    assert.equal(m.data[0]!.id, 'sim-model');
    assert.equal((await fetch(proxy.url + '/health')).status, 200);
  });

  test('an engine error status passes through in the OpenAI shape', async () => {
    const res = await post(proxy.url + '/v1/completions', { model: 'sim-model', prompt: 'hi', max_tokens: 4 }, { 'x-pd-sim-fault': 'status=503' });
    assert.equal(res.status, 503);
    assert.ok(res.json.error ?? res.json.message, res.text);
  });

  test('a stream the engine cuts midway ends with an SSE error event', async () => {
    const res = await post(proxy.url + '/v1/completions', { model: 'sim-model', prompt: 'hi there', max_tokens: 20, stream: true }, { 'x-pd-sim-fault': 'cut=3' });
    assert.equal(res.status, 200);
    assert.match(res.text, /data: \{"error":/);
  });
});

describe('proxy + simulator, NixlConnector', () => {
  let p: SimHandle, c: SimHandle, proxy: ProxyHandle;
  const lines: string[] = [];
  before(async () => {
    const kv = { kv_connector: 'NixlConnector', kv_role: 'kv_both' };
    [p, c] = await Promise.all([
      startSim({ kvConfig: kv, env: { VLLM_NIXL_SIDE_CHANNEL_PORT: '5601' } }),
      startSim({ kvConfig: kv, env: { VLLM_NIXL_SIDE_CHANNEL_PORT: '5602' } }),
    ]);
    proxy = await proxyFor(p, c, 'NixlConnector', lines);
  });
  after(async () => {
    await proxy?.close();
    await Promise.all([p?.stop(), c?.stop()]);
  });

  test('kv_transfer_params go from the producer to the consumer (no recompute)', async () => {
    const res = await post(proxy.url + '/v1/completions', { model: 'sim-model', prompt: 'a long enough prompt for a few blocks of KV cache to move', max_tokens: 5, stream: true });
    assert.equal(res.status, 200, res.text);
    assert.ok(!lines.some((l) => l.includes('kv_transfer_params') && l.startsWith('warning')), lines.join('\n'));
    assert.ok((await metric(c.url, 'vllm:external_prefix_cache_hits_total')) > 0, 'consumer pulled the KV remotely');
    assert.equal(await metric(proxy.url, 'pd_proxy_kv_transfer_params_missing_total'), 0);
  });
});
