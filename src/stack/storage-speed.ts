/**
 * The shared-storage connector's cost is the storage's speed: every prompt's KV is written by the producer and read
 * by the consumer (~147 KB per token for Qwen3-4B, so ~150 MB per 1k-token prompt). `pd doctor` measures the folder's
 * write bandwidth (fsync'd, so the disk and not the page cache is timed) and its read bandwidth (of a file just
 * written, as the consumer reads what the producer just wrote), and says what that costs per prompt.
 */
import { open, rm, statfs } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';

/** statfs f_type of memory-backed filesystems (tmpfs, ramfs). */
const MEMORY_FS = new Set([0x01021994, 0x858458f6]);

export interface StorageSpeed {
  writeBytesPerSec: number;
  readBytesPerSec: number;
  memoryBacked: boolean;
}

export async function measureStorage(dir: string, bytes = 64 * 1024 * 1024): Promise<StorageSpeed> {
  const file = join(dir, `.pd-speed-test-${process.pid}`);
  const chunk = Buffer.alloc(4 * 1024 * 1024, 0x5a);
  try {
    let t = performance.now();
    const w = await open(file, 'w', 0o600);
    try {
      for (let done = 0; done < bytes; done += chunk.length) await w.write(chunk, 0, chunk.length);
      await w.sync();
    } finally {
      await w.close();
    }
    const writeS = (performance.now() - t) / 1000;
    t = performance.now();
    const r = await open(file, 'r');
    try {
      while ((await r.read(chunk, 0, chunk.length)).bytesRead > 0) {
        // reading through
      }
    } finally {
      await r.close();
    }
    const readS = (performance.now() - t) / 1000;
    const fs = await statfs(dir);
    return { writeBytesPerSec: bytes / writeS, readBytesPerSec: bytes / readS, memoryBacked: MEMORY_FS.has(fs.type) };
  } finally {
    await rm(file, { force: true });
  }
}
