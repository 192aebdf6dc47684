/** `pd cache stats`: how many entries the shared storage folder holds, how big, how old, and the largest ones. */
import { scanCache, type CacheEntry, type ScanOptions } from './scan.js';
import type { FsFailure } from './fs.js';
import { findIncomplete, type IncompleteEntry } from './incomplete.js';
import { INCOMPLETE_MIN_AGE_MS } from './evict-plan.js';

export interface EntrySummary {
  name: string;
  /** When the entry was last written. */
  mtimeMs: number;
  /** When it was last read or written (see scan.ts for what counts). */
  lastUsedMs: number;
}

export interface LargestEntry {
  name: string;
  bytes: number;
  files: number;
  mtimeMs: number;
}

export interface CacheStats {
  path: string;
  exists: boolean;
  entries: number;
  files: number;
  totalBytes: number;
  /** The entry written longest ago. */
  oldest?: EntrySummary;
  /** The entry written most recently. */
  newest?: EntrySummary;
  /** The biggest entries, largest first. */
  largest: LargestEntry[];
  /**
   * Entries that are not whole (incomplete.ts): `writing` were last written within a minute (a prefill may be
   * saving them now); the rest were left by a failed write (ENOSPC, a killed engine) and the janitor removes them.
   */
  incomplete: { entries: number; bytes: number; writing: number; list: IncompleteEntry[] };
  /** Paths that could not be read (left out of the figures). */
  errors: FsFailure[];
}

export interface StatsOptions extends ScanOptions {
  /** How many of the largest entries to list (default 10). */
  largest?: number;
}

function summary(e: CacheEntry): EntrySummary {
  return { name: e.name, mtimeMs: e.mtimeMs, lastUsedMs: e.lastUsedMs };
}

/** Figures for a list of scanned entries (exported for the janitor and tests). */
export function summarize(path: string, exists: boolean, entries: readonly CacheEntry[], top = 10, nowMs = Date.now()): CacheStats {
  let oldest: CacheEntry | undefined;
  let newest: CacheEntry | undefined;
  let files = 0;
  let totalBytes = 0;
  for (const e of entries) {
    files += e.files;
    totalBytes += e.bytes;
    if (!oldest || e.mtimeMs < oldest.mtimeMs) oldest = e;
    if (!newest || e.mtimeMs > newest.mtimeMs) newest = e;
  }
  const largest = [...entries]
    .sort((a, b) => b.bytes - a.bytes || (a.name < b.name ? -1 : 1))
    .slice(0, Math.max(0, top))
    .map((e) => ({ name: e.name, bytes: e.bytes, files: e.files, mtimeMs: e.mtimeMs }));
  const partial = findIncomplete(entries);
  return {
    path,
    exists,
    incomplete: {
      entries: partial.length,
      bytes: partial.reduce((n, e) => n + e.bytes, 0),
      writing: partial.filter((e) => nowMs - e.mtimeMs < INCOMPLETE_MIN_AGE_MS).length,
      list: partial.slice(0, Math.max(0, top)),
    },
    entries: entries.length,
    files,
    totalBytes,
    ...(oldest ? { oldest: summary(oldest) } : {}),
    ...(newest ? { newest: summary(newest) } : {}),
    largest,
    errors: [],
  };
}

/** Scan `path` (read-only; a missing folder gives exists: false and zeros). */
export async function cacheStats(path: string, opts: StatsOptions = {}): Promise<CacheStats> {
  const scan = await scanCache(path, opts);
  const stats = summarize(path, scan.exists, scan.entries, opts.largest ?? 10);
  stats.errors = scan.errors;
  return stats;
}
