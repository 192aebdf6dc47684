import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, symlink } from 'node:fs/promises';
import { join } from 'node:path';
import { cacheStats } from '../../src/cache/stats.js';
import { tempDir } from '../helpers/tmp.js';
import { writeEntry } from './tree.js';

describe('cacheStats', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  before(async () => ({ dir, cleanup } = await tempDir('pd-cache-stats-')));
  after(() => cleanup());

  test('counts entries, files and bytes; finds oldest, newest and the largest', async () => {
    const kv = join(dir, 'kv');
    await mkdir(kv);
    const now = Date.now();
    const old = await writeEntry(kv, { name: 'a'.repeat(32), layers: 2, layerBytes: 100, ageSeconds: 3600 }, now);
    const big = await writeEntry(kv, { name: 'b'.repeat(32), layers: 5, layerBytes: 1000, ageSeconds: 600 }, now);
    const mid = await writeEntry(kv, { name: 'c'.repeat(32), layers: 3, layerBytes: 400, ageSeconds: 5 }, now);
    await symlink('/etc', join(kv, big.name, 'link')); // counted as a small file, never followed
    await new Promise((r) => setTimeout(r, 20));
    await writeFile(join(kv, 'stray.bin'), Buffer.alloc(7));

    const s = await cacheStats(kv, { largest: 2 });
    assert.equal(s.exists, true);
    assert.equal(s.entries, 4);
    assert.equal(s.files, 2 + 5 + 3 + 1 + 1);
    assert.equal(s.totalBytes, old.bytes + big.bytes + mid.bytes + 7 + '/etc'.length);
    assert.equal(s.oldest?.name, old.name);
    assert.ok(Math.abs(s.oldest.mtimeMs - (now - 3600_000)) < 1000);
    // The stray file was written just now, so it is the newest.
    assert.equal(s.newest?.name, 'stray.bin');
    assert.deepEqual(
      s.largest.map((e) => [e.name, e.files]),
      [
        [big.name, 6],
        [mid.name, 3],
      ],
    );
    assert.equal(s.largest[0]!.bytes, big.bytes + 4);
    assert.deepEqual(s.errors, []);
  });

  test('a missing folder gives zeros', async () => {
    const s = await cacheStats(join(dir, 'missing'));
    assert.deepEqual(
      { exists: s.exists, entries: s.entries, files: s.files, totalBytes: s.totalBytes, largest: s.largest },
      { exists: false, entries: 0, files: 0, totalBytes: 0, largest: [] },
    );
    assert.equal(s.oldest, undefined);
  });

  test('an empty folder has no oldest/newest', async () => {
    const kv = join(dir, 'empty');
    await mkdir(kv);
    const s = await cacheStats(kv);
    assert.equal(s.entries, 0);
    assert.equal(s.newest, undefined);
  });
});
