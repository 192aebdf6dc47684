/**
 * Stopping an engine: every engine is spawned as a process-group leader, so one signal to -pgid reaches the engine
 * and every worker it forked (vLLM's EngineCore, TP workers), as concurrently/tree-kill do it. A group is signalled
 * only while its leader is provably ours (identity.ts); workers of a dead leader are signalled one by one, and only
 * those that carry this stack's id.
 */
import { groupMembers, hasProc, ownership, type ProcessIdentity } from './identity.js';
import { sleep } from '../util/timers.js';

export interface StopResult {
  pgid: number;
  /** How it ended: already gone, left on SIGTERM, needed SIGKILL, survived, or not ours (never signalled). */
  how: 'gone' | 'sigterm' | 'sigkill' | 'survived' | 'not ours';
}

function signal(target: number, sig: NodeJS.Signals): void {
  try {
    process.kill(target, sig);
  } catch {
    // gone already
  }
}

/** The processes to signal for a group: -pgid while the leader is ours, else our members one by one. */
function targets(leader: ProcessIdentity, stackId: string): number[] | 'not ours' {
  const owner = ownership(leader, stackId);
  if (owner === 'ours') return [-leader.pid];
  // The leader is gone (or its PID now belongs to someone else): workers it left keep its group id.
  const members = hasProc() ? groupMembers(leader.pid, stackId) : [];
  return members.length === 0 && owner === 'foreign' ? 'not ours' : members;
}

function anyLeft(leader: ProcessIdentity, stackId: string): boolean {
  const t = targets(leader, stackId);
  return t !== 'not ours' && t.length > 0;
}

async function waitGone(leader: ProcessIdentity, stackId: string, timeoutMs: number): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (anyLeft(leader, stackId)) {
    if (Date.now() >= deadline) return false;
    await sleep(25);
  }
  // An exited leader that its parent has not reaped yet (a zombie) holds nothing but its PID: it counts as gone.
  return true;
}

/** SIGTERM the group, SIGKILL after the grace period, and wait until every process of it is gone. */
export async function stopGroup(leader: ProcessIdentity, graceMs: number, stackId: string): Promise<StopResult> {
  const first = targets(leader, stackId);
  if (first === 'not ours') return { pgid: leader.pid, how: 'not ours' };
  if (first.length === 0) return { pgid: leader.pid, how: 'gone' };
  for (const t of first) signal(t, 'SIGTERM');
  if (await waitGone(leader, stackId, graceMs)) return { pgid: leader.pid, how: 'sigterm' };
  const left = targets(leader, stackId);
  if (left !== 'not ours') for (const t of left) signal(t, 'SIGKILL');
  if (await waitGone(leader, stackId, 5_000)) return { pgid: leader.pid, how: 'sigkill' };
  return { pgid: leader.pid, how: 'survived' };
}

/** Last-resort synchronous kill of a group this process started (process 'exit' handlers cannot await). */
export function killGroupNow(pgid: number | null | undefined): void {
  if (pgid && pgid > 1) signal(-pgid, 'SIGKILL');
}
