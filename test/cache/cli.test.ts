/**
 * `pd clear-cache` and `pd cache`: exit codes, messages, JSON. The commands run in-process through pd's commander
 * program (test/cli/in-process.ts); the built binary runs where the binary itself matters: one clear with its
 * exit code and output, and the clear as another user (setpriv).
 */
import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, writeFile, readdir, chmod, chown, rm } from 'node:fs/promises';
import { identityOf } from '../../src/stack/identity.js';
import { join } from 'node:path';
import { execa } from 'execa';
import { tempDir } from '../helpers/tmp.js';
import { runPdInProcess } from '../cli/in-process.js';
import { writeEntry } from './tree.js';

const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;

describe('pd clear-cache / pd cache (built CLI)', () => {
  let dir: string;
  let kv: string;
  let cfg: string;
  let cleanup: () => Promise<void>;
  const pdBin = (args: string[]) => execa(process.execPath, [MAIN, '-c', cfg, ...args], { reject: false, env: { NO_COLOR: '1' } });
  const pd = async (args: string[]) => {
    const r = await runPdInProcess(['-c', cfg, ...args]);
    return { exitCode: r.code, stdout: r.stdout.replace(/\n$/, ''), stderr: r.stderr.replace(/\n$/, '') };
  };

  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('pd-cache-cli-'));
    kv = join(dir, 'kv');
    await mkdir(kv);
    // The config and the state dir live apart from the cache (pd refuses a cache path that overlaps them).
    await mkdir(join(dir, 'project'));
    cfg = join(dir, 'project', 'pd.config.json');
    await writeFile(cfg, JSON.stringify({ kv: { sharedStoragePath: kv, cache: { maxBytes: 10_000 } }, stateDir: join(dir, 'state') }));
  });
  afterEach(() => cleanup());

  test('clears, prints entries/bytes/time, exits 0 (built binary); --json reports the same', async () => {
    await writeEntry(kv, { layers: 3, layerBytes: 2048 });
    await writeEntry(kv, { layers: 3, layerBytes: 2048 });
    const r = await pdBin(['clear-cache']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /Removed 2 entries \(6 files, 12\.0 KiB\) from .* in \d/);
    assert.deepEqual(await readdir(kv), []);
    await writeEntry(kv, { layers: 1, layerBytes: 10 });
    const j = await pd(['cache', 'clear', '--json']);
    assert.equal(j.exitCode, 0, j.stderr);
    const rep = JSON.parse(j.stdout);
    assert.equal(rep.entriesRemoved, 1);
    assert.equal(rep.bytesFreed, 10);
    assert.equal(rep.path, kv);
  });

  test('--dry-run shows what would go and deletes nothing', async () => {
    const e = await writeEntry(kv, {});
    const r = await pd(['clear-cache', '--dry-run']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /would remove 1 entry .*nothing was deleted/);
    assert.match(r.stdout, new RegExp(e.name));
    assert.deepEqual(await readdir(kv), [e.name]);
  });

  test('--older-than keeps recent entries; a bad duration exits 2 with a hint', async () => {
    const old = await writeEntry(kv, { ageSeconds: 7200 });
    const fresh = await writeEntry(kv, {});
    const r = await pd(['clear-cache', '--older-than', '1h']);
    assert.equal(r.exitCode, 0, r.stderr);
    assert.match(r.stdout, /Removed 1 entry/);
    assert.match(r.stdout, /Kept 1 entry used within the last 1h/);
    assert.deepEqual(await readdir(kv), [fresh.name]);
    assert.ok(!(await readdir(kv)).includes(old.name));
    const bad = await pd(['clear-cache', '--older-than', 'soon']);
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /--older-than "soon" is not a duration/);
    assert.match(bad.stderr, /hint: .*90s, 30m, 2h, 7d/);
    assert.doesNotMatch(bad.stderr, /\n\s+at /, 'no stack trace');
  });

  test('refuses dangerous or unconfigured paths with exit 2 and no stack trace', async () => {
    for (const [args, re] of [
      [['clear-cache', '--path', '/'], /not the configured shared storage path.*filesystem root/],
      [['clear-cache', '--path', '/mnt'], /not the configured shared storage path.*system folder/],
      [['clear-cache', '--path', 'relative/kv'], /not an absolute path/],
      [['clear-cache', '--path', join(dir, 'elsewhere')], /not the configured shared storage path/],
    ] as const) {
      const r = await pd([...args]);
      assert.equal(r.exitCode, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, re);
      assert.match(r.stderr, /hint:/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    }
    await writeFile(cfg, JSON.stringify({ kv: { sharedStoragePath: '/usr' }, stateDir: join(dir, 'state') }));
    const r = await pd(['clear-cache']);
    assert.equal(r.exitCode, 2);
    assert.match(r.stderr, /refusing to clear \/usr: the configured kv.sharedStoragePath is a top-level system folder/);
  });

  test('refuses while the stack is running unless --force, which warns', async () => {
    const state = join(dir, 'state');
    await mkdir(state);
    // A live supervisor: this test process, recorded with its start time (pd proves identity before trusting a pid).
    const me = identityOf(process.pid);
    await writeFile(join(state, 'state.json'), JSON.stringify({ version: 2, supervisorPid: me.pid, supervisorStartTime: me.startTime, engines: [] }));
    const e = await writeEntry(kv, {});
    const r = await pd(['clear-cache']);
    assert.equal(r.exitCode, 1);
    assert.match(r.stderr, /refusing to clear .*the stack is running/);
    assert.match(r.stderr, /hint: .*pd down.*--force/);
    assert.deepEqual(await readdir(kv), [e.name]);
    const forced = await pd(['clear-cache', '--force']);
    assert.equal(forced.exitCode, 0, forced.stderr);
    assert.match(forced.stderr, /warning: .*running engines may miss entries/i);
    assert.deepEqual(await readdir(kv), []);
  });

  test('refuses a cache path that overlaps pd\'s own files, naming both paths', async () => {
    for (const [kvPath, re] of [
      [join(dir, 'project'), /the KV cache path .*project is the config file's folder/],
      [join(dir, 'state', 'kv'), /the KV cache path .*state\/kv is inside stateDir/],
      [dir, /the KV cache path .* contains the config file's folder/],
    ] as const) {
      await writeFile(cfg, JSON.stringify({ kv: { sharedStoragePath: kvPath }, stateDir: join(dir, 'state') }));
      for (const verb of [['clear-cache'], ['config', 'validate']]) {
        const r = await pd(verb);
        assert.equal(r.exitCode, 2, `${verb.join(' ')} ${kvPath}: ${r.stderr}`);
        assert.match(r.stderr, re);
      }
    }
    assert.ok(existsSync(cfg), 'nothing of pd\'s was deleted');
  });

  test('as a non-root user, files written by root are reported with the chown fix (exit 1, partial)', async () => {
    // The test temp root is private (0700), so this test uses its own world-traversable folder.
    const pub = await mkdtemp('/tmp/pd-cache-nobody-');
    try {
      await chmod(pub, 0o755);
      const nkv = join(pub, 'kv');
      await mkdir(nkv);
      await chown(nkv, 65534, 65534);
      await mkdir(join(pub, 'project'), { mode: 0o755 });
      const ncfg = join(pub, 'project', 'pd.config.json');
      await writeFile(ncfg, JSON.stringify({ kv: { sharedStoragePath: nkv }, stateDir: join(pub, 'state') }));
      const mine = await writeEntry(nkv, {});
      await chown(join(nkv, mine.name), 65534, 65534);
      for (const f of await readdir(join(nkv, mine.name))) await chown(join(nkv, mine.name, f), 65534, 65534);
      const roots = await writeEntry(nkv, { layers: 2 }); // root-owned folder, 0755: nobody cannot unlink inside
      const r = await execa(
        'setpriv',
        ['--reuid=65534', '--regid=65534', '--clear-groups', process.execPath, MAIN, '-c', ncfg, 'clear-cache'],
        { reject: false, env: { NO_COLOR: '1' } },
      );
      assert.equal(r.exitCode, 1, r.stdout + r.stderr);
      assert.match(r.stdout, /Removed 1 entry \(3 files/);
      assert.match(r.stderr, /could not remove 1 entry .*1 removed, 1 still in place/);
      assert.match(r.stderr, new RegExp(`EACCES ${join(nkv, roots.name)}/model\\.layers\\.0\\.self_attn\\.attn\\.safetensors: permission denied`));
      assert.match(r.stderr, /hint: .*sudo chown -R \$USER /);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.deepEqual(await readdir(nkv), [roots.name]);
    } finally {
      await rm(pub, { recursive: true, force: true });
    }
  });

  test('pd cache stats prints figures and JSON; pd cache defaults to stats', async () => {
    await writeEntry(kv, { name: 'f'.repeat(32), layers: 4, layerBytes: 1024 });
    await writeEntry(kv, { name: '0'.repeat(32), layers: 1, layerBytes: 100, ageSeconds: 3600 });
    const h = await pd(['cache', 'stats', '--top', '1']);
    assert.equal(h.exitCode, 0, h.stderr);
    assert.match(h.stdout, /entries\s+2/);
    assert.match(h.stdout, /files\s+5/);
    assert.match(h.stdout, /size\s+4\.10 KiB \(4,196 bytes\), 42% of maxBytes/);
    assert.match(h.stdout, /oldest\s+0{32} written 1\.0 h ago/);
    assert.match(h.stdout, /Largest entry:\n.*\n\s+4\.00 KiB\s+4\s+.*f{32}/);
    const j = await pd(['cache', '--json']);
    assert.equal(j.exitCode, 0, j.stderr);
    const s = JSON.parse(j.stdout);
    assert.equal(s.entries, 2);
    assert.equal(s.totalBytes, 4196);
    assert.equal(s.largest[0].name, 'f'.repeat(32));
    const bad = await pd(['cache', 'stats', '--top', 'many']);
    assert.equal(bad.exitCode, 2);
    assert.match(bad.stderr, /--top "many"/);
  });
});
