/**
 * The bench's KV cache policy: which folder to empty before each run (the running stack's shared storage, or
 * kv.sharedStoragePath), and emptying it through the cache layer's clearCache, the same safe path as
 * `pd clear-cache` (assertSafeCachePath: only the configured folder, never a system path, symlinks not followed).
 * Nothing is cleared with --keep-cache, with bench.clearCache false, or for a NixlConnector config with no stack
 * running (NIXL keeps KV in engine memory: there is no folder to clear).
 */
import { networkInterfaces } from 'node:os';
import type { PdConfig } from '../config/schema.js';
import { protectedPaths, type ProtectedPath } from '../config/checks.js';
import { RuntimeError } from '../util/errors.js';
import { readStackState, stateIsLive } from '../stack/state.js';
import { isSharedStorageConnector } from '../stack/plan/kv-transfer-config.js';
import { clearCache } from '../cache/clear.js';

/** The folder to empty before each run, and pd's own files it may never overlap (as pd clear-cache checks). */
export interface ClearTarget {
  path: string;
  protect: ProtectedPath[];
}

/** True when `url` points at this machine (loopback or one of its own addresses). */
export function isLocalTarget(url: string): boolean {
  let host: string;
  try {
    host = new URL(url).hostname.replace(/^\[|\]$/g, '');
  } catch {
    return false;
  }
  if (host === 'localhost' || host === '0.0.0.0' || host === '::' || /^127\./.test(host) || host === '::1') return true;
  return Object.values(networkInterfaces()).some((list) => list?.some((a) => a.address === host));
}

/**
 * The KV cache folder to clear before each run, or null: the running stack's shared storage (null when its
 * connector keeps KV elsewhere), else kv.sharedStoragePath for a shared-storage (or "auto") PD config. A target on
 * another machine (a cluster's gateway) does not use this machine's folder: nothing is cleared for it.
 */
export async function cacheToClear(
  config: PdConfig,
  configPath: string | null,
  keepCache: boolean | undefined,
  target?: string,
): Promise<ClearTarget | null> {
  if (keepCache || !config.bench.clearCache) return null;
  if (target !== undefined && !isLocalTarget(target)) return null;
  const state = await readStackState(config.stateDir).catch(() => null);
  let path: string | null;
  if (state && stateIsLive(state)) path = state.sharedStoragePath;
  else {
    const connector = config.kv.connector;
    const shared = config.topology === 'pd' && (connector === 'auto' || isSharedStorageConnector(connector));
    path = shared ? config.kv.sharedStoragePath : null;
  }
  return path === null ? null : { path, protect: protectedPaths(config, configPath) };
}

export interface CacheCleared {
  path: string;
  /** False when the folder does not exist yet (nothing to clear). */
  existed: boolean;
  entriesRemoved: number;
  entriesFailed: number;
}

/** Empty the KV cache folder before a run (null: nothing to do). Failures to clear are RuntimeErrors with a fix. */
export async function clearBeforeRun(target: ClearTarget | null): Promise<CacheCleared | null> {
  if (target === null) return null;
  const { path } = target;
  try {
    // path is the running stack's folder or the configured one: either way the folder the engines use. It gets
    // the same checks as pd clear-cache: never a system folder, never one overlapping pd's own files.
    const report = await clearCache({ path, configuredPath: path, protect: target.protect });
    return { path, existed: report.exists, entriesRemoved: report.entriesRemoved, entriesFailed: report.entriesFailed };
  } catch (e) {
    if (e instanceof RuntimeError) {
      throw new RuntimeError(`clearing the KV cache before the run failed: ${e.message}`, {
        hint: 'fix the permissions of kv.sharedStoragePath, or pass --keep-cache to benchmark without clearing',
      });
    }
    // A path pd refuses to clear (ConfigError) stays what it is: a configuration mistake, exit 2, with its hint.
    throw e;
  }
}
