/**
 * The janitor keeps the shared storage folder inside its budget while the stack runs (`kv.cache` in the config):
 * every intervalSeconds it scans the folder (incrementally after the first pass, see IncrementalScanner), plans evictions (evict-plan.ts: age first, then least-recently-used
 * above maxBytes, never inside the grace period), re-checks each planned entry right before deleting it (skipped
 * if it was written since the scan), deletes them off the main thread, logs one line per eviction and calls
 * onEvict (the stack counts them in a prom-client counter).
 */
import { performance } from 'node:perf_hooks';
import { join } from 'node:path';
import { budgetIsActive, type KvCacheBudget } from '../config/schema.js';
import { type CacheFs, type CacheFsSync, type FsFailure, errnoCode, nodeFs } from './fs.js';
import { IncrementalScanner } from './scan.js';
import { deleteEntries } from './delete-pool.js';
import { planEvictions, type Eviction } from './evict-plan.js';
import { formatAgo, formatBytes } from '../util/format.js';
import { assertSafeCachePath } from './safety.js';

export interface EvictionReport {
  /** Clock (ms) at the start of the run. */
  at: number;
  entries: number;
  totalBytes: number;
  /** Total after this run's evictions. */
  bytesAfter: number;
  /** Entries actually removed. */
  evicted: Eviction[];
  /** Planned entries left alone because they were written after the scan, or could not be removed. */
  skipped: string[];
  protectedEntries: number;
  overBudget: boolean;
  failures: FsFailure[];
  durationMs: number;
}

export interface JanitorOptions {
  path: string;
  budget: KvCacheBudget;
  log?: (line: string) => void;
  onEvict?: (e: { name: string; bytes: number; reason: 'size' | 'age' }) => void;
  now?: () => number;
  /** Injected filesystems (tests). */
  fs?: CacheFs;
  fsSync?: CacheFsSync;
}

export interface Janitor {
  stop(): Promise<void>;
  runOnce(): Promise<EvictionReport>;
}


async function evictOnce(opts: JanitorOptions, scanner: IncrementalScanner): Promise<EvictionReport> {
  const started = performance.now();
  const fs = opts.fs ?? nodeFs;
  const now = (opts.now ?? Date.now)();
  const log = opts.log ?? (() => {});
  const report: EvictionReport = {
    at: now,
    entries: 0,
    totalBytes: 0,
    bytesAfter: 0,
    evicted: [],
    skipped: [],
    protectedEntries: 0,
    overBudget: false,
    failures: [],
    durationMs: 0,
  };
  const scan = await scanner.scan();
  report.failures.push(...scan.errors);
  report.entries = scan.entries.length;
  report.totalBytes = scan.entries.reduce((n, e) => n + e.bytes, 0);
  report.bytesAfter = report.totalBytes;
  if (!scan.exists) return { ...report, durationMs: performance.now() - started };

  const plan = planEvictions(scan.entries, opts.budget, now);
  report.protectedEntries = plan.protectedEntries;
  const byName = new Map(scan.entries.map((e) => [e.name, e]));

  // Re-check right before deleting: a folder whose mtime moved got a new file since the scan.
  const go: Eviction[] = [];
  for (const ev of plan.evict) {
    const seen = byName.get(ev.name)!;
    try {
      const st = await fs.lstat(join(opts.path, ev.name));
      if (st.mtimeMs > seen.mtimeMs) report.skipped.push(ev.name);
      else go.push(ev);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') report.failures.push({ path: join(opts.path, ev.name), code: errnoCode(e), message: String(e) });
    }
  }
  let rootDev: number;
  try {
    rootDev = (await fs.stat(opts.path)).dev;
  } catch (e) {
    report.failures.push({ path: opts.path, code: errnoCode(e), message: 'cannot stat the cache folder' });
    return { ...report, durationMs: performance.now() - started };
  }
  const result = await deleteEntries(
    opts.path,
    go.map((e) => e.name),
    { rootDev, inlineBelow: 4, ...(opts.fsSync ? { fs: opts.fsSync } : {}) },
  );
  for (const f of result.failures) report.failures.push(f);
  const removed = new Set(result.removed);
  for (const ev of go) {
    if (!removed.has(ev.name)) {
      report.skipped.push(ev.name);
      continue;
    }
    report.evicted.push(ev);
    report.bytesAfter -= ev.bytes;
    log(
      `kv cache: evicted ${ev.name} (${formatBytes(ev.bytes)}, ${ev.files} files, reason=${ev.reason}, ` +
        `last used ${formatAgo(ev.lastUsedMs, now)})`,
    );
    opts.onEvict?.({ name: ev.name, bytes: ev.bytes, reason: ev.reason });
  }
  report.overBudget = opts.budget.maxBytes !== undefined && report.bytesAfter > opts.budget.maxBytes;
  if (report.overBudget) {
    log(
      `kv cache: still ${formatBytes(report.bytesAfter)} > maxBytes ${formatBytes(opts.budget.maxBytes!)}: ` +
        `${plan.protectedEntries} entries are younger than the ${opts.budget.graceSeconds} s grace period`,
    );
  }
  for (const f of report.failures.slice(0, 5)) log(`kv cache: cannot remove ${f.path}: ${f.code} ${f.message}`);
  report.durationMs = performance.now() - started;
  return report;
}

/**
 * Start checking the budget every budget.intervalSeconds (the first check runs at once). Runs never overlap:
 * runOnce() during a run waits for it and then runs again. The timer does not keep the process alive.
 * With neither maxBytes nor maxAgeSeconds set, nothing is scheduled (runOnce still works, evicting nothing).
 * Throws ConfigError when the path is one pd refuses to delete from (see safety.ts).
 */
export function startJanitor(opts: JanitorOptions): Janitor {
  // The same refusals as pd clear-cache: never evict from /, /mnt, a home folder, ... (throws ConfigError).
  if (budgetIsActive(opts.budget)) assertSafeCachePath(opts.path, opts.path);
  const scanner = new IncrementalScanner(opts.path, { ...(opts.fs ? { fs: opts.fs } : {}), concurrency: 16 });
  let running: Promise<EvictionReport> | null = null;
  let timer: NodeJS.Timeout | null = null;
  let stopped = false;
  const log = opts.log ?? (() => {});

  const run = async (): Promise<EvictionReport> => {
    while (running) await running.catch(() => undefined);
    running = evictOnce(opts, scanner);
    try {
      return await running;
    } finally {
      running = null;
    }
  };
  const schedule = (): void => {
    if (stopped) return;
    timer = setTimeout(tick, opts.budget.intervalSeconds * 1000);
    timer.unref();
  };
  const tick = (): void => {
    timer = null;
    run()
      .catch((e: unknown) => log(`kv cache: janitor run failed: ${e instanceof Error ? e.message : String(e)}`))
      .finally(schedule);
  };
  if (budgetIsActive(opts.budget)) {
    timer = setTimeout(tick, 0);
    timer.unref();
  }
  return {
    runOnce: run,
    async stop(): Promise<void> {
      stopped = true;
      if (timer) clearTimeout(timer);
      timer = null;
      await running?.catch(() => undefined);
    },
  };
}
