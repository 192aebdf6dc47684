/**
 * Supervision pd can be trusted with: it signals only its own processes, survives damaged state and a dead
 * supervisor, never erases a live stack's state, stops cleanly when interrupted during start-up and keeps a
 * foreground stack running through an engine crash. (Private files and a stack left degraded are checked on the
 * stacks of up-down.test.ts; one `vllm --version` per `pd up` in startup-failures.test.ts.)
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeStackDir, alive, groupAlive, waitFor } from '../helpers/stack.js';

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

test('a supervisor killed with SIGKILL: its engines outlive it and pd status/doctor say so; a new pd up is refused without erasing the state; a damaged state file still lets pd down stop everything by PD_STACK_ID; then Ctrl+C during a foreground start-up exits 130 through pd\'s own stop', async () => {
  const s = await makeStackDir();
  try {
    assert.equal((await s.pd(['up', '-d', '--simulate'])).code, 0);
    const state = await s.state();
    const pids = pidsOf(state);
    const pgids = state.engines.map((e: any) => e.pgid);
    assert.ok(pids.every(alive));
    // The supervisor dies hard: its lock stays behind with a dead pid, its engines keep running.
    process.kill(state.supervisorPid, 'SIGKILL');
    await waitFor('supervisor gone', () => !alive(state.supervisorPid));
    assert.ok(state.engines.every((e: any) => alive(e.pid)), 'engines outlive the supervisor');
    const status = JSON.parse((await s.pd(['status', '--json'])).stdout);
    assert.equal(status.running, true);
    assert.equal(status.supervisorAlive, false);
    const human = await s.pd(['status']);
    assert.match(human.stdout, /the supervisor \(pid \d+\) is gone/);
    assert.match(human.stdout, /Run `pd down`/);
    const doctor = await s.pd(['doctor', '--simulate', '--no-storage-speed']);
    assert.match(doctor.stdout, /engines of a stack whose supervisor died are still running/);

    // A failed pd up never erases the state of a stack whose engines still run.
    const again = await s.pd(['up', '-d', '--simulate', '--skip-preflight']);
    assert.equal(again.code, 1, again.stderr);
    assert.match(again.stderr, /still running/);
    const kept = JSON.parse(await readFile(join(s.dir, 'state', 'state.json'), 'utf8'));
    assert.deepEqual(
      kept.engines.map((e: any) => e.pid),
      state.engines.map((e: any) => e.pid),
      'the state file still names the live engines',
    );

    // A damaged state file (a live supervisor would rewrite it every second; this one is dead): pd down finds the
    // stack by its PD_STACK_ID.
    await writeFile(join(s.dir, 'state', 'state.json'), '{ this is not json');
    const corrupt = await s.pd(['status']);
    assert.equal(corrupt.code, 1);
    assert.match(corrupt.stderr, /is corrupt/);
    assert.match(corrupt.stderr, /hint: .*pd down/);
    const down = await s.pd(['down', '--grace', '2']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout + down.stderr, /corrupt/);
    assert.match(down.stdout, /PD_STACK_ID/);
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} still alive`);
    for (const g of pgids) assert.equal(groupAlive(g), false, `group ${g} still alive`);
    assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false);

    // The state dir is usable again: a foreground pd up takes the lock and spawns its engines; Ctrl+C while they
    // start exits 130 through pd's own stop, leaving no lock, state or process.
    const child = s.spawnPd(['up', '--simulate'], { PD_SIM_STARTUP_DELAY: '30' });
    const exited = new Promise<number | null>((r) => child.on('exit', (code) => r(code)));
    const starting = await waitFor('engines spawned', async () => {
      const st = await s.state().catch(() => null);
      return st && st.engines.every((e: any) => e.pid) ? st : undefined;
    });
    child.kill('SIGINT');
    assert.equal(await exited, 130, child.stderrText());
    for (const pid of starting.engines.map((e: any) => e.pid)) assert.equal(alive(pid), false, `engine ${pid} still alive`);
    assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false, 'state file left behind');
    assert.equal(existsSync(join(s.dir, 'state', 'pd.lock')), false, 'lock left behind');
    assert.doesNotMatch(child.stderrText(), /MaxListenersExceededWarning/);
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
    assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false, 'state file left behind');
  } finally {
    await s.cleanup();
  }
});
