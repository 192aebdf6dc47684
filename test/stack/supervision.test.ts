/**
 * Supervision pd can be trusted with: it signals only its own processes, survives damaged state, never erases a
 * live stack's state, stops cleanly when interrupted during start-up, keeps its files private and asks
 * `vllm --version` once per `pd up`.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync, statSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeStackDir, alive, groupAlive, waitFor } from '../helpers/stack.js';
import { simEntryPath } from '../../src/sim/entry.js';

const SIM_MAIN = simEntryPath();

function pidsOf(state: any): number[] {
  return [state.supervisorPid, ...state.engines.flatMap((e: any) => e.generations.map((g: any) => g.pid))];
}

test('pd down and pd status leave a process pd did not start alone, even when a state file names it', async () => {
  const s = await makeStackDir();
  // A process of someone else's: not started by pd, no PD_STACK_ID, a different start time than recorded.
  const stranger = spawn('sleep', ['60'], { stdio: 'ignore', detached: true });
  try {
    const pid = stranger.pid!;
    await mkdir(join(s.dir, 'state'), { recursive: true });
    await writeFile(
      join(s.dir, 'state', 'state.json'),
      JSON.stringify({
        version: 2,
        supervisorPid: pid,
        supervisorStartTime: '1',
        phase: 'ready',
        engines: [{ name: 'producer-0', pid, pgid: pid, startTime: '1', generations: [{ pid, startTime: '1' }] }],
      }),
    );
    const status = await s.pd(['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const st = JSON.parse(status.stdout);
    assert.equal(st.running, false, 'a foreign pid is not a running supervisor');
    const down = await s.pd(['down', '--grace', '1']);
    assert.equal(down.code, 0, down.stderr);
    assert.equal(alive(pid), true, 'pd down signalled a process it did not start');
    assert.match(down.stdout, /not ours|nothing to stop|already stopped/);
  } finally {
    stranger.kill('SIGKILL');
    await s.cleanup();
  }
});

test('pd status reads a state file with missing fields without crashing', async () => {
  const s = await makeStackDir();
  try {
    await mkdir(join(s.dir, 'state'), { recursive: true });
    await writeFile(join(s.dir, 'state', 'state.json'), JSON.stringify({ engines: [{ name: 'producer-0' }, {}] }));
    const status = await s.pd(['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    assert.equal(JSON.parse(status.stdout).running, false);
    const human = await s.pd(['status']);
    assert.equal(human.code, 0, human.stderr);
    assert.doesNotMatch(human.stderr, /\n\s+at /);
  } finally {
    await s.cleanup();
  }
});

test('a damaged state file: pd down still finds and stops the stack by its PD_STACK_ID', async () => {
  const s = await makeStackDir();
  try {
    assert.equal((await s.pd(['up', '-d', '--simulate'])).code, 0);
    const state = await s.state();
    const pids = pidsOf(state);
    assert.ok(pids.every(alive));
    // A live supervisor rewrites its state every second; with it killed, nothing repairs the damage.
    process.kill(state.supervisorPid, 'SIGKILL');
    await waitFor('supervisor gone', () => !alive(state.supervisorPid));
    await writeFile(join(s.dir, 'state', 'state.json'), '{ this is not json');
    const status = await s.pd(['status']);
    assert.equal(status.code, 1);
    assert.match(status.stderr, /is corrupt/);
    assert.match(status.stderr, /hint: .*pd down/);
    const down = await s.pd(['down', '--grace', '2']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout + down.stderr, /corrupt/);
    assert.match(down.stdout, /PD_STACK_ID/);
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} still alive`);
    assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false);
  } finally {
    await s.cleanup();
  }
});

test('a failed pd up never erases the state of a stack whose engines still run', async () => {
  const s = await makeStackDir();
  try {
    assert.equal((await s.pd(['up', '-d', '--simulate'])).code, 0);
    const state = await s.state();
    // The supervisor dies hard: its lock stays behind with a dead pid, its engines keep running.
    process.kill(state.supervisorPid, 'SIGKILL');
    await waitFor('supervisor gone', () => !alive(state.supervisorPid));
    const again = await s.pd(['up', '-d', '--simulate', '--skip-preflight']);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /still running/);
    const kept = JSON.parse(await readFile(join(s.dir, 'state', 'state.json'), 'utf8'));
    assert.deepEqual(
      kept.engines.map((e: any) => e.pid),
      state.engines.map((e: any) => e.pid),
      'the state file still names the live engines',
    );
    const down = await s.pd(['down', '--grace', '2']);
    assert.equal(down.code, 0, down.stderr);
    for (const e of state.engines) assert.equal(groupAlive(e.pgid), false);
  } finally {
    await s.cleanup();
  }
});

test('Ctrl+C during foreground start-up exits 130 through pd\'s own stop: no lock, state or process left', async () => {
  const s = await makeStackDir();
  try {
    const child = s.spawnPd(['up', '--simulate'], { PD_SIM_STARTUP_DELAY: '30' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const state = await waitFor('engines spawned', async () => {
      const st = await s.state().catch(() => null);
      return st && st.engines.every((e: any) => e.pid) ? st : undefined;
    });
    child.kill('SIGINT');
    assert.equal(await exited, 130, child.stderrText());
    for (const pid of state.engines.map((e: any) => e.pid)) assert.equal(alive(pid), false, `engine ${pid} still alive`);
    assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false, 'state file left behind');
    assert.equal(existsSync(join(s.dir, 'state', 'pd.lock')), false, 'lock left behind');
    assert.doesNotMatch(child.stderrText(), /MaxListenersExceededWarning/);
  } finally {
    await s.cleanup();
  }
});

test('the state dir, state file, lock and logs are owner-only', async () => {
  const s = await makeStackDir();
  try {
    assert.equal((await s.pd(['up', '-d', '--simulate'])).code, 0);
    const mode = (p: string): number => statSync(join(s.dir, 'state', p)).mode & 0o777;
    assert.equal(mode('.'), 0o700);
    assert.equal(mode('state.json'), 0o600);
    assert.equal(mode('pd.lock'), 0o600);
    assert.equal(mode('logs'), 0o700);
    for (const log of ['producer-0.log', 'consumer-0.log', 'proxy.log', 'supervisor.log']) assert.equal(mode(join('logs', log)), 0o600, log);
  } finally {
    await s.cleanup();
  }
});

test('one `vllm --version` per pd up -d, however many engines and checks need it', async () => {
  const s = await makeStackDir();
  try {
    const counter = join(s.dir, 'version-calls');
    const wrapper = join(s.dir, 'vllm');
    await writeFile(
      wrapper,
      `#!/bin/sh\nif [ "$1" = "--version" ]; then echo call >> '${counter}'; fi\nexec '${process.execPath}' '${SIM_MAIN}' "$@"\n`,
      { mode: 0o755 },
    );
    const cfg = { ...s.config, model: 'Qwen/Qwen3-0.6B', engine: { command: wrapper }, kv: { ...(s.config.kv as object), connector: 'auto' } };
    await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
    const up = await s.pd(['up', '-d']);
    assert.equal(up.code, 0, up.stderr);
    const calls = (await readFile(counter, 'utf8')).trim().split('\n').length;
    assert.equal(calls, 1, 'vllm --version calls');
  } finally {
    await s.cleanup();
  }
});

test('an engine left down for good makes the stack degraded, and says which and why', async () => {
  const s = await makeStackDir({ supervisor: { maxRestarts: 0, backoffMs: 100, stopGraceSeconds: 5 } });
  try {
    assert.equal((await s.pd(['up', '-d', '--simulate'])).code, 0);
    const consumer = (await s.state()).engines.find((e: any) => e.name === 'consumer-0');
    process.kill(-consumer.pgid, 'SIGKILL');
    await waitFor('degraded', async () => (await s.state()).phase === 'degraded');
    const st = JSON.parse((await s.pd(['status', '--json'])).stdout);
    assert.equal(st.degraded, true);
    assert.equal(st.phase, 'degraded');
    const c = st.engines.find((e: any) => e.name === 'consumer-0');
    assert.equal(c.status, 'failed');
    assert.match(c.downReason, /crashed 1 time within 600 s/);
  } finally {
    await s.cleanup();
  }
});

test('foreground pd up in a real terminal survives an engine crash: restarted once, view intact, clean stop', async (t) => {
  if (!existsSync('/usr/bin/script')) {
    t.diagnostic('util-linux `script` is missing: the pseudo-terminal check did not run');
    console.error('PSEUDO-TERMINAL CHECK NOT RUN: /usr/bin/script (util-linux) is missing');
    return;
  }
  const s = await makeStackDir();
  try {
    const { PD_BIN } = await import('../helpers/cli.js');
    // `script` gives pd a pseudo-terminal: the interactive start-up view and colours are on, as for a person.
    const child = spawn('/usr/bin/script', ['-qfec', `'${process.execPath}' '${PD_BIN}' up --simulate`, '/dev/null'], {
      cwd: s.dir,
      env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', TERM: 'xterm-256color', PD_SIM_ZERO_LATENCY: '1', PD_SIM_STARTUP_DELAY: '0.1' },
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (out += d));
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    await waitFor('ready', () => /stack ready/.test(out));
    const state = await s.state();
    const consumer = state.engines.find((e: any) => e.name === 'consumer-0');
    process.kill(-consumer.pgid, 'SIGKILL');
    await waitFor('restarted', () => /consumer-0 is healthy again and back in rotation/.test(out));
    const after = await s.state();
    assert.equal(after.engines.find((e: any) => e.name === 'consumer-0').restarts, 1, 'one crash, one restart');
    assert.doesNotMatch(out, /Cannot read properties|down for good|TypeError/);
    process.kill(state.supervisorPid, 'SIGINT');
    assert.equal(await exited, 0, out);
    assert.match(out, /stack stopped; nothing left running/);
    for (const pid of pidsOf(after)) assert.equal(alive(pid), false, `pid ${pid} still alive`);
  } finally {
    await s.cleanup();
  }
});
