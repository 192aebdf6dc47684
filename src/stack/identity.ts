/**
 * Proof that a process is one pd started, before pd signals it. A state file names PIDs, and PIDs are reused
 * (after a reboot, or simply later), so a PID alone proves nothing. Every process pd starts carries
 * PD_STACK_ID=<id of its state dir> in its environment (inherited by vLLM's workers too), and pd records each
 * process's start time (/proc/<pid>/stat, field 22). A process is ours when its environment carries our id, or,
 * where its environment cannot be read, when its start time is the one recorded. Anything else is left alone.
 */
import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';

export const STACK_ID_ENV = 'PD_STACK_ID';

export interface ProcessIdentity {
  pid: number;
  /** Clock ticks since boot when the process started (/proc/<pid>/stat field 22); null where /proc is missing. */
  startTime: string | null;
}

/** The id every process of the stack that runs from `stateDir` carries in its environment. */
export function stackIdOf(stateDir: string): string {
  return createHash('sha256').update(resolve(stateDir)).digest('hex').slice(0, 20);
}

interface Stat {
  pgrp: number;
  startTime: string;
  state: string;
}

/** Fields of /proc/<pid>/stat (the command name may hold spaces and parentheses: parse after the last ')'). */
function readStat(pid: number): Stat | null {
  let text: string;
  try {
    text = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return null;
  }
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  // rest[0] is field 3 (state); field N is rest[N - 3].
  return { state: rest[0] ?? '', pgrp: Number(rest[2]), startTime: rest[19] ?? '' };
}

export function hasProc(): boolean {
  try {
    readFileSync('/proc/self/stat');
    return true;
  } catch {
    return false;
  }
}

/** True while `pid` has exited but its parent has not reaped it yet (it still holds its PID and group). */
export function isZombie(pid: number): boolean {
  return readStat(pid)?.state === 'Z';
}

/** This process's identity as recorded in the state file. */
export function identityOf(pid: number): ProcessIdentity {
  return { pid, startTime: readStat(pid)?.startTime ?? null };
}

/** The environment of a process: null when it cannot be read (another user's process, or no /proc). */
function readEnviron(pid: number): string[] | null {
  try {
    return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
  } catch {
    return null;
  }
}

export type Ownership = 'ours' | 'gone' | 'foreign';

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Is the recorded process still running, and is it still the one pd started? */
export function ownership(recorded: ProcessIdentity | null | undefined, stackId: string): Ownership {
  if (!recorded || !Number.isInteger(recorded.pid) || recorded.pid <= 1) return 'gone';
  const stat = readStat(recorded.pid);
  if (stat === null) {
    if (hasProc() || !alive(recorded.pid)) return 'gone';
    // No /proc (not Linux): a live PID cannot be proven to be ours.
    return 'foreign';
  }
  if (stat.state === 'Z') return 'gone';
  // The same PID started at the same tick is the same process (the foreground `pd up` has no marker of its own).
  if (recorded.startTime !== null && stat.startTime === recorded.startTime) return 'ours';
  const env = readEnviron(recorded.pid);
  return env !== null && env.includes(`${STACK_ID_ENV}=${stackId}`) ? 'ours' : 'foreign';
}

/** Every live process (not a zombie) whose environment carries this stack's id, except `exclude`. */
export function findStackProcesses(stackId: string, exclude: readonly number[] = [process.pid]): Array<{ pid: number; pgrp: number }> {
  let names: string[];
  try {
    names = readdirSync('/proc');
  } catch {
    return [];
  }
  const marker = `${STACK_ID_ENV}=${stackId}`;
  const found: Array<{ pid: number; pgrp: number }> = [];
  for (const name of names) {
    const pid = Number(name);
    if (!Number.isInteger(pid) || pid <= 1 || exclude.includes(pid)) continue;
    const env = readEnviron(pid);
    if (env === null || !env.includes(marker)) continue;
    const stat = readStat(pid);
    if (stat === null || stat.state === 'Z') continue;
    found.push({ pid, pgrp: stat.pgrp });
  }
  return found;
}

/** Members of process group `pgid` that carry this stack's id (the others are not signalled). */
export function groupMembers(pgid: number, stackId: string): number[] {
  return findStackProcesses(stackId).filter((p) => p.pgrp === pgid).map((p) => p.pid);
}
