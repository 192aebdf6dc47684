/* eslint-disable no-control-regex -- the colour codes are what one of these tests checks */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { appendFile, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { tempDir } from '../helpers/tmp.js';
import { PD_BIN, runPd } from '../helpers/cli.js';
import { waitFor } from '../helpers/stack.js';

const two = (n: number): string => String(n).padStart(2, '0');
/** vLLM's logger line at local time `t`. */
const vllm = (t: number, msg: string): string => {
  const d = new Date(t);
  return `(APIServer pid=7) INFO ${two(d.getMonth() + 1)}-${two(d.getDate())} ${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())} [api_server.py:1] ${msg}`;
};
const clock = (t: number): string => new Date(t).toTimeString().slice(0, 8);
/** A minute ago, but today (lines from another day would show their date). */
const minuteAgo = (): number => Math.max(Date.now() - 60_000, new Date().setHours(0, 0, 1, 0));

/** A state dir with logs (and no running stack): what `pd logs` reads. */
async function withLogs(files: Record<string, string[]>): Promise<{ dir: string; logs: string; pd: (args: string[], env?: Record<string, string>) => ReturnType<typeof runPd>; cleanup: () => Promise<void> }> {
  const { dir, cleanup } = await tempDir('pd-logs-cli-');
  const logs = join(dir, 'state', 'logs');
  await mkdir(logs, { recursive: true });
  for (const [name, lines] of Object.entries(files)) await writeFile(join(logs, `${name}.log`), lines.map((l) => `${l}\n`).join(''));
  const env = { PD_STATE_DIR: join(dir, 'state') };
  return { dir, logs, cleanup, pd: (args, e = {}) => runPd(args, { cwd: dir, env: { ...env, ...e }, timeoutMs: 20_000 }) };
}

test('pd logs merges every log by time, with a time column and the source, and -n counts lines overall', async () => {
  const t0 = minuteAgo();
  const s = await withLogs({
    'producer-0': [vllm(t0, 'producer starts'), '(APIServer pid=7) INFO:     127.0.0.1:1 - "POST /v1/chat/completions HTTP/1.1" 200 OK', vllm(t0 + 4000, 'producer stats')],
    'consumer-0': [vllm(t0 + 2000, 'consumer starts'), '(APIServer pid=7) INFO:     127.0.0.1:1 - "GET /health HTTP/1.1" 200 OK'],
    proxy: [`${new Date(t0 + 3000).toISOString()} id1 POST /v1/chat/completions 200 queue=0.1ms`],
  });
  try {
    const r = await s.pd(['logs']);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(r.stdout.split('\n').slice(0, -1), [
      `${clock(t0)}     producer-0 | ${vllm(t0, 'producer starts')}`,
      `${clock(t0)}     producer-0 | (APIServer pid=7) INFO:     127.0.0.1:1 - "POST /v1/chat/completions HTTP/1.1" 200 OK`,
      `${clock(t0 + 2000)}     consumer-0 | ${vllm(t0 + 2000, 'consumer starts')}`,
      `${clock(t0 + 3000)}.${String(new Date(t0 + 3000).getMilliseconds()).padStart(3, '0')} proxy      | ${new Date(t0 + 3000).toISOString()} id1 POST /v1/chat/completions 200 queue=0.1ms`,
      `${clock(t0 + 4000)}     producer-0 | ${vllm(t0 + 4000, 'producer stats')}`,
    ]);
    // The proxy's /health probes are hidden, as in `pd up`; --probes shows them.
    assert.doesNotMatch(r.stdout, /GET \/health/);
    assert.match((await s.pd(['logs', '--probes'])).stdout, /consumer-0 \| .*GET \/health/);

    const last2 = await s.pd(['logs', '-n', '2']);
    assert.deepEqual(last2.stdout.split('\n').slice(0, -1).map((l) => l.split(' | ')[0]!.trim().split(/\s+/).pop()), ['proxy', 'producer-0']);
    // One log: no source column.
    const one = await s.pd(['logs', 'consumer-0']);
    assert.equal(one.stdout, `${clock(t0 + 2000)}     ${vllm(t0 + 2000, 'consumer starts')}\n`);
  } finally {
    await s.cleanup();
  }
});

test('pd logs --since keeps lines from a duration ago or a time; a bad value is a usage error', async () => {
  const now = Date.now();
  const s = await withLogs({ 'producer-0': [vllm(now - 3 * 3_600_000, 'three hours ago'), vllm(now - 20 * 60_000, 'twenty minutes ago'), vllm(now - 60_000, 'a minute ago')] });
  try {
    const tenMin = await s.pd(['logs', '--since', '10m']);
    assert.equal(tenMin.code, 0, tenMin.stderr);
    assert.deepEqual(tenMin.stdout.match(/ago$/gm)?.length, 1);
    assert.match(tenMin.stdout, /a minute ago/);
    // The other forms of --since (hours, ISO 8601 times) are parseSince's, checked in test/stack/logs.test.ts.
    // --since with -n: the last n of those.
    assert.match((await s.pd(['logs', '--since', '2h', '-n', '1'])).stdout, /^[^\n]*a minute ago\n$/);
    const bad = await s.pd(['logs', '--since', 'last tuesday']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--since "last tuesday" is neither a duration nor a time/);
    assert.match(bad.stderr, /hint: .*10m/);
  } finally {
    await s.cleanup();
  }
});

test('each engine has its own colour (the order of pd up), the proxy its own, the supervisor grey', async () => {
  const t0 = Date.now() - 10_000;
  const s = await withLogs({
    'producer-0': [vllm(t0, 'p')],
    'consumer-0': [vllm(t0 + 1000, 'c')],
    proxy: [`${new Date(t0 + 2000).toISOString()} x`],
    supervisor: ['pd | something'],
  });
  try {
    const r = await s.pd(['logs'], { NO_COLOR: '', FORCE_COLOR: '1' });
    const colourOf = (name: string): string | undefined => new RegExp(`(\\x1b\\[[0-9;]+m)${name}\\s*\\|`).exec(r.stdout)?.[1];
    assert.equal(colourOf('producer-0'), '\x1b[36m', 'cyan, as the first engine in pd up');
    assert.equal(colourOf('consumer-0'), '\x1b[35m', 'magenta');
    assert.equal(colourOf('proxy'), '\x1b[33m', 'yellow: the colour after the engines');
    assert.equal(colourOf('supervisor'), '\x1b[90m');
    // Without a colour terminal (or with NO_COLOR) there is none.
    assert.doesNotMatch((await s.pd(['logs'])).stdout, /\x1b\[/);
  } finally {
    await s.cleanup();
  }
});

test('pd logs -f prints the lines of every log merged as they arrive, and Ctrl+C ends it with exit 0', async () => {
  const s = await withLogs({ 'producer-0': [vllm(Date.now() - 5_000, 'history')] });
  const child = spawn(process.execPath, [PD_BIN, 'logs', '-f', '-n', '1'], {
    cwd: s.dir,
    env: { PATH: process.env.PATH ?? '', NO_COLOR: '1', PD_STATE_DIR: join(s.dir, 'state') },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.on('data', (d) => (out += d));
  child.stderr.on('data', (d) => (err += d));
  try {
    await waitFor('history', () => /history/.test(out), 15_000);
    await appendFile(join(s.logs, 'producer-0.log'), `${vllm(Date.now(), 'new producer line')}\n`);
    // A log that did not exist when -f started (the proxy starts last) is followed too.
    await writeFile(join(s.logs, 'proxy.log'), `${new Date().toISOString()} a proxy line\n`);
    await waitFor('both new lines', () => /producer-0 \| .*new producer line/.test(out) && /proxy\s+\| .*a proxy line/.test(out), 15_000);
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGINT');
    assert.equal(await exited, 0, err);
    assert.equal(err, '');
    assert.equal(out.match(/history/g)?.length, 1);
  } finally {
    if (child.exitCode === null) child.kill('SIGKILL');
    await s.cleanup();
  }
});

test('pd logs with no logs yet says so and exits 0; an unknown name is a usage error', async () => {
  const { dir, cleanup } = await tempDir('pd-logs-none-');
  try {
    const r = await runPd(['logs'], { cwd: dir, env: { PD_STATE_DIR: join(dir, 'state') }, timeoutMs: 20_000 });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, '');
    assert.match(r.stderr, /no logs in .*state\/logs yet/);
    const bad = await runPd(['logs', 'nope'], { cwd: dir, env: { PD_STATE_DIR: join(dir, 'state') }, timeoutMs: 20_000 });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no log named "nope"/);
  } finally {
    await cleanup();
  }
});
