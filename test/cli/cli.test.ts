/**
 * The pd command line: verbs, help, usage and config errors, init, config, output files.
 * Pure logic runs in-process through the same commander program (./in-process.ts); each kind of behaviour that
 * depends on the built binary keeps one spawn of it: help (which loads every verb's bundled chunk), --version,
 * a commander usage error, a config error (exit 2, hint, no stack trace), a closed stdout pipe and `pd sim`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { runPd } from '../helpers/cli.js';
import { tempDir } from '../helpers/tmp.js';
import { runPdInProcess as pdIn } from './in-process.js';

const VERBS = ['init', 'plan', 'up', 'down', 'status', 'logs', 'doctor', 'proxy', 'clear-cache', 'cache', 'bench', 'render', 'config', 'sim'];

test('pd --help lists every verb and --version prints the package version (built binary)', async () => {
  const [help, version] = await Promise.all([runPd(['--help']), runPd(['--version'])]);
  assert.equal(help.code, 0);
  for (const v of VERBS) assert.match(help.stdout, new RegExp(`^  ${v}\\b`, 'm'), v);
  const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
  assert.equal(version.code, 0);
  assert.equal(version.stdout.trim(), pkg.version);
});

test('every verb has help', async () => {
  for (const v of VERBS.filter((v) => v !== 'sim')) {
    const r = await pdIn([v, '--help']);
    assert.equal(r.code, 0, `${v}: ${r.stderr}`);
    assert.match(r.stdout, new RegExp(`Usage: pd ${v}`), v);
  }
});

test('an unknown flag or verb exits 2 with a message', async () => {
  const r = await runPd(['plan', '--bogus']);
  assert.equal(r.code, 2);
  assert.match(r.stderr, /unknown option '--bogus'/);
  const v = await pdIn(['plna']);
  assert.equal(v.code, 2);
  assert.match(v.stderr, /Did you mean plan\?/);
});

test('invalid configs exit 2, name the field, and print no stack trace', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const cases: Array<[unknown, RegExp]> = [
      [{ proxy: { port: 99999 } }, /proxy\.port: port must be a whole number between 1 and 65535/],
      [{ consumers: [{ gpus: [1], port: 8100 }] }, /consumers\[0\]\.port: port 8100 is already used by producers\[0\]\.port/],
      [{ kv: { sharedStoragePath: 'relative/kv' } }, /kv\.sharedStoragePath: "relative\/kv" is not an absolute path/],
      [{ modle: 'x' }, /modle: unknown field \(did you mean "model"\?\)/],
      [{ producers: [{ gpus: [0], port: 8100, kvRole: 'kv_consumer' }] }, /producers\[0\]\.kvRole: kv_role "kv_consumer" does not fit a producer/],
    ];
    const check = (r: { code: number | null; stdout: string; stderr: string }, pattern: RegExp, what: string) => {
      assert.equal(r.code, 2, `${what}: ${r.stdout}${r.stderr}`);
      assert.match(r.stderr, pattern);
      assert.match(r.stderr, /hint:/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
    };
    for (const [i, [raw, pattern]] of cases.entries()) {
      const file = join(dir, `c${i}.json`);
      await writeFile(file, JSON.stringify(raw));
      for (const verb of [['plan'], ['config', 'validate']]) check(await pdIn(['-c', file, ...verb]), pattern, `${JSON.stringify(raw)} ${verb.join(' ')}`);
    }
    // The built binary: the same message, exit code and no stack trace.
    check(await runPd(['-c', join(dir, 'c3.json'), 'config', 'validate']), cases[3]![1], 'built pd config validate');
    await writeFile(join(dir, 'broken.json'), '{ "model": ');
    const broken = await pdIn(['-c', join(dir, 'broken.json'), 'plan']);
    assert.equal(broken.code, 2);
    assert.match(broken.stderr, /is not valid JSON/);
  } finally {
    await cleanup();
  }
});

test('pd config validate refuses a GPU shared by both roles as pd up does; allowed or simulated it warns and passes', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    await writeFile(join(dir, 'pd.config.json'), JSON.stringify({ consumers: [{ gpus: [0], port: 8200 }] }));
    const refused = await pdIn(['config', 'validate'], { cwd: dir });
    assert.equal(refused.code, 2, refused.stderr);
    assert.match(refused.stderr, /consumers\[0\]\.gpus: GPU 0 is used by both producer-0 and consumer-0/);
    for (const extra of [['--simulate'], ['--allow-shared-gpus']]) {
      const r = await pdIn(['config', 'validate', ...extra], { cwd: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stderr, /warning: consumers\[0\]\.gpus: GPU 0 is used by both producer-0 and consumer-0/);
    }
  } finally {
    await cleanup();
  }
});

test('pd config print shows resolved defaults; pd config schema is JSON Schema', async () => {
  const printed = await pdIn(['config', 'print'], { cwd: '/' });
  assert.equal(printed.code, 0, printed.stderr);
  assert.equal(JSON.parse(printed.stdout).proxy.rateLimit, 40);
  const schema = await pdIn(['config', 'schema']);
  assert.equal(JSON.parse(schema.stdout).$schema, 'https://json-schema.org/draft/2020-12/schema');
});

test('pd init writes a template, refuses to overwrite without --force, rejects unknown templates', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    const r = await pdIn(['init'], { cwd: dir });
    assert.equal(r.code, 0, r.stderr);
    const written = JSON.parse(await readFile(join(dir, 'pd.config.json'), 'utf8'));
    // Templates say "auto": pd asks `vllm --version` and picks the name that release knows.
    assert.equal(written.kv.connector, 'auto');
    assert.match(written.$schema, /templates\/pd\.config\.schema\.json$/);
    const again = await pdIn(['init', '--template', 'nixl-1p1d'], { cwd: dir });
    assert.equal(again.code, 2);
    assert.match(again.stderr, /already exists/);
    assert.match(again.stderr, /--force/);
    const forced = await pdIn(['init', '--template', 'nixl-1p1d', '--force'], { cwd: dir });
    assert.equal(forced.code, 0, forced.stderr);
    assert.equal(JSON.parse(await readFile(join(dir, 'pd.config.json'), 'utf8')).kv.connector, 'NixlConnector');
    const valid = await pdIn(['config', 'validate'], { cwd: dir });
    assert.equal(valid.code, 0, valid.stderr);
    const xpyd = await pdIn(['init', '-t', 'shared-storage-xpyd', '-o', 'x.json'], { cwd: dir });
    assert.equal(xpyd.code, 0);
    const plan = await pdIn(['-c', 'x.json', 'plan', '--json'], { cwd: dir, env: { PATH: '/usr/bin:/bin' } });
    assert.equal(JSON.parse(plan.stdout).engines.length, 4);
    const unknown = await pdIn(['init', '-t', 'nope', '-o', 'y.json'], { cwd: dir });
    assert.equal(unknown.code, 2);
    assert.match(unknown.stderr, /unknown template "nope"/);
  } finally {
    await cleanup();
  }
});

test('output files that cannot be written are usage errors, not bugs', async () => {
  const { dir, cleanup } = await tempDir();
  try {
    for (const args of [['init', '-o', join(dir, 'no', 'such', 'x.json')], ['config', 'schema', '-o', join(dir, 'no', 'x.json')]]) {
      const r = await pdIn(args, { cwd: dir });
      assert.equal(r.code, 2, `${args.join(' ')}: ${r.stderr}`);
      assert.match(r.stderr, /cannot write .*: the folder .* does not exist/);
      assert.doesNotMatch(r.stderr, /unexpected failure/);
    }
  } finally {
    await cleanup();
  }
});

test('a closed pipe on stdout (pd logs | head -1) ends quietly', async () => {
  const { spawn } = await import('node:child_process');
  const { mkdir } = await import('node:fs/promises');
  const { PD_BIN } = await import('../helpers/cli.js');
  const { dir, cleanup } = await tempDir();
  try {
    // 1.2 MB of log: far more than a pipe buffer (64 KiB), so writes hit the closed pipe.
    await mkdir(join(dir, 'state', 'logs'), { recursive: true });
    await writeFile(join(dir, 'state', 'logs', 'producer-0.log'), 'INFO a line of engine output\n'.repeat(40_000));
    const child = spawn(process.execPath, [PD_BIN, 'logs', 'producer-0', '-n', '40000'], {
      stdio: ['ignore', 'pipe', 'pipe'],
      env: { ...process.env, PD_STATE_DIR: join(dir, 'state') },
    });
    let stderr = '';
    child.stderr.on('data', (d) => (stderr += d));
    child.stdout.once('data', () => child.stdout.destroy());
    const code = await new Promise<number | null>((r) => child.on('exit', (c) => r(c)));
    assert.equal(code, 0, stderr);
    assert.doesNotMatch(stderr, /EPIPE|Unhandled|\n\s+at /);
  } finally {
    await cleanup();
  }
});

test('pd sim with no arguments prints its usage instead of serving', async () => {
  const r = await runPd(['sim'], { timeoutMs: 10_000 });
  assert.equal(r.code, 0);
  assert.match(r.stdout, /^usage: pd sim serve MODEL/);
});
