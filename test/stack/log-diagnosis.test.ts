import { test } from 'node:test';
import assert from 'node:assert/strict';
import { diagnose } from '../../src/stack/diagnose.js';
import { emptyCounters, watchLine } from '../../src/stack/log-watch.js';
import { connectorUnsupported } from '../../src/stack/plan/connector.js';
import { simulateConfig } from '../../src/stack/simulate.js';
import { parseConfig } from '../../src/config/load.js';

const ctx = { name: 'consumer-0', port: 8200, gpus: [1], model: 'm' };

test('argparse refusals and KVTransferConfig validation errors are diagnosed in plain words', () => {
  const flag = diagnose('usage: vllm [-h] [-v] {chat,complete,serve} ...\nvllm: error: unrecognized arguments: --enable-magic 3', ctx);
  assert.match(flag!.cause, /does not know the argument\(s\) --enable-magic 3/);
  assert.match(flag!.hint, /engine\.args/);
  const kv = diagnose('1 validation error for KVTransferConfig\nkv_role\n  Input should be ...', ctx);
  assert.match(kv!.cause, /KVTransferConfig/);
});

test('a KV hit is a load (Inject KV cache), not the connector finding a folder the local cache already holds', () => {
  const c = emptyCounters();
  // The local prefix cache held the tokens: the connector logs its lookup, nothing is injected.
  watchLine('(EngineCore_DP0 pid=1) INFO 11-30 02:13:09 [example_connector.py:301] External Cache Hit!', c);
  assert.deepEqual([c.cacheHits, c.lookupHits], [0, 1]);
  watchLine('(EngineCore_DP0 pid=1) INFO 11-30 02:13:09 [example_connector.py:301] External Cache Hit!', c);
  watchLine('(EngineCore_DP0 pid=1) INFO 11-30 02:13:09 [example_connector.py:252] Inject KV cache of 48 tokens to the paged memory', c);
  assert.deepEqual([c.cacheHits, c.lookupHits, c.injectedTokens], [1, 2, 48]);
});

test('P2pNcclConnector is refused from vLLM 0.23.0, and --simulate simulates the last release that has it', () => {
  assert.equal(connectorUnsupported('P2pNcclConnector', '0.22.1'), null);
  assert.match(connectorUnsupported('P2pNcclConnector', '0.31.0')!, /removed in 0\.23\.0/);
  assert.match(connectorUnsupported('SharedStorageConnector', '0.31.0')!, /renamed ExampleConnector/);
  const sim = simulateConfig(parseConfig({ kv: { connector: 'P2pNcclConnector' } }), false);
  assert.equal(sim.engine.env.PD_SIM_VLLM_VERSION, '0.22.1');
  const chosen = simulateConfig(parseConfig({ kv: { connector: 'P2pNcclConnector' }, engine: { env: { PD_SIM_VLLM_VERSION: '0.20.0' } } }), false);
  assert.equal(chosen.engine.env.PD_SIM_VLLM_VERSION, '0.20.0');
  assert.equal(simulateConfig(parseConfig({}), false).engine.env.PD_SIM_VLLM_VERSION, undefined);
});
