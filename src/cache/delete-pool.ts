/**
 * Remove many top-level cache entries concurrently: a few worker threads each take the next entry from a shared
 * counter and delete it with blocking calls (measured much faster than async fs calls through the libuv pool;
 * see README "cache"). Small jobs, and jobs with an injected filesystem (tests), run in this thread.
 */
import { Worker } from 'node:worker_threads';
import { availableParallelism } from 'node:os';
import { join } from 'node:path';
import { type CacheFsSync, type FsFailure, nodeFsSync } from './fs.js';
import { removeTreeSync, type RemoveContext } from './remove.js';

export interface WorkerInput {
  root: string;
  names: string[];
  rootDev: number;
  counter: SharedArrayBuffer;
}

export interface WorkerOutput {
  removed: string[];
  failed: string[];
  files: number;
  bytes: number;
  failures: FsFailure[];
}

export interface DeleteOptions {
  /** Device id of the root folder (entries on another device are not entered). */
  rootDev: number;
  /** Worker threads (default: CPUs + 1, 2..8). */
  threads?: number;
  /** Injected filesystem: forces in-thread deletion (tests). */
  fs?: CacheFsSync;
  /** Below this many entries, delete in this thread (worker start-up costs ~30 ms). Default 64. */
  inlineBelow?: number;
}

export type DeleteResult = WorkerOutput;

export function defaultThreads(): number {
  return Math.min(8, Math.max(2, availableParallelism() + 1));
}

function inThread(root: string, names: readonly string[], fs: CacheFsSync, rootDev: number): DeleteResult {
  const ctx: RemoveContext = { fs, rootDev, files: 0, bytes: 0, failures: [] };
  const out: DeleteResult = { removed: [], failed: [], files: 0, bytes: 0, failures: ctx.failures };
  for (const name of names) {
    if (removeTreeSync(join(root, name), ctx)) out.removed.push(name);
    else out.failed.push(name);
  }
  out.files = ctx.files;
  out.bytes = ctx.bytes;
  return out;
}

/**
 * The worker module next to this one. Built code loads delete-worker.js directly; when running from source under
 * tsx (tests, benches) the worker registers tsx first, because Node 20 workers do not inherit loader hooks.
 */
function startWorker(input: WorkerInput): Worker {
  if (!import.meta.url.endsWith('.ts')) {
    return new Worker(new URL('./delete-worker.js', import.meta.url), { workerData: input });
  }
  const tsxApi = import.meta.resolve('tsx/esm/api');
  const entry = new URL('./delete-worker.ts', import.meta.url).href;
  const code = `import(${JSON.stringify(tsxApi)}).then((m) => { m.register(); return import(${JSON.stringify(entry)}); })`;
  return new Worker(code, { eval: true, workerData: input });
}

function runWorker(input: WorkerInput): Promise<WorkerOutput> {
  return new Promise((resolve, reject) => {
    const worker = startWorker(input);
    let result: WorkerOutput | undefined;
    worker.once('message', (m: WorkerOutput) => (result = m));
    worker.once('error', reject);
    worker.once('exit', (code) => {
      if (result) resolve(result);
      else reject(new Error(`cache delete worker exited with code ${code} before reporting`));
    });
  });
}

/** Delete `names` (entries directly under `root`). Never throws for filesystem errors: they are in `failures`. */
export async function deleteEntries(root: string, names: readonly string[], opts: DeleteOptions): Promise<DeleteResult> {
  const inlineBelow = opts.inlineBelow ?? 64;
  if (opts.fs || names.length < inlineBelow) return inThread(root, names, opts.fs ?? nodeFsSync, opts.rootDev);
  const threads = Math.max(1, Math.min(opts.threads ?? defaultThreads(), names.length));
  const input: WorkerInput = { root, names: [...names], rootDev: opts.rootDev, counter: new SharedArrayBuffer(4) };
  const parts = await Promise.all(Array.from({ length: threads }, () => runWorker(input)));
  const total: DeleteResult = { removed: [], failed: [], files: 0, bytes: 0, failures: [] };
  for (const p of parts) {
    for (const n of p.removed) total.removed.push(n);
    for (const n of p.failed) total.failed.push(n);
    for (const f of p.failures) total.failures.push(f);
    total.files += p.files;
    total.bytes += p.bytes;
  }
  return total;
}
