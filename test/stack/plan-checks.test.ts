import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseConfig } from '../../src/config/load.js';
import type { PdConfig } from '../../src/config/schema.js';
import { assertValid } from '../../src/config/problems.js';
import { buildEnginePlans } from '../../src/stack/plan/engines.js';
import { buildStackPlan } from '../../src/stack/plan/build.js';
import { chooseConnector, usesExampleConnectorName } from '../../src/stack/plan/connector.js';

const SS = 'SharedStorageConnector';
/** The plan's problems; simulate by default (GPU sharing is policy on real GPUs, tested on its own below). */
const validateConfig = (config: PdConfig, connector: string, simulate = true) =>
  buildStackPlan(config, { configPath: null, connector: chooseConnector(connector, null), vllmVersion: null, simulate }).problems;
const problems = (raw: unknown, connector = SS) => validateConfig(parseConfig(raw), connector);
const errorFields = (raw: unknown, connector = SS) =>
  problems(raw, connector).filter((p) => p.severity === 'error').map((p) => p.field);

test('the default config has no problems', () => {
  assert.deepEqual(problems({}), []);
});

test('two engines on one port', () => {
  const p = problems({ consumers: [{ gpus: [1], port: 8100 }] });
  assert.equal(p[0]?.field, 'consumers[0].port');
  assert.match(p[0].message, /port 8100 is already used by producers\[0\]\.port/);
});

test("an engine on the proxy's port", () => {
  const p = problems({ producers: [{ gpus: [0], port: 8000 }] });
  assert.match(p[0]!.message, /already used by proxy\.port/);
  assert.equal(p[0]!.severity, 'error');
});

test('a GPU used by both roles is a warning that names both engines', () => {
  const p = problems({ consumers: [{ gpus: [0], port: 8200 }] });
  assert.equal(p.length, 1);
  assert.equal(p[0]!.severity, 'warning');
  assert.equal(p[0]!.code, 'gpu-shared');
  assert.match(p[0]!.message, /GPU 0 is used by both producer-0 and consumer-0/);
  assert.match(p[0]!.hint, /allowSharedGpus/);
});

test('on real GPUs a shared GPU is an error unless allowSharedGpus: validate and up agree by code', () => {
  const real = (raw: unknown) => validateConfig(parseConfig(raw), SS, false);
  const shared = real({ consumers: [{ gpus: [0], port: 8200 }] });
  assert.deepEqual(shared.map((p) => [p.code, p.severity]), [['gpu-shared', 'error']]);
  const allowed = real({ consumers: [{ gpus: [0], port: 8200 }], allowSharedGpus: true });
  assert.deepEqual(allowed.map((p) => [p.code, p.severity]), [['gpu-shared', 'warning']]);
});

test('a cache budget without a grace period is a warning (decode may find its KV evicted)', () => {
  const p = problems({ kv: { cache: { maxBytes: 1, graceSeconds: 0 } } });
  assert.deepEqual(p.map((x) => [x.severity, x.field]), [['warning', 'kv.cache.graceSeconds']]);
  assert.match(p[0]!.message, /between prefill and decode/);
  // No budget, no janitor: nothing to warn about; a grace of a second or more is fine.
  assert.deepEqual(problems({ kv: { cache: { graceSeconds: 0 } } }), []);
  assert.deepEqual(problems({ kv: { cache: { maxAgeSeconds: 60, graceSeconds: 1 } } }), []);
  // The janitor only runs for the shared-storage connector.
  assert.deepEqual(problems({ kv: { cache: { maxBytes: 1, graceSeconds: 0 } } }, 'NixlConnector'), []);
});

test('a relative shared storage path', () => {
  assert.deepEqual(errorFields({ kv: { sharedStoragePath: 'pd_kv' } }), ['kv.sharedStoragePath']);
  // NIXL does not use the shared storage path.
  assert.deepEqual(errorFields({ kv: { sharedStoragePath: 'pd_kv' } }, 'NixlConnector'), []);
});

test('kv_role that does not fit the role', () => {
  assert.deepEqual(errorFields({ producers: [{ gpus: [0], port: 8100, kvRole: 'kv_consumer' }] }), ['producers[0].kvRole']);
  assert.deepEqual(errorFields({ consumers: [{ gpus: [1], port: 8200, kvRole: 'kv_producer' }] }), ['consumers[0].kvRole']);
  assert.deepEqual(errorFields({ consumers: [{ gpus: [1], port: 8200, kvRole: 'kv_both' }] }), []);
});

