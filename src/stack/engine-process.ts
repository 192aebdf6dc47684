/**
 * One engine child process: spawned with execa exactly as planned (argv + env), as the leader of its own
 * process group, with stdout/stderr appended line by line to its log file and handed to listeners.
 */
import { execa, type ResultPromise } from 'execa';
import { createWriteStream, type WriteStream } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { dirname } from 'node:path';
import { createInterface } from 'node:readline';
import type { EnginePlan } from './plan/engines.js';
import { withTimeout } from '../util/timers.js';
import { PRIVATE_DIR_MODE, PRIVATE_FILE_MODE } from './state.js';

export interface EngineExit {
  code: number | null;
  signal: string | null;
  /** Set when the process could not be started at all (e.g. ENOENT). */
  spawnError?: string;
}

export interface EngineProcess {
  pid: number | null;
  pgid: number | null;
  exited: Promise<EngineExit>;
  hasExited(): boolean;
  /** The last lines it printed (kept in memory for diagnosis). */
  tail(n?: number): string[];
}

export interface SpawnEngineOptions {
  onLine?: (line: string) => void;
  /** Keep this many lines in memory. */
  tailLines?: number;
  /** Written to the log before the process starts. */
  banner?: string;
  /** Added to the planned environment (the stack's PD_STACK_ID identity marker). */
  env?: Record<string, string>;
}

/** Append to a log file, owner-only (engine logs may carry prompts and paths). */
export async function openLog(path: string): Promise<WriteStream> {
  await mkdir(dirname(path), { recursive: true, mode: PRIVATE_DIR_MODE });
  return createWriteStream(path, { flags: 'a', mode: PRIVATE_FILE_MODE });
}

export async function spawnEngine(plan: EnginePlan, opts: SpawnEngineOptions = {}): Promise<EngineProcess> {
  const log = await openLog(plan.logFile);
  if (opts.banner) log.write(opts.banner + '\n');
  const keep = opts.tailLines ?? 200;
  const lines: string[] = [];
  const push = (line: string): void => {
    lines.push(line);
    if (lines.length > keep) lines.shift();
    log.write(line + '\n');
    opts.onLine?.(line);
  };

  let child: ResultPromise;
  let exitedFlag = false;
  try {
    child = execa(plan.argv[0]!, plan.argv.slice(1), {
      env: { ...plan.env, ...opts.env },
      extendEnv: true,
      detached: true,
      stdin: 'ignore',
      buffer: false,
      reject: false,
      cleanup: false,
      windowsHide: true,
    });
  } catch (e) {
    const msg = (e as Error).message;
    push(`pd: could not start ${plan.argv[0]}: ${msg}`);
    log.end();
    return {
      pid: null,
      pgid: null,
      exited: Promise.resolve({ code: null, signal: null, spawnError: msg }),
      hasExited: () => true,
      tail: (n = 40) => lines.slice(-n),
    };
  }

  const readers: Promise<void>[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    if (!stream) continue;
    const rl = createInterface({ input: stream, crlfDelay: Infinity });
    rl.on('line', push);
    readers.push(new Promise((r) => rl.once('close', () => r())));
  }

  const exited = child.then(async (result) => {
    // Workers that outlive the engine may hold its pipes open: read what is there, but do not wait for them.
    await withTimeout(Promise.all(readers), 500).catch(() => undefined);
    exitedFlag = true;
    const failed = result as unknown as { code?: string; exitCode?: number; signal?: string; failed?: boolean; originalMessage?: string };
    const spawnError = failed.code === 'ENOENT' || failed.code === 'EACCES' ? `${failed.code}: ${failed.originalMessage ?? ''}` : undefined;
    if (spawnError) push(`pd: could not start ${plan.argv[0]}: ${spawnError}`);
    await new Promise<void>((r) => log.end(r));
    return { code: failed.exitCode ?? null, signal: failed.signal ?? null, spawnError };
  });

  const pid = child.pid ?? null;
  return {
    pid,
    pgid: pid,
    exited,
    hasExited: () => exitedFlag,
    tail: (n = 40) => lines.slice(-n),
  };
}
