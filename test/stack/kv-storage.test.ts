import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { runPd } from '../helpers/cli.js';
import { geometryFromName, kvBytesPerToken, kvGeometry } from '../../src/stack/kv-size.js';

test('KV bytes per token: ~147 KB for Qwen3-4B, from config.json when the model is local', async () => {
  assert.equal(kvBytesPerToken(geometryFromName('/mnt/models/Qwen3-4B-Instruct-2507')), 147_456);
  assert.equal(kvBytesPerToken(geometryFromName('meta-llama/Llama-3.1-70B-Instruct')), 2 * 80 * 8 * 128 * 2);
  const { dir, cleanup } = await tempDir();
  try {
    const model = join(dir, 'my-model');
    await mkdir(model);
    await writeFile(join(model, 'config.json'), JSON.stringify({ num_hidden_layers: 4, num_attention_heads: 16, num_key_value_heads: 2, hidden_size: 1024, torch_dtype: 'float32' }));
    const g = await kvGeometry(model);
    assert.equal(g.source, 'config.json');
    assert.equal(kvBytesPerToken(g), 2 * 4 * 2 * 64 * 4);
  } finally {
    await cleanup();
  }
});

test('pd doctor measures the shared storage and says what a 1k-token prompt costs, recommending memory when on disk', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await mkdir(join(dir, 'project'));
    const cfg = join(dir, 'project', 'pd.config.json');
    await writeFile(cfg, JSON.stringify({ kv: { sharedStoragePath: join(dir, 'kv') }, producers: [{ gpus: [0], port: 1 }], consumers: [{ gpus: [1], port: 2 }], proxy: { port: 3 } }));
    const r = await runPd(['-c', cfg, 'doctor', '--simulate', '--json']);
    const out = JSON.parse(r.stdout);
    const speed = out.checks.find((c: { name: string }) => c.name === 'KV storage speed');
    assert.ok(speed, r.stdout);
    assert.match(speed.detail, /write [\d.]+ \w+\/s, read [\d.]+ \w+\/s.*1k-token prompt's KV \(141 MiB, 144 KiB\/token.*takes ~[\d.]+ s to save, ~[\d.]+ s to load/);
    if (speed.status === 'warn') assert.match(speed.hint, /\/dev\/shm\/pd_kv/);
    // --no-storage-speed leaves the measurement out (and writes nothing to the storage).
    const quick = JSON.parse((await runPd(['-c', cfg, 'doctor', '--simulate', '--json', '--no-storage-speed'])).stdout);
    assert.equal(quick.checks.some((c: { name: string }) => c.name === 'KV storage speed'), false);
    assert.ok(quick.checks.some((c: { name: string }) => c.name === 'shared storage'), 'the other storage check still runs');
  } finally {
    await cleanup();
  }
});
