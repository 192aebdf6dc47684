/**
 * Walk the shared storage folder and describe each entry (one top-level folder per prompt, as vLLM's
 * SharedStorageConnector/ExampleConnector writes them; stray top-level files count as entries too).
 *
 * Times per entry ("recently used" — what the janitor's LRU order and --older-than go by):
 * - mtimeMs: the entry folder's mtime (the newest mtime of its sub-folders, if any): it moves when a layer file is
 *   created in it, i.e. when the producer writes the entry. For a stray top-level file, its own mtime.
 * - lastUsedMs: the newer of mtimeMs and the last *read* of any file inside. A cache hit makes the consumer (and the
 *   producer) read the layer files, which moves their atime past their mtime; an atime that is not newer than the
 *   file's mtime is just the creation and is ignored. Linux `relatime` (the usual default) records the first read
 *   after each write and then at most one read a day; `strictatime` records every read, `noatime` none (then only
 *   writes count). The folder's own atime is ignored on purpose: listing the folder — `ls`, or this very scan —
 *   moves it, while a cache hit (a stat and file reads) does not.
 * Symlinks are never followed (a link counts as a file of its own size) and other filesystems mounted inside are
 * not entered.
 */
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import { type CacheFs, type FsFailure, errnoCode, failure, nodeFs } from './fs.js';
import { createLimiter, type Limiter } from './limit.js';

export type EntryKind = 'dir' | 'file' | 'symlink' | 'other';

export interface CacheEntry {
  name: string;
  path: string;
  kind: EntryKind;
  bytes: number;
  files: number;
  mtimeMs: number;
  lastUsedMs: number;
  /** One regular file directly inside the entry folder (the incremental scanner re-checks its atime). */
  probe?: string;
  /** The entry folder has sub-folders (not vLLM's layout; always rescanned in full). */
  nested?: boolean;
  /** Smallest and largest file directly inside the entry folder (vLLM writes every layer file the same size). */
  minFileBytes?: number;
  maxFileBytes?: number;
}

export interface ScanResult {
  /** The folder that was scanned. */
  root: string;
  exists: boolean;
  entries: CacheEntry[];
  /** Paths that could not be read (the figures leave them out). */
  errors: FsFailure[];
}

export interface ScanOptions {
  fs?: CacheFs;
  concurrency?: number;
}

export const DEFAULT_CONCURRENCY = 32;

function kindOf(st: Stats): EntryKind {
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  return 'other';
}

interface Walk {
  fs: CacheFs;
  limit: Limiter;
  rootDev: number;
  errors: FsFailure[];
}

async function addTree(dir: string, entry: CacheEntry, w: Walk): Promise<void> {
  let names;
  try {
    names = await w.limit(() => w.fs.readdir(dir, { withFileTypes: true }));
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') w.errors.push(failure(dir, e));
    return;
  }
  await Promise.all(
    names.map(async (d) => {
      const p = join(dir, d.name);
      let st: Stats;
      try {
        st = await w.limit(() => w.fs.lstat(p));
      } catch (e) {
        if (errnoCode(e) !== 'ENOENT') w.errors.push(failure(p, e));
        return;
      }
      if (st.isDirectory()) {
        entry.nested = true;
        entry.mtimeMs = Math.max(entry.mtimeMs, st.mtimeMs);
        if (st.dev !== w.rootDev) {
          w.errors.push(failure(p, Object.assign(new Error('mount point'), { code: 'EXDEV' })));
          return;
        }
        await addTree(p, entry, w);
      } else {
        entry.files++;
        entry.bytes += st.size;
        if (dir === entry.path) {
          entry.minFileBytes = Math.min(entry.minFileBytes ?? Infinity, st.size);
          entry.maxFileBytes = Math.max(entry.maxFileBytes ?? 0, st.size);
        }
        if (entry.probe === undefined && dir === entry.path && st.isFile()) entry.probe = p;
        // Read after it was written: a cache hit.
        if (st.atimeMs > st.mtimeMs) entry.lastUsedMs = Math.max(entry.lastUsedMs, st.atimeMs);
      }
    }),
  );
  entry.lastUsedMs = Math.max(entry.lastUsedMs, entry.mtimeMs);
}

