import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, utimes, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { IncrementalScanner, scanCache } from '../../src/cache/scan.js';
import { tempDir } from '../helpers/tmp.js';
import { writeEntry } from './tree.js';

test('IncrementalScanner rescans only changed entries and still sees reads', async () => {
  const { dir, cleanup } = await tempDir('pd-cache-inc-');
  try {
    const kv = join(dir, 'kv');
    await mkdir(kv);
    const now = Date.now();
    const a = await writeEntry(kv, { layers: 3, layerBytes: 10, ageSeconds: 3600 }, now);
    const b = await writeEntry(kv, { layers: 3, layerBytes: 10, ageSeconds: 3600 }, now);
    const c = await writeEntry(kv, { layers: 3, layerBytes: 10, ageSeconds: 3600 }, now);
    const scanner = new IncrementalScanner(kv);

    const first = await scanner.scan();
    assert.equal(first.entries.length, 3);
    assert.equal(scanner.lastFullScans, 3);
    assert.deepEqual(first.entries.map((e) => [e.name, e.files, e.bytes]), (await scanCache(kv)).entries.map((e) => [e.name, e.files, e.bytes]));

    const second = await scanner.scan();
    assert.equal(scanner.lastFullScans, 0, 'unchanged folders are not re-read');
    assert.deepEqual(second.entries.map((e) => e.bytes), [30, 30, 30]);

    // A cache hit on a: the layer files are read (atime after mtime).
    const written = (now - 3600_000) / 1000;
    for (let i = 0; i < 3; i++) await utimes(join(kv, a.name, `model.layers.${i}.self_attn.attn.safetensors`), now / 1000 - 5, written);
    // b gains a file (its folder mtime moves); c disappears; d is new.
    await writeFile(join(kv, b.name, 'extra.safetensors'), Buffer.alloc(5));
    await rm(join(kv, c.name), { recursive: true });
    const d = await writeEntry(kv, { layers: 1, layerBytes: 7 }, now);

    const third = await scanner.scan();
    assert.equal(scanner.lastFullScans, 2, 'b (changed) and d (new)');
    const by = new Map(third.entries.map((e) => [e.name, e]));
    assert.equal(by.size, 3);
    assert.ok(!by.has(c.name));
    assert.ok(Math.abs(by.get(a.name)!.lastUsedMs - (now - 5000)) < 1000, 'the read of a is seen');
    assert.equal(by.get(b.name)!.bytes, 35);
    assert.equal(by.get(d.name)!.bytes, 7);
  } finally {
    await cleanup();
  }
});
