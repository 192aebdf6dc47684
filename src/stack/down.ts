/**
 * `pd down`: stop a running stack from any terminal. Asks the supervisor to stop (SIGTERM) and waits; then sweeps
 * every engine generation recorded in the state file (covers a supervisor killed with SIGKILL), SIGTERM then SIGKILL
 * after the grace period; finally any process still carrying the stack's PD_STACK_ID (covers a damaged or missing
 * state file). Nothing is signalled unless it is provably the stack's own (identity.ts). Idempotent.
 */
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { findStackProcesses, ownership, stackIdOf } from './identity.js';
import { engineIdentities, readStackState, removeStackState, supervisorIdentity, LOCK_FILE, type StackState } from './state.js';
import { stopGroup } from './process-group.js';
import { pollUntil } from '../util/timers.js';
import { isPdError } from '../util/errors.js';

export interface DownReport {
  running: boolean;
  supervisor: { pid: number; how: 'not running' | 'stopped' | 'killed' | 'not ours' } | null;
  engines: Array<{ name: string; pgids: number[]; how: string }>;
  /** Processes found by their PD_STACK_ID that the state file did not name (or when it could not be read). */
  strays: Array<{ pid: number; how: string }>;
  /** Set when the state file could not be read and pd stopped the stack by its identity marker instead. */
  stateProblem: string | null;
  durationMs: number;
}

async function stopSupervisor(state: StackState, graceMs: number): Promise<DownReport['supervisor']> {
  const id = supervisorIdentity(state);
  if (id === null) return null;
  const owner = ownership(id, state.stackId);
  if (owner === 'gone') return { pid: id.pid, how: 'not running' };
  if (owner === 'foreign') return { pid: id.pid, how: 'not ours' };
  process.kill(id.pid, 'SIGTERM');
  // The supervisor stops its engines with the same grace period; allow for it plus slack.
  const gone = await pollUntil(() => (ownership(id, state.stackId) === 'gone' ? true : undefined), {
    intervalMs: 25,
    timeoutMs: graceMs + 10_000,
  });
  if (gone) return { pid: id.pid, how: 'stopped' };
  if (ownership(id, state.stackId) === 'ours') process.kill(id.pid, 'SIGKILL');
  return { pid: id.pid, how: 'killed' };
}

async function sweepStrays(stackId: string, graceMs: number): Promise<DownReport['strays']> {
  const found = findStackProcesses(stackId);
  const groups = new Map<number, number[]>();
  for (const p of found) groups.set(p.pgrp, [...(groups.get(p.pgrp) ?? []), p.pid]);
  const out: DownReport['strays'] = [];
  await Promise.all(
    [...groups].map(async ([pgrp, pids]) => {
      const r = await stopGroup({ pid: pgrp, startTime: null }, graceMs, stackId);
      for (const pid of pids) out.push({ pid, how: r.how });
    }),
  );
  return out;
}

export async function stopStack(stateDir: string, graceMs: number): Promise<DownReport> {
  const t0 = Date.now();
  const stackId = stackIdOf(stateDir);
  let state: StackState | null = null;
  let stateProblem: string | null = null;
  try {
    state = await readStackState(stateDir);
  } catch (e) {
    stateProblem = isPdError(e) ? e.message : String(e);
  }
  let supervisor: DownReport['supervisor'] = null;
  let engines: DownReport['engines'] = [];
  if (state) {
    supervisor = await stopSupervisor(state, graceMs);
    const id = state.stackId;
    engines = await Promise.all(
      state.engines.map(async (e) => {
        const gens = engineIdentities(e);
        const results = await Promise.all(gens.map((g) => stopGroup(g, graceMs, id)));
        const acted = results.filter((r) => r.how !== 'gone');
        return { name: e.name, pgids: gens.map((g) => g.pid), how: acted.length === 0 ? 'already stopped' : acted.map((r) => r.how).join(', ') };
      }),
    );
  }
  const strays = await sweepStrays(stackId, graceMs);
  await removeStackState(stateDir).catch(() => undefined);
  await rm(join(stateDir, LOCK_FILE), { force: true }).catch(() => undefined);
  return {
    running: state !== null || strays.length > 0,
    supervisor,
    engines,
    strays,
    stateProblem,
    durationMs: Date.now() - t0,
  };
}