/** Describe one top-level entry; null when it vanished meanwhile. */
export async function scanEntry(root: string, name: string, w: Walk): Promise<CacheEntry | null> {
  const path = join(root, name);
  let st: Stats;
  try {
    st = await w.limit(() => w.fs.lstat(path));
  } catch (e) {
    if (errnoCode(e) !== 'ENOENT') w.errors.push(failure(path, e));
    return null;
  }
  const kind = kindOf(st);
  const entry: CacheEntry = {
    name,
    path,
    kind,
    bytes: kind === 'dir' ? 0 : st.size,
    files: kind === 'dir' ? 0 : 1,
    mtimeMs: st.mtimeMs,
    // A folder's atime changes whenever it is listed (including by this scan): only its mtime counts.
    lastUsedMs: kind === 'dir' ? st.mtimeMs : Math.max(st.mtimeMs, st.atimeMs),
  };
  if (kind === 'dir') {
    if (st.dev !== w.rootDev) w.errors.push(failure(path, Object.assign(new Error('mount point'), { code: 'EXDEV' })));
    else await addTree(path, entry, w);
  }
  return entry;
}

/** Scan `root` (following `root` itself if it is a symlink, nothing below it). */
export async function scanCache(root: string, opts: ScanOptions = {}): Promise<ScanResult> {
  const fs = opts.fs ?? nodeFs;
  const limit = createLimiter(opts.concurrency ?? DEFAULT_CONCURRENCY);
  const errors: FsFailure[] = [];
  let rootStat: Stats;
  try {
    rootStat = await fs.stat(root);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return { root, exists: false, entries: [], errors };
    throw e;
  }
  if (!rootStat.isDirectory()) {
    throw Object.assign(new Error(`${root} is not a folder`), { code: 'ENOTDIR', path: root });
  }
  const dirents = await fs.readdir(root, { withFileTypes: true });
  const w: Walk = { fs, limit, rootDev: rootStat.dev, errors };
  const scanned = await Promise.all(dirents.map((d) => scanEntry(root, d.name, w)));
  const entries = scanned.filter((e): e is CacheEntry => e !== null).sort((a, b) => (a.name < b.name ? -1 : 1));
  return { root, exists: true, entries, errors };
}

interface Known {
  entry: CacheEntry;
  dirMtimeMs: number;
  dirIno: number;
}

/**
 * Repeated scans for the janitor without re-reading 100,000 files every few seconds. An entry folder whose mtime
 * and inode are unchanged since the last pass has the same files (vLLM never rewrites an entry in place), so only
 * its probe file is re-checked for a newer read; anything else (new, changed, nested, empty) is scanned in full.
 */
export class IncrementalScanner {
  private known = new Map<string, Known>();
  /** Entries scanned in full during the last pass (the rest were re-checked with two calls each). */
  lastFullScans = 0;

  constructor(
    private readonly root: string,
    private readonly opts: ScanOptions = {},
  ) {}

  async scan(): Promise<ScanResult> {
    const fs = this.opts.fs ?? nodeFs;
    const limit = createLimiter(this.opts.concurrency ?? DEFAULT_CONCURRENCY);
    const errors: FsFailure[] = [];
    let rootStat: Stats;
    try {
      rootStat = await fs.stat(this.root);
    } catch (e) {
      if (errnoCode(e) !== 'ENOENT') throw e;
      this.known.clear();
      return { root: this.root, exists: false, entries: [], errors };
    }
    const dirents = await fs.readdir(this.root, { withFileTypes: true });
    const w: Walk = { fs, limit, rootDev: rootStat.dev, errors };
    const seen = new Map<string, Known>();
    let full = 0;
    await Promise.all(
      dirents.map(async (d) => {
        const path = join(this.root, d.name);
        let st: Stats;
        try {
          st = await limit(() => fs.lstat(path));
        } catch (e) {
          if (errnoCode(e) !== 'ENOENT') errors.push(failure(path, e));
          return;
        }
        const k = this.known.get(d.name);
        if (k && st.isDirectory() && !k.entry.nested && k.entry.probe && st.mtimeMs === k.dirMtimeMs && st.ino === k.dirIno) {
          try {
            const pst = await limit(() => fs.lstat(k.entry.probe!));
            if (pst.atimeMs > pst.mtimeMs) k.entry.lastUsedMs = Math.max(k.entry.lastUsedMs, pst.atimeMs);
            seen.set(d.name, k);
            return;
          } catch (e) {
            if (errnoCode(e) !== 'ENOENT') errors.push(failure(k.entry.probe, e));
          }
        }
        full++;
        const entry = await scanEntry(this.root, d.name, w);
        if (entry) seen.set(d.name, { entry, dirMtimeMs: st.mtimeMs, dirIno: st.ino });
      }),
    );
    this.known = seen;
    this.lastFullScans = full;
    const entries = [...seen.values()].map((k) => ({ ...k.entry })).sort((a, b) => (a.name < b.name ? -1 : 1));
    return { root: this.root, exists: true, entries, errors };
  }
}
