/**
 * vLLM's SharedStorageConnector (renamed ExampleConnector in vLLM 0.13), reproduced from
 * vllm/distributed/kv_transfer/kv_connector/v1/shared_storage_connector.py / example_connector.py:
 *
 * - a request is a hit when the folder for its first align(L - 1, B) prompt tokens exists (lookup);
 * - a request that is not a hit stores its first align(L, B) tokens: one folder named by the md5 hex of the
 *   int64 little-endian bytes of those ids, with one `<layer_name>.safetensors` file per layer;
 * - align(n, B) = ((n - 1) // B) * B (0 when n <= 0), so a prompt whose length is 1 mod B is saved under a
 *   longer prefix than it looks up and never hits, and a prompt of at most B + 1 tokens can never hit.
 */
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, writeFile } from 'node:fs/promises';
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
  /** Tokens loaded from storage (align(L - 1, B)) when hit, else 0. */
  matchedTokens: number;
  folder: string | null;
}

export class SharedStorage {
  constructor(
    readonly storagePath: string,
    readonly blockSize: number,
    readonly numLayers: number,
    readonly layerBytes: number,
  ) {}

  lookup(promptIds: readonly number[]): LookupResult {
    const name = lookupFolderName(promptIds, this.blockSize);
    if (name === null) return { hit: false, matchedTokens: 0, folder: null };
    const folder = join(this.storagePath, name);
    if (!existsSync(folder)) return { hit: false, matchedTokens: 0, folder };
    return { hit: true, matchedTokens: alignToBlockSize(promptIds.length - 1, this.blockSize), folder };
  }

  /** Tokens an injecting (hit) request loads: vLLM logs len(slot_mapping) = align(L, B). */
  injectTokens(promptIds: readonly number[]): number {
    return alignToBlockSize(promptIds.length, this.blockSize);
  }

  /** Write the folder and its layer files; resolves to the folder path. */
  async save(promptIds: readonly number[]): Promise<string> {
    const folder = join(this.storagePath, saveFolderName(promptIds, this.blockSize));
    await mkdir(folder, { recursive: true });
    const payload = safetensorsPlaceholder(this.layerBytes);
    await Promise.all(layerNames(this.numLayers).map((l) => writeFile(join(folder, `${l}.safetensors`), payload)));
    return folder;
  }
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
