import { test } from 'node:test';
import assert from 'node:assert/strict';
import { copyFile, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runPd } from '../helpers/cli.js';
import { runPdInProcess } from './in-process.js';
import { tempDir } from '../helpers/tmp.js';

// Plans are pure logic: they run in-process through pd's commander program; the built binary runs once, where the
// path of the built simulator it plans depends on how it was bundled.

const EXAMPLE = new URL('../../pd.config.example.json', import.meta.url);
const GOLDEN = new URL('./fixtures/plan-example.txt', import.meta.url);

test('pd plan prints the reference command lines exactly (golden)', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await copyFile(EXAMPLE, join(dir, 'pd.config.json'));
    const r = await runPdInProcess(['plan'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const normalised = r.stdout.split(dir).join('<DIR>');
    if (process.env.PD_UPDATE_GOLDEN === '1') await writeFile(GOLDEN, normalised);
    assert.equal(normalised, await readFile(GOLDEN, 'utf8'));
    // The kv-transfer-config is exactly the reference's, for each role.
    for (const role of ['producer', 'consumer']) {
      assert.ok(
        r.stdout.includes(
          `'{"engine_id":"my-disagg-engine-1","kv_connector":"SharedStorageConnector","kv_role":"kv_${role}","kv_parallel_size":1,"kv_buffer_size":1e9,"kv_connector_extra_config":{"shared_storage_path":"/mnt/pd_kv"}}'`,
        ),
      );
    }
  } finally {
    await cleanup();
  }
});

test('pd plan --json gives the same argv and env as data', async () => {
  const r = await runPdInProcess(['-c', EXAMPLE.pathname, 'plan', '--json']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  assert.equal(plan.connector.name, 'SharedStorageConnector');
  const [p, c] = plan.engines;
  assert.deepEqual(p.env, { CUDA_VISIBLE_DEVICES: '0', VLLM_USE_V1: '1' });
  assert.deepEqual(c.env, { CUDA_VISIBLE_DEVICES: '1', VLLM_USE_V1: '1' });
  assert.deepEqual(p.argv.slice(0, 16), [
    'vllm', 'serve', '/mnt/models/Qwen3-4B-Instruct-2507', '--host', '127.0.0.1', '--port', '8100',
    '--max-model-len', '8192', '--gpu-memory-utilization', '0.8', '--trust-remote-code', '--enforce-eager',
    '--kv-transfer-config', p.argv[14], ...p.argv.slice(15),
  ].slice(0, 16));
  assert.equal(p.argv[13], '--kv-transfer-config');
  assert.deepEqual(JSON.parse(p.argv[14]), {
    engine_id: 'my-disagg-engine-1', kv_connector: 'SharedStorageConnector', kv_role: 'kv_producer',
    kv_parallel_size: 1, kv_buffer_size: 1e9, kv_connector_extra_config: { shared_storage_path: '/mnt/pd_kv' },
  });
  assert.equal(JSON.parse(c.argv[14]).kv_role, 'kv_consumer');
  assert.equal(plan.proxy.port, 8000);
  assert.ok(plan.proxy.routes.some((r: { path: string }) => r.path === '/v1/chat/completions'));
});

test('pd plan with connector auto says which name was chosen and why', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    // A fake vllm that reports a post-rename version.
    const fake = join(dir, 'vllm');
    await writeFile(fake, '#!/bin/sh\nif [ "$1" = "--version" ]; then echo 0.13.1; fi\n', { mode: 0o755 });
    const r = await runPdInProcess(['plan', '--connector', 'auto'], { cwd: dir, env: { PATH: `${dir}:${process.env.PATH}` } });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /# connector: ExampleConnector \(kv\.connector is "auto" and vLLM 0\.13\.1 >= 0\.13\.0/);
    assert.match(r.stdout, /"kv_connector":"ExampleConnector"/);
    const old = await runPdInProcess(['plan'], { cwd: dir, env: { PATH: '/usr/bin:/bin' } });
    assert.match(old.stdout, /# connector: SharedStorageConnector \(kv\.connector is "auto" and `vllm --version` could not be run/);
  } finally {
    await cleanup();
  }
});

test('pd plan --simulate runs the simulator with the same argv (the built pd finds the built simulator)', async () => {
  const r = await runPd(['-c', EXAMPLE.pathname, 'plan', '--json', '--simulate']);
  assert.equal(r.code, 0, r.stderr);
  const plan = JSON.parse(r.stdout);
  const argv: string[] = plan.engines[0].argv;
  assert.equal(argv[0], process.execPath);
  assert.match(argv[1]!, /dist\/sim\/main\.js$/);
  assert.equal(argv[2], 'serve');
  assert.doesNotMatch(plan.sharedStoragePath, /^\/mnt/);
});
