/**
 * Conformance: P2pNcclConnector (registered by vLLM up to 0.22; removed in 0.23 by PR 44854).
 * - examples/online_serving/disaggregated_serving_p2p_nccl_xpyd/disagg_proxy_p2p_nccl_xpyd.py: the proxy sends the
 *   same X-Request-Id to both stages: ___prefill_addr_<ip:kv_port>___decode_addr_<ip:kv_port>_<uuid>.
 * - p2p_nccl_engine.py: each engine binds its KV endpoint on <ip>:<kv_port> (zmq); parse_request_id finds the peer
 *   ("___decode_addr_(.*):(\d+)" on the producer, "___prefill_addr_(.*):(\d+)___" on the consumer).
 * - p2p_nccl_connector.py get_num_new_matched_tokens: a consumer expects len(prompt) - 1 - num_computed_tokens
 *   external tokens; a producer none.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { freePort } from '../helpers/ports.js';
import { simEntryPath } from '../../src/sim/entry.js';
import { postJson } from './sse.js';
import { promptOfLength } from '../../src/sim/tokenizer.js';
import { parseRequestId, transferKey } from '../../src/sim/kv/p2p-nccl.js';
import { registeredConnectors, SIM_VLLM_VERSION } from '../../src/sim/versions.js';

const OLD = { PD_SIM_VLLM_VERSION: '0.22.1', VLLM_HOST_IP: '127.0.0.1', PD_SIM_P2P_RECV_TIMEOUT_MS: '300' };
const kv = (role: string, kvPort: number, httpPort: number) => ({
  kv_connector: 'P2pNcclConnector', kv_role: role, kv_buffer_size: role === 'kv_producer' ? '1e1' : '8e9', kv_port: String(kvPort),
  kv_connector_extra_config: { proxy_ip: '127.0.0.1', proxy_port: '30001', http_port: String(httpPort), send_type: 'PUT_ASYNC' },
});
const metric = async (sim: SimHandle, name: string): Promise<number> => {
  const m = new RegExp(`^${name.replace(/:/g, '\\:')}\\{[^}]*\\} (\\S+)$`, 'm').exec(await (await fetch(`${sim.url}/metrics`)).text());
  return m ? Number(m[1]) : NaN;
};

test('parse_request_id and the id both stages share', () => {
  const id = `___prefill_addr_10.0.0.1:21001___decode_addr_10.0.0.2:22001_${'ab'.repeat(16)}`;
  assert.deepEqual(parseRequestId(id, true), { host: '10.0.0.2', port: 22001 });
  assert.deepEqual(parseRequestId(`cmpl-${id}-0`, false), { host: '10.0.0.1', port: 21001 });
  assert.equal(parseRequestId('plain-id', true), null);
  assert.equal(transferKey(`cmpl-${id}-0`), id);
  assert.equal(transferKey(`chatcmpl-${id}`), id);
});

test('vLLM 0.23 and later do not register P2pNcclConnector', () => {
  // An unregistered connector fails start-up with exit 1 (the process is checked in lifecycle.test.ts); here, the
  // registry of each version. The producer and consumer below run on 0.22.1, where it is registered.
  assert.ok(registeredConnectors('0.22.1').includes('P2pNcclConnector'));
  assert.ok(!registeredConnectors('0.23.0').includes('P2pNcclConnector'));
  assert.ok(!registeredConnectors(SIM_VLLM_VERSION).includes('P2pNcclConnector'));
});

describe('P2P NCCL producer → consumer', () => {
  let prefill: SimHandle;
  let decode: SimHandle;
  let otherPrefillPort: number;
  let pPort: number;
  let dPort: number;
  before(async () => {
    [pPort, dPort, otherPrefillPort] = [await freePort(), await freePort(), await freePort()];
    [prefill, decode] = await Promise.all([
      startSim({ kvConfig: kv('kv_producer', pPort, 20001), env: OLD }),
      startSim({ kvConfig: kv('kv_consumer', dPort, 20002), env: OLD }),
    ]);
  });
  after(async () => {
    await Promise.all([prefill.stop(), decode.stop()]);
  });
  const call = (sim: SimHandle, id: string, prompt: string, maxTokens: number) =>
    postJson(`${sim.url}/v1/completions`, { prompt, max_tokens: maxTokens }, { 'x-request-id': id });

  test('the consumer gets the KV when the request id names the producer that sent it', async () => {
    const id = `___prefill_addr_127.0.0.1:${pPort}___decode_addr_127.0.0.1:${dPort}_${randomUUID().replace(/-/g, '')}`;
    const prompt = promptOfLength(60, 31);
    assert.equal((await call(prefill, id, prompt, 1)).status, 200);
    const d = await call(decode, id, prompt, 3);
    assert.equal(d.status, 200);
    assert.equal(await metric(decode, 'vllm:external_prefix_cache_hits_total'), 59); // len(prompt) - 1
  });

  test('a request id naming another producer (or none) gets no KV: the consumer recomputes and says why', async () => {
    const prompt = promptOfLength(60, 32);
    const id = `___prefill_addr_127.0.0.1:${pPort}___decode_addr_127.0.0.1:${dPort}_${randomUUID().replace(/-/g, '')}`;
    await call(prefill, id, prompt, 1);
    const wrong = id.replace(`prefill_addr_127.0.0.1:${pPort}`, `prefill_addr_127.0.0.1:${otherPrefillPort}`);
    const before = await metric(decode, 'vllm:external_prefix_cache_hits_total');
    const r = await call(decode, wrong, prompt, 2);
    assert.equal(r.status, 200);
    assert.equal(r.json.usage.completion_tokens, 2);
    await decode.waitForOutput(/WARNING .*kv_cache is None, \S+ \(no KV received from 127\.0\.0\.1:\d+ for request/);
    const none = await call(decode, 'plain-request-id', prompt, 2);
    assert.equal(none.status, 200);
    await decode.waitForOutput(/kv_cache is None, \S+ \(Request id \S+ does not contain hostname and port\)/);
    assert.equal(await metric(decode, 'vllm:external_prefix_cache_hits_total'), before);
  });

  test('two engines cannot share a kv_port (the zmq bind fails)', () => {
    const r = spawnSync(process.execPath, [simEntryPath(), 'serve', 'm', '--port', '1', '--kv-transfer-config', JSON.stringify(kv('kv_consumer', dPort, 20003))], {
      env: { ...process.env, PD_SIM_ZERO_LATENCY: '1', ...OLD }, encoding: 'utf8', timeout: 20_000,
    });
    assert.equal(r.status, 1);
    assert.match(r.stdout + r.stderr, new RegExp(`Address already in use \\(addr='tcp://127\\.0\\.0\\.1:${dPort}'\\)`));
  });
});
