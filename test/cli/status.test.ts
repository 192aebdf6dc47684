/* eslint-disable no-control-regex -- the terminal escapes are what these tests check */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Chalk } from 'chalk';
import { makeStackDir, waitFor, type StackDir } from '../helpers/stack.js';
import { runPd } from '../helpers/cli.js';
import { stackIdOf, STACK_ID_ENV } from '../../src/stack/identity.js';
import { fit, renderStatus, terminalFrame, watchStatus, type WatchTarget } from '../../src/cli/status-view.js';
import { degradation, type EngineStatus, type StackStatus } from '../../src/stack/status.js';

const plain = new Chalk({ level: 0 });

/** A stand-in supervisor: a live process carrying the stack's PD_STACK_ID, so the state file it "wrote" is live. */
function fakeSupervisor(stateDir: string): ChildProcess {
  return spawn('sleep', ['60'], { stdio: 'ignore', env: { PATH: process.env.PATH ?? '', [STACK_ID_ENV]: stackIdOf(stateDir) } });
}

async function writeState(s: StackDir, state: Record<string, unknown>): Promise<string> {
  const stateDir = join(s.dir, 'state');
  await mkdir(stateDir, { recursive: true });
  await writeFile(join(stateDir, 'state.json'), JSON.stringify(state));
  return stateDir;
}

const degradedState = (supervisorPid: number) => ({
  version: 2,
  supervisorPid,
  startedAt: new Date(Date.now() - 90_000).toISOString(),
  phase: 'degraded',
  model: '/mnt/models/Qwen3-4B-Instruct-2507',
  connector: 'SharedStorageConnector',
  simulate: true,
  engines: [
    { name: 'producer-0', role: 'producer', gpus: [0], port: 1, url: 'http://127.0.0.1:1', status: 'healthy' },
    { name: 'consumer-0', role: 'consumer', gpus: [1], port: 2, url: 'http://127.0.0.1:2', status: 'failed', restarts: 3, downReason: 'it crashed 4 times within 600 s' },
  ],
});

test('pd status of a degraded stack exits 3 and names each engine that is down, and why', async () => {
  const s = await makeStackDir();
  const stateDir = join(s.dir, 'state');
  const sup = fakeSupervisor(stateDir);
  try {
    await writeState(s, degradedState(sup.pid!));
    const human = await s.pd(['status']);
    assert.equal(human.code, 3, human.stderr);
    assert.match(human.stdout, /^stack degraded for 1m\d+s/);
    assert.match(human.stdout, /✖ consumer-0 is down for good: it crashed 4 times within 600 s/);
    assert.match(human.stdout, /✖ producer-0 is not healthy \(exited\): not running/);
    assert.match(human.stdout, /pd logs consumer-0/);
    assert.match(human.stdout, /consumer-0\s+consumer\s+1\s+2\s+-\s+-\s+failed\s+3/);
    const json = await s.pd(['status', '--json']);
    assert.equal(json.code, 3);
    const st = JSON.parse(json.stdout);
    assert.equal(st.degraded, true);
    assert.deepEqual(st.problems, ['producer-0 is not healthy (exited): not running', 'consumer-0 is down for good: it crashed 4 times within 600 s']);
  } finally {
    sup.kill('SIGKILL');
    await s.cleanup();
  }
});

// A real engine left down for good (pd status exits 3 and says which and why) is checked on the main stack of
// test/stack/up-down.test.ts.

test('pd status reads a live state file with missing and mistyped fields (the schema fills them in)', async () => {
  const s = await makeStackDir();
  const stateDir = join(s.dir, 'state');
  const sup = fakeSupervisor(stateDir);
  try {
    await writeState(s, { supervisorPid: sup.pid, phase: 'ready', engines: [{ name: 'producer-0', gpus: 'zero', restarts: '2' }, {}], proxy: { url: 5 } });
    const human = await s.pd(['status']);
    assert.doesNotMatch(human.stderr, /\n\s+at |unexpected/);
    assert.match(human.stdout, new RegExp(`^stack degraded for - · supervisor pid ${sup.pid} · no connector · \\?\n`));
    assert.match(human.stdout, /producer-0\s+engine\s+-\s+-\s+-\s+-\s+exited\s+0\s+0/);
    assert.match(human.stdout, /\nproxy\s+· unhealthy · in-flight 0/);
    // Its engines are not running while the stack says it serves: degraded, and said so.
    assert.equal(human.code, 3, human.stderr);
    const st = JSON.parse((await s.pd(['status', '--json'])).stdout);
    assert.equal(st.running, true);
    assert.equal(st.engines.length, 2);
    assert.deepEqual(st.engines[1], { ...st.engines[1], name: '?', role: 'engine', gpus: [], pid: null, restarts: 0, downReason: null });
  } finally {
    sup.kill('SIGKILL');
    await s.cleanup();
  }
});

test('pd status on a corrupt state file: a clear error, a hint at pd down, exit 1, no stack trace', async () => {
  const s = await makeStackDir();
  try {
    await mkdir(join(s.dir, 'state'), { recursive: true });
    for (const text of ['{ not json', '[1, 2]']) {
      await writeFile(join(s.dir, 'state', 'state.json'), text);
      const r = await s.pd(['status']);
      assert.equal(r.code, 1, `${JSON.stringify(text)}: ${r.stderr}`);
      assert.match(r.stderr, /^error: .*state\.json is corrupt\n/);
      assert.match(r.stderr, /hint: .*`pd down`/);
      assert.doesNotMatch(r.stderr, /\n\s+at /);
      assert.equal(r.stdout, '');
    }
  } finally {
    await s.cleanup();
  }
});

