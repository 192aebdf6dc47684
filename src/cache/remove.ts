/**
 * Delete one path the way `rm -rf` would, but never following a symlink (the link itself is removed), never crossing
 * into another mounted filesystem, counting files and bytes, and collecting failures instead of throwing.
 * Blocking calls on purpose: it runs on worker threads (see delete-pool.ts).
 */
import { join } from 'node:path';
import type { Stats } from 'node:fs';
import { type CacheFsSync, type FsFailure, errnoCode, failure } from './fs.js';

export interface RemoveContext {
  fs: CacheFsSync;
  /** Device of the cache root: folders on another device (mount points) are left alone. */
  rootDev: number;
  files: number;
  bytes: number;
  failures: FsFailure[];
}

/** Remove `path` and everything under it. Returns true when it is gone (or was already gone). */
export function removeTreeSync(path: string, ctx: RemoveContext): boolean {
  let st: Stats;
  try {
    st = ctx.fs.lstatSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return true;
    ctx.failures.push(failure(path, e));
    return false;
  }
  if (!st.isDirectory()) {
    try {
      ctx.fs.unlinkSync(path);
    } catch (e) {
      if (errnoCode(e) === 'ENOENT') return true;
      ctx.failures.push(failure(path, e));
      return false;
    }
    ctx.files++;
    ctx.bytes += st.size;
    return true;
  }
  if (st.dev !== ctx.rootDev) {
    ctx.failures.push(failure(path, Object.assign(new Error('mount point'), { code: 'EXDEV' })));
    return false;
  }
  let names;
  try {
    names = ctx.fs.readdirSync(path, { withFileTypes: true });
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return true;
    ctx.failures.push(failure(path, e));
    return false;
  }
  let complete = true;
  for (const d of names) {
    if (!removeTreeSync(join(path, d.name), ctx)) complete = false;
  }
  // A child that could not go keeps its folder: that is already reported, ENOTEMPTY would only be noise.
  if (!complete) return false;
  try {
    ctx.fs.rmdirSync(path);
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return true;
    ctx.failures.push(failure(path, e));
    return false;
  }
  return true;
}
