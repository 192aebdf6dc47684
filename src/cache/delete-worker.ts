/**
 * Worker thread body for delete-pool.ts: claims entry indexes from a shared counter, removes each entry with
 * blocking calls, and posts one summary when the list is exhausted.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { join } from 'node:path';
import { nodeFsSync } from './fs.js';
import { removeTreeSync, type RemoveContext } from './remove.js';
import type { WorkerInput, WorkerOutput } from './delete-pool.js';

const input = workerData as WorkerInput;
const counter = new Int32Array(input.counter);
const ctx: RemoveContext = { fs: nodeFsSync, rootDev: input.rootDev, files: 0, bytes: 0, failures: [] };
const out: WorkerOutput = { removed: [], failed: [], files: 0, bytes: 0, failures: ctx.failures };
for (;;) {
  const i = Atomics.add(counter, 0, 1);
  if (i >= input.names.length) break;
  const name = input.names[i]!;
  if (removeTreeSync(join(input.root, name), ctx)) out.removed.push(name);
  else out.failed.push(name);
}
out.files = ctx.files;
out.bytes = ctx.bytes;
parentPort!.postMessage(out);
