/**
 * vLLM's ExampleConnector (SharedStorageConnector before vLLM 0.13), reproduced from
 * vllm/distributed/kv_transfer/kv_connector/v1/example_connector.py:
 *
 * - a request is a hit when the folder for its first align(L - 1, B) prompt tokens exists (lookup);
 * - a request that is not a hit stores its first align(L, B) tokens: one folder named by the md5 hex of the
 *   int64 little-endian bytes of those ids, with one `<layer_name>.safetensors` file per layer, written by
 *   save_kv_layer during the forward pass (so the folder fills layer by layer);
 * - align(n, B) = ((n - 1) // B) * B (0 when n <= 0), so a prompt whose length is 1 mod B is saved under a
 *   longer prefix than it looks up and never hits, and a prompt of at most B + 1 tokens can never hit.
 * Each file holds what vLLM saves: {"kv_cache": tensor[2, tokens, kv_heads x head_dim]} in bf16, i.e.
 * tokens x 2 x kv heads x head dim x 2 bytes. Files are sparse (their real size, little disk used).
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, open, unlink, writeFile, readFile } from 'node:fs/promises';
import { join } from 'node:path';

/** vLLM's align_to_block_size: ((n - 1) // B) * B, 0 for n <= 0. */
export function alignToBlockSize(numTokens: number, blockSize: number): number {
  if (numTokens <= 0) return 0;
  return Math.floor((numTokens - 1) / blockSize) * blockSize;
}

/** md5 hex of the int64 little-endian bytes of the ids (torch.tensor(ids).numpy().tobytes()). */
export function tokenIdsHash(ids: readonly number[]): string {
  const buf = Buffer.allocUnsafe(ids.length * 8);
  for (let i = 0; i < ids.length; i++) buf.writeBigInt64LE(BigInt(ids[i]!), i * 8);
  return createHash('md5').update(buf).digest('hex');
}

/** Folder name (not path) under which `promptIds` would be stored. */
export function saveFolderName(promptIds: readonly number[], blockSize: number): string {
  return tokenIdsHash(promptIds.slice(0, alignToBlockSize(promptIds.length, blockSize)));
}

/** Folder name looked up for `promptIds`, or null when the lookup length is 0 (never a hit). */
export function lookupFolderName(promptIds: readonly number[], blockSize: number): string | null {
  const n = alignToBlockSize(promptIds.length - 1, blockSize);
  if (n <= 0) return null;
  return tokenIdsHash(promptIds.slice(0, n));
}

/** Layer names as vLLM's attention layers are called for a decoder-only model (`model.layers.N.self_attn.attn`). */
export function layerNames(numLayers: number): string[] {
  return Array.from({ length: numLayers }, (_, i) => `model.layers.${i}.self_attn.attn`);
}

export interface LookupResult {
  hit: boolean;
  /** Tokens the lookup covers (align(L - 1, B)) when hit, else 0. */
  matchedTokens: number;
  folder: string | null;
}

export interface LayerLayout {
  layers: number;
  /** kv heads x head dim (the last dimension of the saved tensor). */
  width: number;
  dtypeBytes: number;
  /** Fixed file size instead of the real one (tests); 0 = real. */
  fixedBytes?: number;
}

export class SharedStorage {
  readonly layout: LayerLayout;
  constructor(
    readonly storagePath: string,
    readonly blockSize: number,
    layoutOrLayers: LayerLayout | number,
    fixedBytes = 0,
  ) {
    this.layout = typeof layoutOrLayers === 'number' ? { layers: layoutOrLayers, width: 8 * 128, dtypeBytes: 2, fixedBytes } : layoutOrLayers;
  }

  lookup(promptIds: readonly number[]): LookupResult {
    const name = lookupFolderName(promptIds, this.blockSize);
    if (name === null) return { hit: false, matchedTokens: 0, folder: null };
    const folder = join(this.storagePath, name);
    if (!existsSync(folder)) return { hit: false, matchedTokens: 0, folder };
    return { hit: true, matchedTokens: alignToBlockSize(promptIds.length - 1, this.blockSize), folder };
  }

  /** Tokens a save or an injection moves: vLLM's slot_mapping covers align(L, B) tokens. */
  injectTokens(promptIds: readonly number[]): number {
    return alignToBlockSize(promptIds.length, this.blockSize);
  }

