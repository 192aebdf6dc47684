/** Checks made before anything destructive (cache clearing) or long (a run) starts. */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { request } from 'undici';
import { RuntimeError, UsageError } from '../util/errors.js';
import { firstServedModel } from './target.js';

/** The results dir must be a folder pd can write. */
export async function ensureResultsDir(dir: string): Promise<void> {
  if (/^\/(proc|sys|dev)(\/|$)/.test(dir)) {
    throw new UsageError(`--results-dir ${dir} is inside a virtual filesystem`, { hint: 'Point --results-dir (or bench.resultsDir) at a normal folder.' });
  }
  try {
    await mkdir(dir, { recursive: true });
    await access(dir, constants.W_OK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code ?? 'error';
    throw new UsageError(`cannot use ${dir} as the results folder (${code})`, {
      hint: code === 'ENOTDIR' || code === 'EEXIST' ? 'A file is in the way: pick another --results-dir.' : 'Pick a folder you can write, with --results-dir or bench.resultsDir.',
    });
  }
}

/** The target must answer before the cache is cleared and a run starts. */
export async function checkTarget(target: string, apiKey: string | undefined, model: string | undefined): Promise<void> {
  if (model !== undefined) {
    try {
      const res = await request(`${target}/health`, { headersTimeout: 10_000, bodyTimeout: 10_000 });
      await res.body.dump();
    } catch (e) {
      throw new RuntimeError(`cannot reach ${target}: ${(e as Error).message}`, {
        hint: 'is the stack up (`pd status`)? pass --target to benchmark another server',
      });
    }
    return;
  }
  await firstServedModel(target, apiKey);
}
