/**
 * The bench's KV cache policy: which folder to empty before each run (the running stack's shared storage, or
 * kv.sharedStoragePath), and emptying it through the cache layer's clearCache, the same safe path as
 * `pd clear-cache` (assertSafeCachePath: only the configured folder, never a system path, symlinks not followed).
 * Nothing is cleared with --keep-cache, with bench.clearCache false, or for a NixlConnector config with no stack
 * running (NIXL keeps KV in engine memory: there is no folder to clear).
 */
import type { PdConfig } from '../config/schema.js';
import { RuntimeError } from '../util/errors.js';
import { activeStoragePath, isStackRunning } from '../stack/state.js';
import { clearCache } from '../cache/clear.js';

/** The KV cache folder to clear before each run, or null. */
export async function cacheToClear(config: PdConfig, keepCache: boolean | undefined): Promise<string | null> {
  if (keepCache || !config.bench.clearCache) return null;
  if (config.kv.connector === 'NixlConnector' && !(await isStackRunning(config.stateDir))) return null;
  return activeStoragePath(config.stateDir, config.kv.sharedStoragePath);
}

export interface CacheCleared {
  path: string;
  /** False when the folder does not exist yet (nothing to clear). */
  existed: boolean;
  entriesRemoved: number;
  entriesFailed: number;
}

/** Empty the KV cache folder before a run (null: nothing to do). Failures to clear are RuntimeErrors with a fix. */
export async function clearBeforeRun(path: string | null): Promise<CacheCleared | null> {
  if (path === null) return null;
  try {
    // path is the running stack's folder or the configured one: either way the folder the engines use.
    const report = await clearCache({ path, configuredPath: path });
    return { path, existed: report.exists, entriesRemoved: report.entriesRemoved, entriesFailed: report.entriesFailed };
  } catch (e) {
    if (e instanceof RuntimeError || (e as Error).name === 'ConfigError') {
      throw new RuntimeError(`clearing the KV cache before the run failed: ${(e as Error).message}`, {
        hint: 'fix the permissions of kv.sharedStoragePath, or pass --keep-cache to benchmark without clearing',
      });
    }
    throw e;
  }
}