  /** Bytes of one layer file for `tokens` stored tokens. */
  layerFileBytes(tokens: number): number {
    if (this.layout.fixedBytes) return this.layout.fixedBytes;
    return safetensorsHeader(tokens, this.layout).length + tokens * 2 * this.layout.width * this.layout.dtypeBytes;
  }

  /** Bytes a save of `promptIds` writes (all layers). */
  saveBytes(promptIds: readonly number[]): number {
    return this.layerFileBytes(this.injectTokens(promptIds)) * this.layout.layers;
  }

  /**
   * Write the folder and its layer files, one layer after the other spread over `durationMs` (the prefill step),
   * as save_kv_layer does inside the forward pass. Resolves to the folder path.
   */
  async save(promptIds: readonly number[], durationMs = 0): Promise<string> {
    const folder = join(this.storagePath, saveFolderName(promptIds, this.blockSize));
    await mkdir(folder, { recursive: true });
    const tokens = this.injectTokens(promptIds);
    const names = layerNames(this.layout.layers);
    const start = performance.now();
    for (let i = 0; i < names.length; i++) {
      if (durationMs > 0) {
        const due = start + (durationMs * (i + 1)) / names.length - performance.now();
        if (due >= 1) await new Promise((r) => setTimeout(r, due));
      }
      await this.writeLayer(join(folder, `${names[i]!}.safetensors`), tokens);
    }
    return folder;
  }

  private async writeLayer(file: string, tokens: number): Promise<void> {
    if (this.layout.fixedBytes) {
      await writeFile(file, safetensorsPlaceholder(this.layout.fixedBytes));
      return;
    }
    const header = safetensorsHeader(tokens, this.layout);
    const fh = await open(file, 'w');
    try {
      await fh.write(header, 0, header.length, 0);
      // The tensor data is a hole: the file has its real size but takes (almost) no disk.
      await fh.truncate(this.layerFileBytes(tokens));
    } finally {
      await fh.close();
    }
  }
}

/** The safetensors header of one saved layer: {"kv_cache": BF16 [2, tokens, width]}, padded to 8 bytes. */
export function safetensorsHeader(tokens: number, layout: LayerLayout): Buffer {
  const bytes = tokens * 2 * layout.width * layout.dtypeBytes;
  let json = JSON.stringify({ kv_cache: { dtype: layout.dtypeBytes === 2 ? 'BF16' : 'F32', shape: [2, tokens, layout.width], data_offsets: [0, bytes] } });
  while (json.length % 8 !== 0) json += ' ';
  const out = Buffer.alloc(8 + json.length);
  out.writeBigUInt64LE(BigInt(json.length), 0);
  out.write(json, 8, 'utf8');
  return out;
}

/**
 * A valid safetensors file of about `size` bytes: 8-byte little-endian header length, a JSON header describing
 * one uint8 tensor `kv_cache`, then the data.
 */
export function safetensorsPlaceholder(size: number): Buffer {
  const make = (n: number): Buffer => {
    let header = JSON.stringify({ kv_cache: { dtype: 'U8', shape: [n], data_offsets: [0, n] } });
    while (header.length % 8 !== 0) header += ' ';
    const out = Buffer.alloc(8 + header.length + n);
    out.writeBigUInt64LE(BigInt(header.length), 0);
    out.write(header, 8, 'utf8');
    return out;
  };
  const overhead = make(0).length;
  return make(Math.max(0, size - overhead));
}

/**
 * Write and read back `bytes` on `dir` (fsync'd) and return the slower of the two rates, MB/s: the shared-storage
 * connector's cost per byte on that path.
 */
export async function measureBandwidth(dir: string, bytes = 32 * 1024 * 1024): Promise<number> {
  await mkdir(dir, { recursive: true });
  const file = join(dir, `.pd-sim-bandwidth-${process.pid}`);
  const data = Buffer.alloc(bytes, 0x5a);
  try {
    const t0 = performance.now();
    const fh = await open(file, 'w');
    try {
      await fh.write(data, 0, data.length, 0);
      await fh.sync();
    } finally {
      await fh.close();
    }
    const t1 = performance.now();
    await readFile(file);
    const t2 = performance.now();
    const mbps = (ms: number): number => bytes / 1e6 / (Math.max(ms, 0.01) / 1000);
    return Math.min(mbps(t1 - t0), mbps(t2 - t1));
  } finally {
    await unlink(file).catch(() => undefined);
  }
}
