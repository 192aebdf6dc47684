/**
 * The running stack's state file (<stateDir>/state.json) and the lock that keeps two `pd up`s apart.
 * The supervisor rewrites the state file (atomically) as things change, so `pd status`, `pd down`, `pd logs`,
 * `pd clear-cache` and `pd bench` in other terminals see the live stack.
 */
import { mkdir, readFile, rename, rm, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import { RuntimeError } from '../util/errors.js';

export interface EngineState {
  name: string;
  role: 'producer' | 'consumer';
  gpus: number[];
  port: number;
  url: string;
  pid: number | null;
  /** Process group id (the engine is a group leader, so pgid === pid). */
  pgid: number | null;
  logFile: string;
  argv: string[];
  status: 'starting' | 'healthy' | 'unhealthy' | 'restarting' | 'exited' | 'failed';
  restarts: number;
  startedAt: string | null;
  cacheHits: number;
  cacheInjectedTokens: number;
  errors: number;
  /** pids of every engine generation started (a restarted engine has several), for `pd down` to sweep. */
  pastPgids: number[];
}

export interface StackState {
  version: 1;
  supervisorPid: number;
  startedAt: string;
  updatedAt: string;
  configPath: string | null;
  configHash: string;
  simulate: boolean;
  connector: string;
  model: string;
  sharedStoragePath: string | null;
  logDir: string;
  phase: 'starting' | 'ready' | 'stopping' | 'failed';
  proxy: {
    url: string;
    host: string;
    port: number;
    logFile: string;
    inFlight: number;
    queued: number;
    requestsTotal: number;
    reqPerSec: number;
    rejected: number;
  } | null;
  engines: EngineState[];
}

export const STATE_FILE = 'state.json';
export const LOCK_FILE = 'pd.lock';

export function statePath(stateDir: string): string {
  return join(stateDir, STATE_FILE);
}

export function isAlive(pid: number | null | undefined): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function isGroupAlive(pgid: number | null | undefined): boolean {
  if (!pgid || pgid <= 1) return false;
  try {
    process.kill(-pgid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export async function readStackState(stateDir: string): Promise<StackState | null> {
  let text: string;
  try {
    text = await readFile(statePath(stateDir), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new RuntimeError(`cannot read ${statePath(stateDir)}: ${(e as Error).message}`, {
      hint: 'Check the permissions of the state directory (stateDir).',
    });
  }
  try {
    return JSON.parse(text) as StackState;
  } catch {
    throw new RuntimeError(`${statePath(stateDir)} is corrupt`, {
      hint: 'Run `pd down` to clean up whatever it describes, or delete the file if nothing is running.',
    });
  }
}

export async function writeStackState(stateDir: string, state: StackState): Promise<void> {
  await mkdir(stateDir, { recursive: true });
  const tmp = `${statePath(stateDir)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ ...state, updatedAt: new Date().toISOString() }, null, 2));
  await rename(tmp, statePath(stateDir));
}

export async function removeStackState(stateDir: string): Promise<void> {
  await rm(statePath(stateDir), { force: true });
}

/** Anything of this state still running: the supervisor or any engine process group. */
export function stateIsLive(state: StackState): boolean {
  if (isAlive(state.supervisorPid)) return true;
  return state.engines.some((e) => isGroupAlive(e.pgid) || e.pastPgids.some(isGroupAlive));
}

export async function isStackRunning(stateDir: string): Promise<boolean> {
  const state = await readStackState(stateDir).catch(() => null);
  return state !== null && stateIsLive(state);
}

/**
 * Take the state-dir lock (O_EXCL file with our pid). A lock whose pid is dead is stale and taken over.
 * Returns a release function.
 */
export async function acquireLock(stateDir: string, pid = process.pid): Promise<() => Promise<void>> {
  await mkdir(stateDir, { recursive: true });
  const lockPath = join(stateDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(lockPath, 'wx');
      await fh.writeFile(String(pid));
      await fh.close();
      return async () => {
        const owner = await readFile(lockPath, 'utf8').catch(() => '');
        if (owner.trim() === String(pid)) await rm(lockPath, { force: true });
      };
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
      const owner = Number((await readFile(lockPath, 'utf8').catch(() => '')).trim());
      if (owner && owner !== pid && isAlive(owner)) {
        throw new RuntimeError(`another pd stack is already running from ${stateDir} (supervisor pid ${owner})`, {
          hint: 'Use `pd status` to see it and `pd down` to stop it, or set stateDir/PD_STATE_DIR to run a second stack.',
        });
      }
      await rm(lockPath, { force: true });
    }
  }
  throw new RuntimeError(`could not take the lock ${lockPath}`, { hint: 'Remove it if no pd is running.' });
}

/**
 * The KV folder the engines of this state dir really write to: the running stack's (it may be a temp folder
 * under --simulate), else the configured one. null when the running stack's connector uses no shared storage.
 */
export async function activeStoragePath(stateDir: string, configured: string): Promise<string | null> {
  const state = await readStackState(stateDir).catch(() => null);
  if (state && stateIsLive(state)) return typeof state.sharedStoragePath === 'string' || state.sharedStoragePath === null ? state.sharedStoragePath : configured;
  return configured;
}