test('pd status --watch prints a timestamped block every interval off a terminal and exits 0 on Ctrl+C', async () => {
  const s = await makeStackDir();
  const stateDir = join(s.dir, 'state');
  const sup = fakeSupervisor(stateDir);
  try {
    await writeState(s, degradedState(sup.pid!));
    const child = s.spawnPd(['status', '--watch', '--interval', '0.1']);
    const blocks = (): number => (child.stdoutText().match(/^--- pd status · \d{4}-\d\d-\d\d \d\d:\d\d:\d\d ---$/gm) ?? []).length;
    await waitFor('three blocks', () => blocks() >= 3, 15_000);
    // The state changes under the watch: the next block shows it.
    await writeFile(join(stateDir, 'state.json'), '{ corrupt');
    await waitFor('the corrupt state shown', () => /is corrupt/.test(child.stdoutText()), 15_000);
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    child.kill('SIGINT');
    assert.equal(await exited, 0, child.stderrText());
    assert.match(child.stdoutText(), /✖ consumer-0 is down for good/);
    assert.doesNotMatch(child.stdoutText(), /\x1b\[/, 'no cursor movement off a terminal');
  } finally {
    sup.kill('SIGKILL');
    await s.cleanup();
  }
});

test('pd status --interval refuses a bad value with exit 2', async () => {
  const r = await runPd(['status', '--watch', '--interval', '0'], { timeoutMs: 20_000 });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--interval must be a number >= 0\.1/);
});

test('a watched terminal is redrawn in place: home, every line cleared to its end, the rest cleared below', async () => {
  const writes: string[] = [];
  const target: WatchTarget = { isTTY: true, columns: 20, rows: 6, write: (t) => void writes.push(t) };
  const ac = new AbortController();
  let n = 0;
  await watchStatus(
    () => {
      if (++n === 3) ac.abort();
      return n === 2 ? Promise.reject(new Error('boom')) : Promise.resolve(`frame ${n}\n${'x'.repeat(30)}\n`);
    },
    { intervalMs: 1, target, signal: ac.signal, describeError: (e) => `error: ${(e as Error).message}\n` },
  );
  assert.equal(writes.length, 3, 'two frames, then the cursor is shown again');
  assert.ok(writes[0]!.startsWith('\x1b[?25l\x1b[2J\x1b[H'), 'the first frame clears the screen once');
  assert.ok(writes[1]!.startsWith('\x1b[H') && !writes[1]!.includes('\x1b[2J'), 'later frames overwrite in place');
  assert.match(writes[0]!, /frame 1\x1b\[K\n/);
  assert.match(writes[1]!, /error: boom\x1b\[K\n/);
  assert.ok(writes[0]!.endsWith('\x1b[J'));
  assert.match(writes[0]!, /\nxxxxxxxxxxxxxxxxxxx…\x1b\[0m\x1b\[K\n/, 'long lines are cut to the width');
  assert.equal(writes[2], '\x1b[?25h');
});

test('frames fit the terminal: rows cut with an ellipsis, colours kept when a line is cut', () => {
  const frame = terminalFrame(Array.from({ length: 10 }, (_, i) => `line ${i}`).join('\n'), { isTTY: true, rows: 5, columns: 80, write: () => undefined }, false);
  assert.deepEqual(
    frame.split('\n').map((l) => l.replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')),
    ['line 0', 'line 1', 'line 2', '…', ''],
  );
  assert.equal(fit('\x1b[32mhealthy\x1b[39m and more', 5), '\x1b[32mheal…\x1b[0m');
  assert.equal(fit('short', 5), 'short');
  // A terminal that does not say its size gets the frame uncut.
  assert.match(terminalFrame('y'.repeat(300), { isTTY: true, columns: 0, rows: 0, write: () => undefined }, false), /y{300}/);
});

test('degradation: down for good, unhealthy while serving, restarting, the supervisor gone; nothing while starting', () => {
  const e = (over: Partial<EngineStatus>): EngineStatus => ({
    name: 'consumer-0', role: 'consumer', gpus: [1], port: 2, pid: 5, uptimeSeconds: 1, status: 'healthy', healthy: true,
    healthDetail: 'healthy, model listed', restarts: 0, downReason: null, cacheHits: 0, logFile: '', ...over,
  });
  assert.deepEqual(degradation('ready', true, 1, [e({})]), []);
  assert.deepEqual(degradation('starting', true, 1, [e({ healthy: false, status: 'starting', healthDetail: 'not listening yet' })]), []);
  assert.deepEqual(degradation('ready', true, 1, [e({ healthy: false, status: 'restarting', restarts: 2, healthDetail: 'not listening yet' })]), [
    'consumer-0 is restarting (2 restarts so far): not listening yet',
  ]);
  assert.deepEqual(degradation('degraded', true, 1, [e({ healthy: false, status: 'failed', downReason: 'supervisor.restart is "never"' })]), [
    'consumer-0 is down for good: supervisor.restart is "never"',
  ]);
  assert.deepEqual(degradation('ready', false, 42, [e({})]), ['the supervisor (pid 42) is gone: engines run unsupervised and the proxy is down']);
  const st: StackStatus = { running: true, stale: false, phase: 'ready', degraded: false, problems: [], supervisorAlive: true, engines: [e({})] };
  assert.doesNotMatch(renderStatus(st, '/s', plain), /✖/);
});