test('flags pd owns may not appear in engine args', () => {
  assert.deepEqual(errorFields({ engine: { args: ['--port', '9'] } }), ['producers[0].args', 'consumers[0].args']);
  assert.deepEqual(errorFields({ producers: [{ gpus: [0], port: 8100, args: ['--kv-transfer-config={}'] }] }), ['producers[0].args']);
  assert.deepEqual(errorFields({ producers: [{ gpus: [0], port: 8100, env: { CUDA_VISIBLE_DEVICES: '3' } }] }), [
    'producers[0].env.CUDA_VISIBLE_DEVICES',
  ]);
});

test('tensor parallel size must match the GPU list; pd sets it when absent', () => {
  assert.deepEqual(errorFields({ producers: [{ gpus: [0, 2], port: 8100, args: ['--tensor-parallel-size', '4'] }] }), ['producers[0].gpus']);
  // tensor x pipeline x data parallel size must equal the GPU count.
  assert.deepEqual(errorFields({ producers: [{ gpus: [0, 2], port: 8100, args: ['--pipeline-parallel-size', '2'] }] }), []);
  assert.deepEqual(errorFields({ producers: [{ gpus: [0, 2], port: 8100, args: ['-tp', '2', '-pp', '2'] }] }), ['producers[0].gpus']);
  const cfg = parseConfig({ producers: [{ gpus: [0, 2], port: 8100 }], consumers: [{ gpus: [1, 3], port: 8200 }] });
  const [p] = buildEnginePlans(cfg, { connector: SS });
  assert.equal(p!.env.CUDA_VISIBLE_DEVICES, '0,2');
  assert.deepEqual(p!.argv.slice(p!.argv.indexOf('--tensor-parallel-size'), p!.argv.indexOf('--tensor-parallel-size') + 2), ['--tensor-parallel-size', '2']);
});

test('a near-miss connector name is a typo; other names are an escape hatch', () => {
  assert.deepEqual(errorFields({}, 'NixlConector'), ['kv.connector']);
  assert.deepEqual(errorFields({}, 'LMCacheConnectorV1'), []);
});

test('NIXL side-channel ports are assigned uniquely and clashes are caught', () => {
  const cfg = parseConfig({
    kv: { connector: 'NixlConnector' },
    producers: [{ gpus: [0, 1], port: 8100 }, { gpus: [2], port: 8101 }],
    consumers: [{ gpus: [3], port: 8200 }],
  });
  const ports = buildEnginePlans(cfg, { connector: 'NixlConnector' }).map((e) => e.env.VLLM_NIXL_SIDE_CHANNEL_PORT);
  assert.deepEqual(ports, ['5600', '5602', '5603']);
  assert.deepEqual(validateConfig(cfg, 'NixlConnector'), []);
  const clash = problems(
    {
      producers: [{ gpus: [0], port: 8100, env: { VLLM_NIXL_SIDE_CHANNEL_PORT: '5601' } }],
      consumers: [{ gpus: [1], port: 8200, env: { VLLM_NIXL_SIDE_CHANNEL_PORT: '5601' } }],
    },
    'NixlConnector',
  );
  assert.equal(clash.filter((p) => p.severity === 'error').length, 1);
  assert.match(clash[0]!.message, /side-channel port 5601 of consumer-0 is also used by producer-0/);
  assert.equal(problems({ producers: [{ gpus: [0], port: 5600 }] }, 'NixlConnector').some((p) => /side-channel port 5600/.test(p.message)), true);
});

test('assertValid throws with the first error and lists the rest', () => {
  const p = problems({ producers: [{ gpus: [0], port: 8000, kvRole: 'kv_consumer' }] });
  assert.throws(() => assertValid(p, 'cfg.json'), (e: Error & { details: string[] }) => {
    assert.match(e.message, /^cfg\.json is invalid: producers\[0\]\.port/);
    assert.equal(e.details.length, 1);
    return true;
  });
});

test('connector auto resolves by vLLM version (ExampleConnector from 0.13.0)', () => {
  assert.equal(chooseConnector('auto', '0.11.0').name, 'SharedStorageConnector');
  assert.equal(chooseConnector('auto', '0.13.0').name, 'ExampleConnector');
  assert.equal(chooseConnector('auto', '0.14.1rc2.dev5+g1234').name, 'ExampleConnector');
  assert.equal(chooseConnector('auto', null).name, 'SharedStorageConnector');
  assert.match(chooseConnector('auto', null).reason, /could not be run/);
  assert.equal(chooseConnector('NixlConnector', '0.13.0').name, 'NixlConnector');
  assert.equal(usesExampleConnectorName('0.12.9'), false);
});

test('NIXL side-channel ports must stay within 1-65535', () => {
  const p = problems({ kv: { nixlSideChannelBasePort: 65535 } }, 'NixlConnector');
  assert.equal(p.length, 1);
  assert.equal(p[0]!.field, 'kv.nixlSideChannelBasePort');
  assert.match(p[0]!.message, /65536 of consumer-0 is not a valid port/);
});
