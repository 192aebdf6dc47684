import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, writeFile, symlink, readdir, readFile, lstat, stat } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { clearCache, failureHint } from '../../src/cache/clear.js';
import { nodeFsSync, type CacheFsSync } from '../../src/cache/fs.js';
import { tempDir } from '../helpers/tmp.js';
import { writeEntry } from './tree.js';

describe('clearCache', () => {
  let dir: string;
  let kv: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('pd-cache-clear-'));
    kv = join(dir, 'kv');
    await mkdir(kv);
  });
  afterEach(() => cleanup());

  test('empties the folder, keeps it, and reports entries, files and bytes', async () => {
    await writeEntry(kv, { layers: 4, layerBytes: 1000 });
    await writeEntry(kv, { layers: 2, layerBytes: 500 });
    await writeFile(join(kv, 'stray.txt'), 'abc');
    const r = await clearCache({ path: kv, configuredPath: kv });
    assert.equal(r.entriesRemoved, 3);
    assert.equal(r.filesRemoved, 7);
    assert.equal(r.bytesFreed, 4 * 1000 + 2 * 500 + 3);
    assert.equal(r.failures.length, 0);
    assert.equal(r.entriesFailed, 0);
    assert.equal(r.dryRun, false);
    assert.equal(r.kept, 0);
    assert.ok(r.durationMs >= 0);
    assert.deepEqual(await readdir(kv), []);
    assert.ok((await stat(kv)).isDirectory());
  });

  test('a missing folder is nothing to do', async () => {
    const r = await clearCache({ path: join(dir, 'nope'), configuredPath: join(dir, 'nope') });
    assert.equal(r.exists, false);
    assert.equal(r.entriesRemoved, 0);
  });

  test('removes symlinks themselves and never follows them out of the folder', async () => {
    const outside = join(dir, 'outside');
    await mkdir(join(outside, 'sub'), { recursive: true });
    await writeFile(join(outside, 'precious.txt'), 'keep me');
    await writeFile(join(outside, 'sub', 'also.txt'), 'keep me too');
    const e = await writeEntry(kv, {});
    await symlink(join(outside, 'precious.txt'), join(kv, e.name, 'link-to-file'));
    await symlink(outside, join(kv, e.name, 'link-to-dir'));
    await symlink(outside, join(kv, 'top-level-link'));
    await symlink(join(dir, 'dangling-target'), join(kv, 'dangling'));
    const r = await clearCache({ path: kv, configuredPath: kv });
    assert.equal(r.failures.length, 0);
    assert.equal(r.entriesRemoved, 3);
    assert.deepEqual(await readdir(kv), []);
    assert.equal(await readFile(join(outside, 'precious.txt'), 'utf8'), 'keep me');
    assert.equal(await readFile(join(outside, 'sub', 'also.txt'), 'utf8'), 'keep me too');
  });

  test('follows a symlinked cache root itself (the configured folder), not links below it', async () => {
    const real = join(dir, 'real');
    await mkdir(real);
    await writeEntry(real, {});
    const link = join(dir, 'kv-link');
    await symlink(real, link);
    const r = await clearCache({ path: link, configuredPath: link });
    assert.equal(r.entriesRemoved, 1);
    assert.deepEqual(await readdir(real), []);
    assert.ok((await lstat(link)).isSymbolicLink(), 'the link itself stays');
  });

  test('--dry-run lists what would go and deletes nothing', async () => {
    const a = await writeEntry(kv, { layers: 3, layerBytes: 100 });
    const b = await writeEntry(kv, { layers: 1, layerBytes: 50 });
    const r = await clearCache({ path: kv, configuredPath: kv, dryRun: true });
    assert.equal(r.dryRun, true);
    assert.equal(r.entriesRemoved, 2);
    assert.equal(r.filesRemoved, 4);
    assert.equal(r.bytesFreed, 350);
    assert.deepEqual(r.entries?.map((e) => e.name).sort(), [a.name, b.name].sort());
    assert.equal((await readdir(kv)).length, 2);
    assert.equal((await readdir(join(kv, a.name))).length, 3);
  });

  test('olderThanMs removes only entries not used for that long', async () => {
    const old = await writeEntry(kv, { ageSeconds: 3 * 3600 });
    const recentlyRead = await writeEntry(kv, { ageSeconds: 3 * 3600, readSecondsAgo: 60 });
    const fresh = await writeEntry(kv, { ageSeconds: 10 });
    const dry = await clearCache({ path: kv, configuredPath: kv, olderThanMs: 2 * 3600_000, dryRun: true });
    assert.deepEqual(dry.entries?.map((e) => e.name), [old.name]);
    assert.equal(dry.kept, 2);
    const r = await clearCache({ path: kv, configuredPath: kv, olderThanMs: 2 * 3600_000 });
    assert.equal(r.entriesRemoved, 1);
    assert.equal(r.kept, 2);
    assert.equal(r.olderThanMs, 2 * 3600_000);
    assert.deepEqual((await readdir(kv)).sort(), [recentlyRead.name, fresh.name].sort());
  });

  test('many entries are deleted on worker threads with exact totals', async () => {
    let bytes = 0;
    for (let i = 0; i < 150; i++) bytes += (await writeEntry(kv, { layers: 4, layerBytes: 10 + i })).bytes;
    const r = await clearCache({ path: kv, configuredPath: kv, concurrency: 2 });
    assert.equal(r.entriesRemoved, 150);
    assert.equal(r.filesRemoved, 600);
    assert.equal(r.bytesFreed, bytes);
    assert.deepEqual(await readdir(kv), []);
  });

  test('permission errors (injected fs) are reported per file; the rest is removed', async () => {
    const ok = await writeEntry(kv, { layers: 2 });
    const locked = await writeEntry(kv, { layers: 3, layerBytes: 10 });
    const lockedDir = join(kv, locked.name);
    const fs: CacheFsSync = {
      ...nodeFsSync,
      unlinkSync(p: string) {
        if (p.startsWith(lockedDir + '/') && p.endsWith('1.self_attn.attn.safetensors')) {
          throw Object.assign(new Error(`EACCES: permission denied, unlink '${p}'`), { code: 'EACCES' });
        }
        nodeFsSync.unlinkSync(p);
      },
    };
    const r = await clearCache({ path: kv, configuredPath: kv, fsSync: fs });
    assert.equal(r.entriesRemoved, 1);
    assert.equal(r.entriesFailed, 1);
    assert.equal(r.filesRemoved, 2 + 2);
    assert.equal(r.bytesFreed, ok.bytes + 20);
    assert.equal(r.failures.length, 1, 'the parent folder is not reported as ENOTEMPTY noise');
    assert.equal(r.failures[0]!.code, 'EACCES');
    assert.equal(r.failures[0]!.path, join(lockedDir, 'model.layers.1.self_attn.attn.safetensors'));
    assert.deepEqual(await readdir(kv), [locked.name]);
    const hint = failureHint(kv, r.failures) ?? '';
    assert.match(hint, /chown -R|chattr/);
  });

  test('a file root cannot delete (chattr +i) is reported and its entry kept', async () => {
    const ok = await writeEntry(kv, {});
    const stuck = await writeEntry(kv, { layers: 2 });
    const file = join(kv, stuck.name, 'model.layers.0.self_attn.attn.safetensors');
    execFileSync('chattr', ['+i', file]);
    let r;
    try {
      r = await clearCache({ path: kv, configuredPath: kv });
    } finally {
      execFileSync('chattr', ['-i', file]);
    }
    assert.equal(r.entriesRemoved, 1);
    assert.equal(r.entriesFailed, 1);
    assert.equal(r.failures.length, 1);
    assert.equal(r.failures[0]!.path, file);
    assert.equal(r.failures[0]!.code, 'EPERM');
    assert.ok(!existsSync(join(kv, ok.name)));
    assert.ok(existsSync(file));
    assert.equal(r.filesRemoved, 3 + 1);
  });

  test('refuses a cache path that is a file', async () => {
    const f = join(dir, 'file');
    await writeFile(f, 'x');
    await assert.rejects(clearCache({ path: f, configuredPath: f }), /not a folder/);
  });
});
