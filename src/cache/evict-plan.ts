/**
 * Which entries the janitor evicts, as a pure function of the scanned entries, the budget and the clock:
 * 1. never an entry used (written or read, see scan.ts) less than graceSeconds ago — it may be in use;
 * 2. every other entry that is not whole and was last written over INCOMPLETE_MIN_AGE_MS ago (incomplete.ts: left
 *    by a failed write, not one being written now; reason "incomplete");
 * 3. every other entry not used for more than maxAgeSeconds (reason "age");
 * 4. then, while the total is above maxBytes, the least-recently-used of the rest (reason "size").
 */
import type { KvCacheBudget } from '../config/schema.js';
import type { CacheEntry } from './scan.js';
import { expectedLayerFiles, incompleteReason } from './incomplete.js';

export interface Eviction {
  name: string;
  bytes: number;
  files: number;
  lastUsedMs: number;
  reason: 'size' | 'age' | 'incomplete';
}

export interface EvictionPlan {
  evict: Eviction[];
  totalBytes: number;
  /** Total after the planned evictions. */
  bytesAfter: number;
  /** Entries inside the grace period (never evicted this round). */
  protectedEntries: number;
  /** Still above maxBytes after the plan (everything left is inside the grace period). */
  overBudget: boolean;
}

/** A prefill writes its layer files within seconds; an entry still incomplete after a minute was abandoned. */
export const INCOMPLETE_MIN_AGE_MS = 60_000;

export function isInGrace(e: CacheEntry, budget: Pick<KvCacheBudget, 'graceSeconds'>, nowMs: number): boolean {
  return nowMs - Math.max(e.lastUsedMs, e.mtimeMs) < budget.graceSeconds * 1000;
}

const lru = (a: CacheEntry, b: CacheEntry): number =>
  a.lastUsedMs - b.lastUsedMs || a.mtimeMs - b.mtimeMs || (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

export function planEvictions(entries: readonly CacheEntry[], budget: KvCacheBudget, nowMs: number): EvictionPlan {
  const totalBytes = entries.reduce((n, e) => n + e.bytes, 0);
  const evict: Eviction[] = [];
  const take = (e: CacheEntry, reason: Eviction['reason']): void => {
    evict.push({ name: e.name, bytes: e.bytes, files: e.files, lastUsedMs: e.lastUsedMs, reason });
  };
  const candidates = entries.filter((e) => !isInGrace(e, budget, nowMs)).sort(lru);
  const protectedEntries = entries.length - candidates.length;
  let remaining = totalBytes;
  const rest: CacheEntry[] = [];
  const expected = expectedLayerFiles(entries);
  for (const e of candidates) {
    if (incompleteReason(e, expected) !== null && nowMs - e.mtimeMs >= INCOMPLETE_MIN_AGE_MS) {
      take(e, 'incomplete');
      remaining -= e.bytes;
    } else if (budget.maxAgeSeconds !== undefined && nowMs - e.lastUsedMs > budget.maxAgeSeconds * 1000) {
      take(e, 'age');
      remaining -= e.bytes;
    } else {
      rest.push(e);
    }
  }
  if (budget.maxBytes !== undefined) {
    for (const e of rest) {
      if (remaining <= budget.maxBytes) break;
      take(e, 'size');
      remaining -= e.bytes;
    }
  }
  return {
    evict,
    totalBytes,
    bytesAfter: remaining,
    protectedEntries,
    overBudget: budget.maxBytes !== undefined && remaining > budget.maxBytes,
  };
}
