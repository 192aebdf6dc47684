/**
 * Process-group control, as concurrently/tree-kill do it: every engine is spawned as a group leader (detached),
 * so one signal to -pgid reaches the engine and every worker it forked (vLLM's EngineCore, TP workers).
 */
import { isGroupAlive } from './state.js';

export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  try {
    process.kill(-pgid, signal);
    return true;
  } catch {
    return false;
  }
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Wait until no process of the group is left (or the deadline passes). True when the group is gone. */
export async function waitGroupGone(pgid: number, timeoutMs: number, pollMs = 50): Promise<boolean> {
  const deadline = Date.now() + timeoutMs;
  while (isGroupAlive(pgid)) {
    if (Date.now() >= deadline) return false;
    await sleep(pollMs);
  }
  return true;
}

export interface StopResult {
  pgid: number;
  /** How it ended: it was already gone, left on SIGTERM, or needed SIGKILL. */
  how: 'gone' | 'sigterm' | 'sigkill' | 'survived';
}

/** SIGTERM the whole group, SIGKILL after the grace period, and wait until every process is gone. */
export async function stopGroup(pgid: number, graceMs: number): Promise<StopResult> {
  if (!isGroupAlive(pgid)) return { pgid, how: 'gone' };
  signalGroup(pgid, 'SIGTERM');
  if (await waitGroupGone(pgid, graceMs)) return { pgid, how: 'sigterm' };
  signalGroup(pgid, 'SIGKILL');
  if (await waitGroupGone(pgid, 5_000)) return { pgid, how: 'sigkill' };
  return { pgid, how: 'survived' };
}

/** Last-resort synchronous kill (process 'exit' handlers cannot await). */
export function killGroupNow(pgid: number | null | undefined): void {
  if (pgid && pgid > 1) signalGroup(pgid, 'SIGKILL');
}
