/**
 * The few filesystem calls the cache code makes, behind an interface so tests can inject failures that root
 * cannot otherwise produce (root ignores permission bits). Production uses node:fs/promises.
 */
import * as fsp from 'node:fs/promises';
import * as fss from 'node:fs';
import type { Dirent, Stats } from 'node:fs';

export interface CacheFs {
  lstat(path: string): Promise<Stats>;
  readdir(path: string, options: { withFileTypes: true }): Promise<Dirent[]>;
  unlink(path: string): Promise<void>;
  rmdir(path: string): Promise<void>;
  realpath(path: string): Promise<string>;
  stat(path: string): Promise<Stats>;
}

export const nodeFs: CacheFs = {
  lstat: (p) => fsp.lstat(p),
  readdir: (p, o) => fsp.readdir(p, o),
  unlink: (p) => fsp.unlink(p),
  rmdir: (p) => fsp.rmdir(p),
  realpath: (p) => fsp.realpath(p),
  stat: (p) => fsp.stat(p),
};

/**
 * Synchronous calls used by deletion. Deleting runs on worker threads with blocking calls: on a fast disk the libuv
 * thread-pool hand-off of async calls costs more than the unlink itself (measured 5-10x slower than `rm -rf`).
 */
export interface CacheFsSync {
  lstatSync(path: string): Stats;
  readdirSync(path: string, options: { withFileTypes: true }): Dirent[];
  unlinkSync(path: string): void;
  rmdirSync(path: string): void;
}

export const nodeFsSync: CacheFsSync = {
  lstatSync: (p) => fss.lstatSync(p),
  readdirSync: (p, o) => fss.readdirSync(p, o),
  unlinkSync: (p) => fss.unlinkSync(p),
  rmdirSync: (p) => fss.rmdirSync(p),
};

export function errnoCode(e: unknown): string {
  return (e as NodeJS.ErrnoException | undefined)?.code ?? 'EUNKNOWN';
}

/** One path that could not be read or removed. */
export interface FsFailure {
  path: string;
  code: string;
  message: string;
}

const MESSAGES: Record<string, string> = {
  EACCES: 'permission denied',
  EPERM: 'operation not permitted (owned by another user, or immutable)',
  EROFS: 'read-only filesystem',
  EBUSY: 'busy (a mount point or in use)',
  EXDEV: 'another filesystem is mounted here; pd does not cross filesystems',
  ENOTEMPTY: 'folder not empty (something wrote into it during the clear)',
  ENOTDIR: 'not a folder',
};

export function failure(path: string, e: unknown): FsFailure {
  const code = errnoCode(e);
  const message = MESSAGES[code] ?? (e instanceof Error ? e.message : String(e));
  return { path, code, message };
}
