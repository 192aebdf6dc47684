import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { join } from 'node:path';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { tempDir } from '../helpers/tmp.js';
import { postJson } from './sse.js';
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
