import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseSimArgs, ArgError, DEFAULT_KNOBS, knobEnv, knobFlag, compareVersions } from '../../src/sim/options.js';

test('parses the vllm serve command line of the reference guide', () => {
  const o = parseSimArgs(
    ['serve', '/mnt/models/Qwen3-4B-Instruct-2507', '--host', '0.0.0.0', '--port', '8100', '--max-model-len', '8192',
      '--gpu-memory-utilization', '0.8', '--trust-remote-code', '--enforce-eager', '--kv-transfer-config',
      '{"engine_id":"e","kv_connector":"SharedStorageConnector","kv_role":"kv_producer","kv_connector_extra_config":{"shared_storage_path":"/mnt/pd_kv"}}'],
    {},
  );
  assert.equal(o.model, '/mnt/models/Qwen3-4B-Instruct-2507');
  assert.equal(o.host, '0.0.0.0');
  assert.equal(o.port, 8100);
  assert.equal(o.maxModelLen, 8192);
  assert.equal(o.kvTransferConfig?.kv_connector, 'SharedStorageConnector');
  assert.equal(o.nonDefaultArgs.trust_remote_code, true);
  assert.equal(o.nonDefaultArgs.gpu_memory_utilization, 0.8);
  assert.equal(o.gpuMemoryUtilization, 0.8);
  assert.deepEqual(o.servedModelNames, ['/mnt/models/Qwen3-4B-Instruct-2507']);
});

test('--flag=value, multi-valued --served-model-name, --api-key, --block-size, --max-num-seqs, 1k lengths', () => {
  const o = parseSimArgs(['serve', 'm', '--port=9', '--served-model-name', 'a', 'b', '--api-key=k', '--block-size', '32', '--max-num-seqs=4', '--max-model-len=2k', '--enforce-eager', '--dtype', 'auto'], {});
  assert.equal(o.port, 9);
  assert.deepEqual(o.servedModelNames, ['a', 'b']);
  assert.deepEqual(o.apiKeys, ['k']);
  assert.equal(o.blockSize, 32);
  assert.equal(o.maxNumSeqs, 4);
  assert.equal(o.maxModelLen, 2000);
  assert.equal(o.nonDefaultArgs.enforce_eager, true);
  assert.equal(o.nonDefaultArgs.dtype, 'auto');
});

test('knobs come from PD_SIM_* env and --sim-* flags; flags win; zero-latency zeroes timings', () => {
  const env = { PD_SIM_ITL_MS: '3', PD_SIM_PREFILL_BASE_MS: '7', PD_SIM_VLLM_VERSION: '0.13.0' };
  const o = parseSimArgs(['serve', 'm', '--sim-itl-ms', '5'], env);
  assert.equal(o.knobs.itlMs, 5);
  assert.equal(o.knobs.prefillBaseMs, 7);
  assert.equal(o.knobs.vllmVersion, '0.13.0');
  const z = parseSimArgs(['serve', 'm'], { PD_SIM_ZERO_LATENCY: '1' });
  assert.equal(z.knobs.itlMs, 0);
  assert.equal(z.knobs.startupDelay, 0);
  assert.equal(z.knobs.prefillMsPerToken, 0);
  const zf = parseSimArgs(['serve', 'm', '--sim-zero-latency', '--sim-itl-ms=2'], {});
  assert.equal(zf.knobs.itlMs, 2);
  assert.equal(zf.knobs.prefillBaseMs, 0);
  assert.equal(knobFlag('crashAfterRequests'), '--sim-crash-after-requests');
  assert.equal(knobEnv('crashAfterRequests'), 'PD_SIM_CRASH_AFTER_REQUESTS');
  assert.equal(DEFAULT_KNOBS.vllmVersion, '0.31.0');
});

test('command-line mistakes are ArgErrors with argparse-like messages', () => {
  assert.throws(() => parseSimArgs(['serve', 'm', '--port', 'abc'], {}), (e: Error) => e instanceof ArgError && /--port: invalid int value: 'abc'/.test(e.message));
  assert.throws(() => parseSimArgs(['serve', 'm', '--kv-transfer-config', '{bad'], {}), (e: Error) => e instanceof ArgError && /--kv-transfer-config: 1 validation error for KVTransferConfig/.test(e.message));
  assert.throws(() => parseSimArgs(['serve', 'm', '--port'], {}), /expected one argument/);
  assert.throws(() => parseSimArgs(['serve', 'm'], { PD_SIM_ITL_MS: 'fast' }), /PD_SIM_ITL_MS/);
});

test('version comparison', () => {
  assert.ok(compareVersions('0.13.0', '0.13.0') === 0);
  assert.ok(compareVersions('0.12.9', '0.13.0') < 0);
  assert.ok(compareVersions('0.13.1rc1', '0.13.0') > 0);
  assert.ok(compareVersions('1.0', '0.13.0') > 0);
});
