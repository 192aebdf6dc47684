/**
 * KV entries that are not whole: vLLM's SharedStorage/ExampleConnector writes one file per attention layer, all of
 * the same size (same tokens, same layer shape), layer by layer during the prefill's forward pass. An entry with
 * fewer layer files than its siblings, an empty file, or files of different sizes is being written right now — or
 * was left behind by a write that failed (ENOSPC, a killed engine). Readers must not count it as a cache entry of
 * full size; the janitor removes it once it is past the grace period.
 */
import type { CacheEntry } from './scan.js';

export interface IncompleteEntry {
  name: string;
  bytes: number;
  files: number;
  mtimeMs: number;
  /** What is wrong, e.g. "12 of 36 layer files", "a file is shorter than its siblings". */
  reason: string;
}

/** The layer count of a whole entry: the most common file count among the entry folders (ties: the larger). */
export function expectedLayerFiles(entries: readonly CacheEntry[]): number | null {
  const counts = new Map<number, number>();
  for (const e of entries) if (e.kind === 'dir' && !e.nested && e.files > 0) counts.set(e.files, (counts.get(e.files) ?? 0) + 1);
  let best: [number, number] | null = null;
  for (const [files, n] of counts) if (best === null || n > best[1] || (n === best[1] && files > best[0])) best = [files, n];
  return best?.[0] ?? null;
}

export function incompleteReason(e: CacheEntry, expected: number | null): string | null {
  if (e.kind !== 'dir' || e.nested) return null;
  if (e.files === 0) return 'no layer files';
  if (expected !== null && e.files < expected) return `${e.files} of ${expected} layer files`;
  if (e.minFileBytes === 0) return 'an empty layer file';
  if (e.minFileBytes !== undefined && e.maxFileBytes !== undefined && e.minFileBytes !== e.maxFileBytes) {
    return 'a layer file shorter than its siblings';
  }
  return null;
}

export function findIncomplete(entries: readonly CacheEntry[]): IncompleteEntry[] {
  const expected = expectedLayerFiles(entries);
  const out: IncompleteEntry[] = [];
  for (const e of entries) {
    const reason = incompleteReason(e, expected);
    if (reason !== null) out.push({ name: e.name, bytes: e.bytes, files: e.files, mtimeMs: e.mtimeMs, reason });
  }
  return out;
}
