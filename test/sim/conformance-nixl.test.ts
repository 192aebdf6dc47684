/**
 * Conformance: NixlConnector.
 * - nixl_connector.py request_finished: a do_remote_decode prefill returns kv_transfer_params (engine id, block ids,
 *   side-channel host and port); a decode given them pulls instead of prefilling; malformed params are ignored with
 *   a warning.
 * - vllm/envs.py VLLM_NIXL_SIDE_CHANNEL_HOST (localhost) / VLLM_NIXL_SIDE_CHANNEL_PORT (5600); nixl_connector.py binds
 *   the handshake listener there (+ the data-parallel rank), so two engines on one port fail like a zmq bind.
 * - nixl_connector.py get_num_new_matched_tokens: with do_remote_prefill, len(prompt) - num_computed_tokens external
 *   tokens; request_finished hands out kv_transfer_params only for a prefill capped by its length.
 * - vllm/config/kv_transfer.py kv_load_failure_policy ("fail" by default): "fail" finishes the request with an error
 *   (the OpenAI server answers 500 "Internal server error"), "recompute" reschedules it to compute the KV itself.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { freePort } from '../helpers/ports.js';
import { simEntryPath } from '../../src/sim/entry.js';
import { assertSameShape, fixture, postJson } from './sse.js';
import { promptOfLength } from '../../src/sim/tokenizer.js';

const metric = (text: string, name: string, labels = ''): number => {
  const m = new RegExp(`^${name.replace(/[:]/g, '\\$&')}\\{[^}]*${labels}[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};
const nixl = (extra: object = {}) => ({ kv_connector: 'NixlConnector', kv_role: 'kv_both', ...extra });

describe('NIXL side channel and load failures', () => {
  let sidePort: number;
  let prefill: SimHandle;
  let decodeFail: SimHandle;
  let decodeRecompute: SimHandle;
  before(async () => {
    sidePort = await freePort();
    const [p2, p3] = [await freePort(), await freePort()];
    [prefill, decodeFail, decodeRecompute] = await Promise.all([
      startSim({ kvConfig: nixl({ engine_id: 'prefill-0' }), env: { VLLM_NIXL_SIDE_CHANNEL_HOST: '127.0.0.1', VLLM_NIXL_SIDE_CHANNEL_PORT: String(sidePort) } }),
      startSim({ kvConfig: nixl(), env: { VLLM_NIXL_SIDE_CHANNEL_HOST: '127.0.0.1', VLLM_NIXL_SIDE_CHANNEL_PORT: String(p2) } }),
      startSim({ kvConfig: nixl({ kv_load_failure_policy: 'recompute' }), env: { VLLM_NIXL_SIDE_CHANNEL_HOST: '127.0.0.1', VLLM_NIXL_SIDE_CHANNEL_PORT: String(p3) } }),
    ]);
  });
  after(async () => {
    await Promise.all([prefill.stop(), decodeFail.stop(), decodeRecompute.stop()]);
  });

  test('a do_remote_decode prefill returns the params; a decode with them skips prefill; bad params warn', async () => {
    const lookups = async (result: string): Promise<number> => metric(await (await fetch(`${decodeFail.url}/metrics`)).text(), 'pd_sim_kv_lookups_total', `result="${result}"`);
    const [hits0, misses0] = [await lookups('hit'), await lookups('miss')];
    const prompt = promptOfLength(50, 9);
    const r = await postJson(`${prefill.url}/v1/completions`, {
      prompt, max_tokens: 1,
      kv_transfer_params: { do_remote_decode: true, do_remote_prefill: false, remote_engine_id: null, remote_block_ids: null, remote_host: null, remote_port: null },
    });
    const params = r.json.kv_transfer_params;
    assertSameShape(params, fixture('nixl-kv-transfer-params.json'));
    assert.equal(params.remote_engine_id, 'prefill-0');
    assert.equal(params.remote_port, sidePort);
    assert.equal(params.remote_block_ids.length, 4);
    const ok = await postJson(`${decodeFail.url}/v1/completions`, { prompt, max_tokens: 3, kv_transfer_params: params });
    assert.equal(ok.status, 200);
    assert.equal(ok.json.kv_transfer_params, null);
    const bad = await postJson(`${decodeFail.url}/v1/completions`, { prompt, max_tokens: 3, kv_transfer_params: { do_remote_prefill: true } });
    assert.equal(bad.status, 200);
    await decodeFail.waitForOutput(/WARNING .*Got invalid KVTransferParams: \{'do_remote_prefill': True\}\. This request will not utilize KVTransfer/);
    assert.equal(await lookups('hit'), (hits0 || 0) + 1);
    assert.equal(await lookups('miss'), (misses0 || 0) + 1);
    // Without do_remote_decode no params come back.
    const plain = await postJson(`${prefill.url}/v1/completions`, { prompt, max_tokens: 1 });
    assert.equal(plain.json.kv_transfer_params, null);
  });

  test('a second engine on the same side-channel port fails to start like a zmq bind', () => {
    const r = spawnSync(process.execPath, [simEntryPath(), 'serve', 'm', '--port', '1', '--kv-transfer-config', JSON.stringify(nixl())], {
      env: { ...process.env, PD_SIM_ZERO_LATENCY: '1', VLLM_NIXL_SIDE_CHANNEL_HOST: '127.0.0.1', VLLM_NIXL_SIDE_CHANNEL_PORT: String(sidePort) },
      encoding: 'utf8',
      timeout: 20_000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stdout + r.stderr, new RegExp(`zmq\\.error\\.ZMQError: Address already in use \\(addr='tcp://127\\.0\\.0\\.1:${sidePort}'\\)`));
    assert.match(r.stdout + r.stderr, /Engine core initialization failed/);
  });

  test('a pull from a live producer is a hit; from a dead side channel it fails (500) or recomputes, per policy', async () => {
    const prompt = promptOfLength(50, 3);
    const p = await postJson(`${prefill.url}/v1/completions`, { prompt, max_tokens: 1, kv_transfer_params: { do_remote_decode: true } });
    const params = p.json.kv_transfer_params;
    assert.equal(params.remote_port, sidePort);
    const ok = await postJson(`${decodeFail.url}/v1/completions`, { prompt, max_tokens: 2, kv_transfer_params: params });
    assert.equal(ok.status, 200);
    const dead = { ...params, remote_port: await freePort() };
    const failed = await postJson(`${decodeFail.url}/v1/completions`, { prompt, max_tokens: 2, kv_transfer_params: dead });
    assert.equal(failed.status, 500);
    assert.deepEqual(failed.json, { error: { message: 'Internal server error', type: 'InternalServerError', param: null, code: 500 } });
    await decodeFail.waitForOutput(/ERROR .*Request cmpl-\S+ failed with an internal error during generation/);
    const stream = await postJson(`${decodeFail.url}/v1/completions`, { prompt, max_tokens: 2, stream: true, kv_transfer_params: dead });
    assert.match(stream.text, /^data: \{"error":\{"message":"Internal server error","type":"InternalServerError","param":null,"code":500\}\}\n\ndata: \[DONE\]\n\n$/);
    const rec = await postJson(`${decodeRecompute.url}/v1/completions`, { prompt, max_tokens: 2, kv_transfer_params: dead });
    assert.equal(rec.status, 200);
    assert.equal(rec.json.usage.completion_tokens, 2);
    await decodeRecompute.waitForOutput(/Recovered from KV load failure: 1 request\(s\) rescheduled \(50 tokens affected\)\./);
  });

  test('--sim-kv-load-fail-rate 1 makes every pull fail', async () => {
    const port = await freePort();
    const d = await startSim({ kvConfig: nixl(), args: ['--sim-kv-load-fail-rate', '1'], env: { VLLM_NIXL_SIDE_CHANNEL_HOST: '127.0.0.1', VLLM_NIXL_SIDE_CHANNEL_PORT: String(port) } });
    try {
      const prompt = promptOfLength(30, 4);
      const p = await postJson(`${prefill.url}/v1/completions`, { prompt, max_tokens: 1, kv_transfer_params: { do_remote_decode: true } });
      const r = await postJson(`${d.url}/v1/completions`, { prompt, max_tokens: 2, kv_transfer_params: p.json.kv_transfer_params });
      assert.equal(r.status, 500);
      await d.waitForOutput(/KV load failed for request \S+: transfer failed \(fault injection\)/);
    } finally {
      await d.stop();
    }
  });
});
