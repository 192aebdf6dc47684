/** Build fake SharedStorageConnector trees for cache tests: <root>/<md5>/<layer>.safetensors. */
import { mkdir, writeFile, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { createHash } from 'node:crypto';

export interface EntrySpec {
  name?: string;
  /** Bytes per layer file. */
  layerBytes?: number;
  layers?: number;
  /** Seconds ago the entry was written (folder and file mtimes/atimes). */
  ageSeconds?: number;
  /** Seconds ago its files were last read (atime set after mtime). */
  readSecondsAgo?: number;
}

export function md5(text: string): string {
  return createHash('md5').update(text).digest('hex');
}

/** Write one entry; returns its folder name and total bytes. */
export async function writeEntry(root: string, spec: EntrySpec, nowMs = Date.now()): Promise<{ name: string; bytes: number }> {
  const name = spec.name ?? md5(`${Math.random()}`);
  const dir = join(root, name);
  const layers = spec.layers ?? 3;
  const size = spec.layerBytes ?? 1000;
  await mkdir(dir, { recursive: true });
  const written = (nowMs - (spec.ageSeconds ?? 0) * 1000) / 1000;
  const read = spec.readSecondsAgo !== undefined ? (nowMs - spec.readSecondsAgo * 1000) / 1000 : written;
  for (let i = 0; i < layers; i++) {
    const file = join(dir, `model.layers.${i}.self_attn.attn.safetensors`);
    await writeFile(file, Buffer.alloc(size, i));
    await utimes(file, read, written);
  }
  await utimes(dir, written, written);
  return { name, bytes: layers * size };
}
