/**
 * `pd clear-cache`: empty the shared storage folder (the folder itself stays), or with `olderThanMs` only the
 * entries not used for that long. Deletions run concurrently through a limiter; symlinks are removed, never
 * followed; failures are collected per path and reported, never thrown as a stack trace.
 */
import { performance } from 'node:perf_hooks';
import type { Stats } from 'node:fs';
import { RuntimeError, ConfigError } from '../util/errors.js';
import type { ProtectedPath } from '../config/checks.js';
import { assertSafeCachePath } from './safety.js';
import { type CacheFs, type CacheFsSync, type FsFailure, errnoCode, nodeFs } from './fs.js';
import { deleteEntries } from './delete-pool.js';
import { scanCache, type CacheEntry } from './scan.js';

export interface ClearOptions {
  /** The folder to empty; must be the configured one. */
  path: string;
  /** kv.sharedStoragePath from the config. */
  configuredPath: string;
  /** pd's own folders and files the cache may not overlap (protectedPaths() of the config). */
  protect?: readonly ProtectedPath[];
  /** Only report what would be removed. */
  dryRun?: boolean;
  /** Only remove entries whose last use (see scan.ts) is older than this many milliseconds. */
  olderThanMs?: number;
  /** Deletion threads (default: CPUs + 1, between 2 and 8); also bounds scan calls in flight (x8). */
  concurrency?: number;
  /** Injected filesystem for scanning (tests). */
  fs?: CacheFs;
  /** Injected filesystem for deleting (tests; deletion then runs in this thread). */
  fsSync?: CacheFsSync;
  now?: () => number;
}

export interface ClearedEntry {
  name: string;
  bytes: number;
  files: number;
  lastUsedMs: number;
}

export interface ClearReport {
  path: string;
  /** False when the folder does not exist (nothing to do). */
  exists: boolean;
  /** Entries (top-level folders or files) removed — or that would be, with dryRun. */
  entriesRemoved: number;
  /** Entries that could not be removed completely (see failures). */
  entriesFailed: number;
  bytesFreed: number;
  filesRemoved: number;
  durationMs: number;
  dryRun: boolean;
  olderThanMs?: number;
  /** Each path that could not be read or removed, with its errno code. */
  failures: FsFailure[];
  /** Entries left in place on purpose (newer than olderThanMs). */
  kept: number;
  /** With dryRun: the entries that would be removed. */
  entries?: ClearedEntry[];
}

function listed(e: CacheEntry): ClearedEntry {
  return { name: e.name, bytes: e.bytes, files: e.files, lastUsedMs: e.lastUsedMs };
}

export async function clearCache(opts: ClearOptions): Promise<ClearReport> {
  const started = performance.now();
  const fs = opts.fs ?? nodeFs;
  const now = opts.now ?? Date.now;
  const dryRun = opts.dryRun ?? false;
  const { path, realPath } = assertSafeCachePath(opts.path, opts.configuredPath, opts.protect);
  const report: ClearReport = {
    path,
    exists: realPath !== null,
    entriesRemoved: 0,
    entriesFailed: 0,
    bytesFreed: 0,
    filesRemoved: 0,
    durationMs: 0,
    dryRun,
    ...(opts.olderThanMs !== undefined ? { olderThanMs: opts.olderThanMs } : {}),
    failures: [],
    kept: 0,
  };
  const finish = (): ClearReport => {
    report.durationMs = Math.round((performance.now() - started) * 10) / 10;
    return report;
  };
  if (realPath === null) return finish();

  let rootStat: Stats;
  try {
    rootStat = await fs.stat(realPath);
  } catch (e) {
    throw new RuntimeError(`cannot read the cache folder ${path} (${errnoCode(e)})`, {
      hint: `Check that it is readable: ls -ld ${path}`,
    });
  }
  if (!rootStat.isDirectory()) {
    throw new ConfigError(`the cache path ${path} is not a folder`, {
      hint: 'kv.sharedStoragePath must name the folder the engines write KV entries into.',
    });
  }
  const threads = opts.concurrency;
  let names: string[];

  if (dryRun || opts.olderThanMs !== undefined) {
    let scan;
    try {
      scan = await scanCache(realPath, { fs, ...(threads ? { concurrency: threads * 8 } : {}) });
    } catch (e) {
      throw unreadable(path, e);
    }
    const cutoff = opts.olderThanMs !== undefined ? now() - opts.olderThanMs : Infinity;
    const chosen = scan.entries.filter((e) => e.lastUsedMs < cutoff);
    report.kept = scan.entries.length - chosen.length;
    if (dryRun) {
      report.failures.push(...scan.errors);
      report.entriesRemoved = chosen.length;
      report.filesRemoved = chosen.reduce((n, e) => n + e.files, 0);
      report.bytesFreed = chosen.reduce((n, e) => n + e.bytes, 0);
      report.entries = chosen.map(listed);
      return finish();
    }
    names = chosen.map((e) => e.name);
  } else {
    try {
      names = (await fs.readdir(realPath, { withFileTypes: true })).map((d) => d.name);
    } catch (e) {
      throw unreadable(path, e);
    }
  }
  const result = await deleteEntries(realPath, names, {
    rootDev: rootStat.dev,
    ...(threads ? { threads } : {}),
    ...(opts.fsSync ? { fs: opts.fsSync } : {}),
  });
  report.entriesRemoved = result.removed.length;
  report.entriesFailed = result.failed.length;
  report.filesRemoved = result.files;
  report.bytesFreed = result.bytes;
  for (const f of result.failures) report.failures.push(f);
  return finish();
}

function unreadable(path: string, e: unknown): RuntimeError {
  const code = errnoCode(e);
  return new RuntimeError(`cannot list the cache folder ${path} (${code})`, {
    hint:
      code === 'EACCES' || code === 'EPERM'
        ? `The engines probably created it as another user (often root): sudo chown -R $USER ${path}`
        : `Check the folder: ls -ld ${path}`,
  });
}

/** A one-line suggestion for the failures in a report (permission problems, read-only disks, mounts). */
export function failureHint(path: string, failures: readonly FsFailure[]): string | undefined {
  const codes = new Set(failures.map((f) => f.code));
  const hints: string[] = [];
  if (codes.has('EACCES') || codes.has('EPERM')) {
    const root = typeof process.getuid === 'function' && process.getuid() === 0;
    hints.push(
      root
        ? `Even root was refused: the files may be immutable (check with lsattr, fix with chattr -R -i ${path}).`
        : `The engines (often running as root) wrote these files: take them over with \`sudo chown -R $USER ${path}\` ` +
            'and run pd clear-cache again (or run it with sudo).',
    );
  }
  if (codes.has('EROFS')) hints.push(`The filesystem is mounted read-only: remount it read-write first.`);
  if (codes.has('EXDEV') || codes.has('EBUSY')) hints.push('Another filesystem is mounted inside the cache: unmount it first.');
  if (codes.has('ENOTEMPTY')) hints.push('Something is still writing into the cache: stop the stack (pd down) and retry.');
  return hints.length > 0 ? hints.join(' ') : undefined;
}
