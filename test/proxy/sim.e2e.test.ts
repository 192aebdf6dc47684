/**
 * The proxy against the real simulator processes (built dist/sim): SharedStorage and Nixl PD end to end, and a
 * single-stage proxy over two plain engines. Every simulator-backed proxy check lives here so that the simulators
 * are started once per configuration.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { tempDir } from '../helpers/tmp.js';
import { startProxy, type ProxyHandle } from '../../src/proxy/server.js';
import { defaultConfig } from '../../src/config/schema.js';
import { post, chat, rawPost, MEDIA_TYPE_400 } from './harness.js';
import { freePort } from '../helpers/ports.js';

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
  test('`curl -d` through pd: vLLM\'s 400, and the producer never prefilled it', async () => {
    const [done0, prompts0] = [await metric(p.url, 'vllm:request_success_total'), await metric(p.url, 'vllm:prompt_tokens_total')];
    const body = JSON.stringify({ model: 'sim-model', prompt: 'a prompt the producer must never see', max_tokens: 4 });
    const res = await rawPost(proxy.url, '/v1/completions', body, { 'content-type': 'application/x-www-form-urlencoded' });
    assert.equal(res.status, 400);
    assert.equal(res.text, MEDIA_TYPE_400);
    assert.equal(await metric(p.url, 'vllm:request_success_total'), done0, 'no request finished on the producer');
    assert.equal(await metric(p.url, 'vllm:prompt_tokens_total'), prompts0, 'no prompt token prefilled');
    // and the same request as JSON goes through both stages
    const ok = await rawPost(proxy.url, '/v1/completions', body, { 'content-type': 'application/json' });
    assert.equal(ok.status, 200, ok.text);
    assert.ok((await metric(p.url, 'vllm:prompt_tokens_total')) > prompts0, 'the JSON request was prefilled');
  });
});

describe('proxy + simulator, NixlConnector', () => {
  let p: SimHandle, c: SimHandle, proxy: ProxyHandle;
  const lines: string[] = [];
  before(async () => {
    const kv = { kv_connector: 'NixlConnector', kv_role: 'kv_both' };
    // Each engine binds its own side channel: ephemeral ports, so that parallel test files never collide.
    const [side0, side1] = [await freePort(), await freePort()];
    [p, c] = await Promise.all([
      startSim({ kvConfig: kv, env: { VLLM_NIXL_SIDE_CHANNEL_HOST: '127.0.0.1', VLLM_NIXL_SIDE_CHANNEL_PORT: String(side0) } }),
      startSim({ kvConfig: kv, env: { VLLM_NIXL_SIDE_CHANNEL_HOST: '127.0.0.1', VLLM_NIXL_SIDE_CHANNEL_PORT: String(side1) } }),
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

describe('single-stage against the simulator (data parallel: two engines, no KV connector)', () => {
  let a: SimHandle, b: SimHandle, proxy: ProxyHandle;
  before(async () => {
    [a, b] = await Promise.all([startSim(), startSim()]);
    proxy = await startProxy({
      ...defaultConfig().proxy,
      host: '127.0.0.1',
      port: 0,
      balance: 'round-robin',
      mode: 'single-stage',
      engines: [
        { name: 'engine-0', url: a.url },
        { name: 'engine-1', url: b.url },
      ],
      connector: null,
      log: () => undefined,
    });
  });
  after(async () => {
    await proxy?.close();
    await Promise.all([a?.stop(), b?.stop()]);
  });

  test('streamed chat completions are served by both engines in turn', async () => {
    for (let i = 0; i < 2; i++) {
      const res = await post(proxy.url + '/v1/chat/completions', chat({ model: 'sim-model', stream: true, max_tokens: 5 }));
      assert.equal(res.status, 200, res.text);
      assert.ok(res.text.trimEnd().endsWith('data: [DONE]'));
    }
    for (const sim of [a, b]) {
      const m = await (await fetch(sim.url + '/metrics')).text();
      assert.match(m, /^vllm:request_success_total\{[^}]*\} 1/m, `one request on ${sim.url}`);
    }
  });
});
