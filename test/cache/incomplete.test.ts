import { test } from 'node:test';
import assert from 'node:assert/strict';
import { truncate, rm, readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { writeEntry } from './tree.js';
import { cacheStats } from '../../src/cache/stats.js';
import { startJanitor } from '../../src/cache/janitor.js';

/** A cache with three whole entries, one cut short by ENOSPC (last layer truncated), one missing layers. */
async function damagedCache(root: string, ageSeconds: number): Promise<{ whole: string[]; truncated: string; missing: string }> {
  const whole = [];
  for (let i = 0; i < 3; i++) whole.push((await writeEntry(root, { layers: 4, layerBytes: 4096, ageSeconds })).name);
  const truncated = (await writeEntry(root, { layers: 4, layerBytes: 4096, ageSeconds })).name;
  const last = join(root, truncated, 'model.layers.3.self_attn.attn.safetensors');
  await truncate(last, 1000);
  const missing = (await writeEntry(root, { layers: 4, layerBytes: 4096, ageSeconds })).name;
  await rm(join(root, missing, 'model.layers.2.self_attn.attn.safetensors'));
  await rm(join(root, missing, 'model.layers.3.self_attn.attn.safetensors'));
  // Keep the recorded ages after the edits (truncate and rm move the mtimes).
  const t = (Date.now() - ageSeconds * 1000) / 1000;
  for (const name of [truncated, missing]) {
    for (const f of await readdir(join(root, name))) await utimes(join(root, name, f), t, t);
    await utimes(join(root, name), t, t);
  }
  return { whole, truncated, missing };
}

test('pd cache stats flags entries left incomplete by a failed write, and those still being written', async () => {
  const { dir, cleanup } = await tempDir('pd-incomplete-');
  try {
    const old = await damagedCache(join(dir, 'old'), 600);
    const s = await cacheStats(join(dir, 'old'));
    assert.equal(s.entries, 5);
    assert.equal(s.incomplete.entries, 2);
    assert.equal(s.incomplete.writing, 0);
    const reasons = Object.fromEntries(s.incomplete.list.map((e) => [e.name, e.reason]));
    assert.equal(reasons[old.truncated], 'a layer file shorter than its siblings');
    assert.equal(reasons[old.missing], '2 of 4 layer files');
    // A prefill saving layer by layer right now looks the same, but is recent: reported as being written.
    await damagedCache(join(dir, 'fresh'), 0);
    const fresh = await cacheStats(join(dir, 'fresh'));
    assert.equal(fresh.incomplete.entries, 2);
    assert.equal(fresh.incomplete.writing, 2);
  } finally {
    await cleanup();
  }
});

test('the janitor removes abandoned incomplete entries even without a budget, and never one being written', async () => {
  const { dir, cleanup } = await tempDir('pd-incomplete-');
  try {
    const root = join(dir, 'kv');
    const old = await damagedCache(root, 600);
    const evicted: string[] = [];
    const janitor = startJanitor({ path: root, budget: { graceSeconds: 30, intervalSeconds: 60 }, onEvict: (e) => evicted.push(`${e.name}:${e.reason}`) });
    const report = await janitor.runOnce();
    await janitor.stop();
    assert.deepEqual(evicted.sort(), [`${old.missing}:incomplete`, `${old.truncated}:incomplete`].sort());
    assert.deepEqual((await readdir(root)).sort(), [...old.whole].sort());
    assert.equal(report.evicted.length, 2);

    const freshRoot = join(dir, 'fresh');
    await damagedCache(freshRoot, 0);
    const j2 = startJanitor({ path: freshRoot, budget: { graceSeconds: 0, intervalSeconds: 60 } });
    const r2 = await j2.runOnce();
    await j2.stop();
    assert.equal(r2.evicted.length, 0, 'entries written a moment ago may still be being written');
    assert.equal((await readdir(freshRoot)).length, 5);
  } finally {
    await cleanup();
  }
});
