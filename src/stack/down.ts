/**
 * `pd down`: stop a running stack from any terminal. Asks the supervisor to stop (SIGTERM) and waits; then sweeps
 * every engine process group recorded in the state file (covers a supervisor killed with SIGKILL), SIGTERM then
 * SIGKILL after the grace period, until nothing is left; removes the state file. Idempotent.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { isAlive, isGroupAlive, readStackState, removeStackState, LOCK_FILE } from './state.js';
import { stopGroup, sleep } from './process-group.js';

export interface DownReport {
  running: boolean;
  supervisor: { pid: number; how: 'not running' | 'stopped' | 'killed' } | null;
  engines: Array<{ name: string; pgids: number[]; how: string }>;
  durationMs: number;
}

export async function stopStack(stateDir: string, graceMs: number): Promise<DownReport> {
  const t0 = Date.now();
  const state = await readStackState(stateDir);
  if (!state) {
    await rm(join(stateDir, LOCK_FILE), { force: true }).catch(() => undefined);
    return { running: false, supervisor: null, engines: [], durationMs: Date.now() - t0 };
  }
  let supervisor: DownReport['supervisor'] = { pid: state.supervisorPid, how: 'not running' };
  if (isAlive(state.supervisorPid)) {
    process.kill(state.supervisorPid, 'SIGTERM');
    // The supervisor stops its engines with the same grace period; allow for it plus slack.
    const deadline = Date.now() + graceMs + 10_000;
    while (isAlive(state.supervisorPid) && Date.now() < deadline) await sleep(50);
    if (isAlive(state.supervisorPid)) {
      process.kill(state.supervisorPid, 'SIGKILL');
      supervisor = { pid: state.supervisorPid, how: 'killed' };
    } else {
      supervisor = { pid: state.supervisorPid, how: 'stopped' };
    }
  }
  const engines = await Promise.all(
    state.engines.map(async (e) => {
      const pgids = [...new Set([...(e.pgid ? [e.pgid] : []), ...e.pastPgids])];
      const live = pgids.filter(isGroupAlive);
      const results = await Promise.all(live.map((g) => stopGroup(g, graceMs)));
      const how = results.length === 0 ? 'already stopped' : results.map((r) => r.how).join(', ');
      return { name: e.name, pgids, how };
    }),
  );
  await removeStackState(stateDir);
  await rm(join(stateDir, LOCK_FILE), { force: true }).catch(() => undefined);
  return { running: true, supervisor, engines, durationMs: Date.now() - t0 };
}
