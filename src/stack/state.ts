/**
 * The running stack's state file (<stateDir>/state.json) and the lock that keeps two `pd up`s apart.
 * The supervisor rewrites the state file (atomically, owner-only) as things change, so `pd status`, `pd down`,
 * `pd logs`, `pd clear-cache` and `pd bench` in other terminals see the live stack. The file is read through a
 * schema that fills in any missing field, so a damaged or older file never crashes a reader.
 */
import { chmod, mkdir, readFile, rename, rm, writeFile, open } from 'node:fs/promises';
import { join } from 'node:path';
import * as z from 'zod';
import { RuntimeError } from '../util/errors.js';
import { isZombie, ownership, stackIdOf, type ProcessIdentity } from './identity.js';

const identitySchema = z.object({ pid: z.number().int(), startTime: z.string().nullable().catch(null) });

/** An array read element by element: one damaged element is dropped, the others are kept. */
function lenientArray<T extends z.ZodType>(item: T) {
  return z
    .array(z.unknown())
    .catch([])
    .transform((items) =>
      items.flatMap((x) => {
        const r = item.safeParse(x);
        return r.success ? [r.data] : [];
      }),
    );
}

const ENGINE_STATUSES = ['starting', 'healthy', 'unhealthy', 'restarting', 'exited', 'failed'] as const;

export const engineStateSchema = z.object({
  name: z.string().catch('?'),
  role: z.enum(['producer', 'consumer', 'engine']).catch('engine'),
  gpus: z.array(z.number()).catch([]),
  port: z.number().catch(0),
  url: z.string().catch(''),
  pid: z.number().int().nullable().catch(null),
  /** Process group id (the engine is a group leader, so pgid === pid). */
  pgid: z.number().int().nullable().catch(null),
  /** /proc start time of pid, to prove identity before signalling it. */
  startTime: z.string().nullable().catch(null),
  logFile: z.string().catch(''),
  argv: z.array(z.string()).catch([]),
  status: z.enum(ENGINE_STATUSES).catch('exited'),
  /** Restarts since the stack started. */
  restarts: z.number().catch(0),
  /** Restarts inside supervisor.restartWindowSeconds (what the budget counts). */
  recentRestarts: z.number().catch(0),
  /** Why the engine is left down for good, when it is. */
  downReason: z.string().nullable().catch(null),
  startedAt: z.string().nullable().catch(null),
  cacheHits: z.number().catch(0),
  cacheInjectedTokens: z.number().catch(0),
  errors: z.number().catch(0),
  /** Every generation started (a restarted engine has several), for `pd down` to sweep. */
  generations: lenientArray(identitySchema),
});

export const proxyStateSchema = z.object({
  url: z.string().catch(''),
  host: z.string().catch(''),
  port: z.number().catch(0),
  logFile: z.string().catch(''),
  inFlight: z.number().catch(0),
  queued: z.number().catch(0),
  requestsTotal: z.number().catch(0),
  reqPerSec: z.number().catch(0),
  rejected: z.number().catch(0),
});

export const stackStateSchema = z.object({
  version: z.number().catch(2),
  /** PD_STACK_ID carried by every process of this stack. */
  stackId: z.string().catch(''),
  supervisorPid: z.number().int().nullable().catch(null),
  supervisorStartTime: z.string().nullable().catch(null),
  startedAt: z.string().catch(''),
  updatedAt: z.string().catch(''),
  configPath: z.string().nullable().catch(null),
  configHash: z.string().catch(''),
  simulate: z.boolean().catch(false),
  topology: z.enum(['pd', 'aggregated']).catch('pd'),
  /** The resolved connector, or null for the aggregated topology. */
  connector: z.string().nullable().catch(null),
  model: z.string().catch(''),
  sharedStoragePath: z.string().nullable().catch(null),
  logDir: z.string().catch(''),
  phase: z.enum(['starting', 'ready', 'degraded', 'stopping', 'failed']).catch('failed'),
  proxy: proxyStateSchema.nullable().catch(null),
  engines: lenientArray(engineStateSchema),
});

export type EngineState = z.infer<typeof engineStateSchema>;
export type StackState = z.infer<typeof stackStateSchema>;

export const STATE_FILE = 'state.json';
export const LOCK_FILE = 'pd.lock';
/** Owner-only: the state file names processes and paths; logs may carry prompts. */
export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

export function statePath(stateDir: string): string {
  return join(stateDir, STATE_FILE);
}

/** Create (or tighten) a folder pd owns to owner-only. */
export async function ensurePrivateDir(dir: string): Promise<void> {
  await mkdir(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  await chmod(dir, PRIVATE_DIR_MODE).catch(() => undefined);
}

export function isAlive(pid: number | null | undefined): boolean {
  if (!pid || pid <= 0) return false;
  try {
    process.kill(pid, 0);
    // An exited process its parent has not reaped yet (a supervisor killed in a container without an init) still
    // answers signal 0; it runs nothing and holds no lock.
    return !isZombie(pid);
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The state file parsed through its schema, or null when there is none. Throws when it is not JSON. */
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
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    raw = undefined;
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new RuntimeError(`${statePath(stateDir)} is corrupt`, {
      hint: '`pd down` finds and stops the stack\'s processes without it (by their PD_STACK_ID), then removes it.',
    });
  }
  const state = stackStateSchema.parse(raw);
  if (state.stackId === '') state.stackId = stackIdOf(stateDir);
  return state;
}

export async function writeStackState(stateDir: string, state: StackState): Promise<void> {
  await ensurePrivateDir(stateDir);
  const tmp = `${statePath(stateDir)}.${process.pid}.tmp`;
  await writeFile(tmp, JSON.stringify({ ...state, updatedAt: new Date().toISOString() }, null, 2), { mode: PRIVATE_FILE_MODE });
  await rename(tmp, statePath(stateDir));
}

export async function removeStackState(stateDir: string): Promise<void> {
  await rm(statePath(stateDir), { force: true });
}

export function supervisorIdentity(state: StackState): ProcessIdentity | null {
  return state.supervisorPid === null ? null : { pid: state.supervisorPid, startTime: state.supervisorStartTime };
}

/** Is the supervisor that wrote this state still running (and still the process that wrote it)? */
export function supervisorAlive(state: StackState): boolean {
  return ownership(supervisorIdentity(state), state.stackId) === 'ours';
}

/** The identities of every engine generation recorded in the state. */
export function engineIdentities(e: EngineState): ProcessIdentity[] {
  const list = [...e.generations];
  if (e.pid !== null && !list.some((g) => g.pid === e.pid)) list.push({ pid: e.pid, startTime: e.startTime });
  return list;
}

/** Anything of this state still running and provably ours: the supervisor or any engine generation. */
export function stateIsLive(state: StackState): boolean {
  if (supervisorAlive(state)) return true;
  return state.engines.some((e) => engineIdentities(e).some((g) => ownership(g, state.stackId) === 'ours'));
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
  await ensurePrivateDir(stateDir);
  const lockPath = join(stateDir, LOCK_FILE);
  for (let attempt = 0; attempt < 2; attempt++) {
    try {
      const fh = await open(lockPath, 'wx', PRIVATE_FILE_MODE);
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
  if (state && stateIsLive(state)) return state.sharedStoragePath;
  return configured;
}
