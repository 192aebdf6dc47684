import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { tempDir } from '../helpers/tmp.js';
import { freePort } from '../helpers/ports.js';
import { postJson, assertSameShape, fixture } from './sse.js';
import { promptOfLength, tokenize } from '../../src/sim/tokenizer.js';
import { saveFolderName, layerNames } from '../../src/sim/kv/shared-storage.js';

const metric = (text: string, name: string, labels = ''): number => {
  const re = new RegExp(`^${name.replace(/[:]/g, '\\$&')}\\{[^}]*${labels}[^}]*\\} (\\S+)$`, 'm');
  const m = re.exec(text);
  return m ? Number(m[1]) : NaN;
};

describe('ExampleConnector producer -> consumer through real processes', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let producer: SimHandle;
  let consumer: SimHandle;
  before(async () => {
    ({ dir, cleanup } = await tempDir('pd-sim-ss-'));
    const kv = (role: string) => ({ engine_id: 'e1', kv_connector: 'ExampleConnector', kv_role: role, kv_connector_extra_config: { shared_storage_path: dir } });
    [producer, consumer] = await Promise.all([
      startSim({ kvConfig: kv('kv_producer'), env: { PD_SIM_KV_LAYERS: '3', CUDA_VISIBLE_DEVICES: '0' } }),
      startSim({ kvConfig: kv('kv_consumer'), env: { PD_SIM_KV_LAYERS: '3', CUDA_VISIBLE_DEVICES: '1' } }),
    ]);
  });
  after(async () => {
    await Promise.all([producer?.stop(), consumer?.stop()]);
    await cleanup?.();
  });

  test('start-up logs the storage path and the GPU the engine was given', () => {
    assert.match(producer.output(), new RegExp(`Shared storage path is ${dir}`));
    assert.match(producer.output(), /CUDA_VISIBLE_DEVICES=0/);
    assert.match(consumer.output(), /CUDA_VISIBLE_DEVICES=1/);
    assert.match(producer.output(), /^\(APIServer pid=\d+\) INFO \d\d-\d\d \d\d:\d\d:\d\d \[api_server\.py:\d+\] vLLM API server version 0\.31\.0$/m);
    assert.match(producer.output(), /Starting vLLM API server 0 on http:\/\/127\.0\.0\.1:\d+/);
    assert.match(producer.output(), /INFO: {5}Started server process \[\d+\]/);
    assert.match(producer.output(), /INFO: {5}Application startup complete\./);
    assert.doesNotMatch(producer.output(), /Uvicorn running on/);
  });

  test('prefill (max_tokens=1) writes the folder; the consumer hits and logs like vLLM', async () => {
    const prompt = promptOfLength(40, 11);
    const ids = tokenize(prompt);
    const p = await postJson(`${producer.url}/v1/completions`, { prompt, max_tokens: 1 });
    assert.equal(p.status, 200);
    const folder = saveFolderName(ids, 16);
    assert.ok(readdirSync(dir).includes(folder));
    assert.deepEqual(readdirSync(join(dir, folder)).sort(), layerNames(3).map((l) => `${l}.safetensors`).sort());
    const c = await postJson(`${consumer.url}/v1/completions`, { prompt, max_tokens: 5 });
    assert.equal(c.json.usage.completion_tokens, 5);
    await consumer.waitForOutput(/\(EngineCore_DP0 pid=\d+\) INFO .*\[example_connector\.py:\d+\] External Cache Hit!/);
    await consumer.waitForOutput(/Inject KV cache of 32 tokens to the paged memory/);
    const m = await (await fetch(`${consumer.url}/metrics`)).text();
    assert.equal(metric(m, 'pd_sim_kv_lookups_total', 'result="hit"'), 1);
    assert.equal(metric(m, 'vllm:external_prefix_cache_hits_total'), 32);
  });

  test('a prompt of 33 tokens (1 mod block size) always misses, as in vLLM', async () => {
    const prompt = promptOfLength(33, 12);
    await postJson(`${producer.url}/v1/completions`, { prompt, max_tokens: 1 });
    await postJson(`${consumer.url}/v1/completions`, { prompt, max_tokens: 1 });
    const m = await (await fetch(`${consumer.url}/metrics`)).text();
    assert.equal(metric(m, 'pd_sim_kv_lookups_total', 'result="miss"'), 1);
  });
});

describe('NixlConnector kv_transfer_params', () => {
  let p: SimHandle;
  let d: SimHandle;
  let sidePort = 0;
  before(async () => {
    // Each engine binds its own side channel (VLLM_NIXL_SIDE_CHANNEL_PORT), as real ones must.
    sidePort = await freePort();
    const decodeSide = await freePort();
    [p, d] = await Promise.all([
      startSim({ kvConfig: { kv_connector: 'NixlConnector', kv_role: 'kv_both', engine_id: 'prefill-0' }, env: { VLLM_NIXL_SIDE_CHANNEL_PORT: String(sidePort) } }),
      startSim({ kvConfig: { kv_connector: 'NixlConnector', kv_role: 'kv_both' }, env: { VLLM_NIXL_SIDE_CHANNEL_PORT: String(decodeSide) } }),
    ]);
  });
  after(async () => {
    await Promise.all([p?.stop(), d?.stop()]);
  });

  test('a do_remote_decode prefill returns the params; a decode with them skips prefill; bad params warn', async () => {
    const prompt = promptOfLength(50, 3);
    const r = await postJson(`${p.url}/v1/completions`, {
      prompt, max_tokens: 1,
      kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false, remote_engine_id: null, remote_block_ids: null, remote_host: null, remote_port: null },
    });
    const params = r.json.kv_transfer_params;
    assertSameShape(params, fixture('nixl-kv-transfer-params.json'));
    assert.equal(params.remote_engine_id, 'prefill-0');
    assert.equal(params.remote_port, sidePort);
    assert.equal(params.remote_block_ids.length, 4);
    const ok = await postJson(`${d.url}/v1/completions`, { prompt, max_tokens: 3, kv_transfer_params: params });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.kv_transfer_params, null);
    const bad = await postJson(`${d.url}/v1/completions`, { prompt, max_tokens: 3, kv_transfer_params: { do_remote_prefill: true } });
    assert.equal(bad.status, 200);
    await d.waitForOutput(/WARNING .*Got invalid KVTransferParams: \{'do_remote_prefill': True\}\. This request will not utilize KVTransfer/);
    const m = await (await fetch(`${d.url}/metrics`)).text();
    assert.equal(metric(m, 'pd_sim_kv_lookups_total', 'result="hit"'), 1);
    assert.equal(metric(m, 'pd_sim_kv_lookups_total', 'result="miss"'), 1);
    // Without do_remote_decode no params come back.
    const plain = await postJson(`${p.url}/v1/completions`, { prompt, max_tokens: 1 });
    assert.equal(plain.json.kv_transfer_params, null);
  });
});
