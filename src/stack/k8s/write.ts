/**
 * Writing a bundle to its folder. Re-rendering into the same folder is the normal loop (edit the config, render
 * again), so files pd wrote before (they start with MARKER) are replaced and the ones the new bundle no longer has
 * are removed; a file pd did not write is never touched unless --force allows overwriting it by name.
 */
import { mkdir, readFile, readdir, rm, stat, writeFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { UsageError } from '../../util/errors.js';
import { MARKER, type BundleFile } from './bundle.js';

async function renderedByPd(path: string): Promise<boolean> {
  try {
    const text = await readFile(path, 'utf8');
    return text.startsWith(MARKER);
  } catch {
    return false;
  }
}

async function yamlFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['', 'router']) {
    let names: string[];
    try {
      names = await readdir(join(dir, sub));
    } catch {
      continue;
    }
    for (const n of names) if (n.endsWith('.yaml')) out.push(sub === '' ? n : `${sub}/${n}`);
  }
  return out;
}

function cannotWrite(dir: string, e: unknown): never {
  const code = (e as NodeJS.ErrnoException).code ?? 'error';
  const why: Record<string, string> = {
    EACCES: 'no permission',
    EROFS: 'a read-only filesystem',
    ENOTDIR: 'a file is in the way',
    EEXIST: 'a file is in the way',
  };
  throw new UsageError(`cannot write the bundle to ${dir}: ${why[code] ?? code}`, { hint: 'Pick another folder with --out.' });
}

export interface WriteResult {
  dir: string;
  written: string[];
  removed: string[];
}

export async function writeBundle(outDir: string, files: readonly BundleFile[], force: boolean): Promise<WriteResult> {
  const dir = resolve(outDir);
  try {
    const st = await stat(dir);
    if (!st.isDirectory()) throw new UsageError(`--out ${dir} is a file, not a folder`, { hint: 'Pick a folder (it is created when missing).' });
  } catch (e) {
    if (e instanceof UsageError) throw e;
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') cannotWrite(dir, e);
  }
  const existing = await yamlFiles(dir);
  const wanted = new Set(files.map((f) => f.path));
  const foreign: string[] = [];
  for (const f of existing) if (wanted.has(f) && !(await renderedByPd(join(dir, f)))) foreign.push(f);
  if (foreign.length > 0 && !force) {
    throw new UsageError(`${dir} already holds ${foreign.join(', ')}, which pd did not write`, {
      hint: 'Render into a new folder with --out, or pass --force to overwrite those files.',
    });
  }
  const removed: string[] = [];
  try {
    for (const f of existing) {
      if (wanted.has(f) || !(await renderedByPd(join(dir, f)))) continue;
      await rm(join(dir, f));
      removed.push(f);
    }
    for (const f of files) {
      const path = join(dir, f.path);
      await mkdir(dirname(path), { recursive: true });
      await writeFile(path, f.text);
    }
  } catch (e) {
    cannotWrite(dir, e);
  }
  return { dir, written: files.map((f) => f.path), removed };
}
