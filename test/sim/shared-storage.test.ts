import { describe, test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join } from 'node:path';
import {
  alignToBlockSize, lookupFolderName, saveFolderName, SharedStorage, tokenIdsHash, layerNames, safetensorsPlaceholder,
} from '../../src/sim/kv/shared-storage.js';
import { tempDir } from '../helpers/tmp.js';

const range = (a: number, n: number): number[] => Array.from({ length: n }, (_, i) => a + i);

describe('SharedStorageConnector naming (vLLM shared_storage_connector.py)', () => {
  test('align_to_block_size is ((n - 1) // B) * B and 0 for n <= 0', () => {
    const B = 16;
    assert.equal(alignToBlockSize(0, B), 0);
    assert.equal(alignToBlockSize(-3, B), 0);
    assert.equal(alignToBlockSize(1, B), 0);
    assert.equal(alignToBlockSize(16, B), 0);
    assert.equal(alignToBlockSize(17, B), 16);
    assert.equal(alignToBlockSize(32, B), 16);
    assert.equal(alignToBlockSize(33, B), 32);
    assert.equal(alignToBlockSize(10, 4), 8);
  });

  test('folder names are md5 of the int64 little-endian bytes (values from Python hashlib + struct)', () => {
    // hashlib.md5(struct.pack('<4q', 1, 2, 3, 4)).hexdigest()
    assert.equal(tokenIdsHash([1, 2, 3, 4]), '9f66c130786a1a05e4731f71a3c5f172');
    assert.equal(tokenIdsHash([]), 'd41d8cd98f00b204e9800998ecf8427e');
    assert.equal(tokenIdsHash([-1, 2 ** 40]), '2ce2c2f5696fd58aa68529efba7e2d0a');
    // A 20-token prompt is saved under its first align(20, 16) = 16 tokens.
    assert.equal(saveFolderName(range(100, 20), 16), 'f010c48b3ce184a2ff9d7b30a4492282');
  });

  test('lookup uses align(L - 1, B): same folder as the save except when L = 1 (mod B)', () => {
    const B = 16;
    for (let L = 18; L <= 80; L++) {
      const ids = range(7, L);
      const same = lookupFolderName(ids, B) === saveFolderName(ids, B);
      assert.equal(same, L % B !== 1, `L=${L}`);
    }
  });

  test('prompts of at most B + 1 tokens are never looked up', () => {
    for (let L = 0; L <= 17; L++) assert.equal(lookupFolderName(range(1, L), 16), null, `L=${L}`);
    assert.notEqual(lookupFolderName(range(1, 18), 16), null);
  });

  test('a prompt of at most B tokens is saved under the md5 of no tokens at all', () => {
    assert.equal(saveFolderName(range(5, 16), 16), 'd41d8cd98f00b204e9800998ecf8427e');
  });
});

describe('SharedStorage on disk', async () => {
  const { dir, cleanup } = await tempDir('pd-sim-kv-');
  after(cleanup);

  test('save writes one <layer>.safetensors file per layer; lookup hits afterwards', async () => {
    const s = new SharedStorage(dir, 16, 4, 256);
    const ids = range(1000, 40);
    assert.deepEqual(s.lookup(ids), { hit: false, matchedTokens: 0, folder: join(dir, lookupFolderName(ids, 16)!) });
    const folder = await s.save(ids);
    assert.equal(folder, join(dir, saveFolderName(ids, 16)));
    const files = readdirSync(folder).sort();
    assert.deepEqual(files, layerNames(4).map((l) => `${l}.safetensors`).sort());
    assert.equal(statSync(join(folder, files[0]!)).size, 256);
    const hit = s.lookup(ids);
    assert.equal(hit.hit, true);
    assert.equal(hit.matchedTokens, 32);
    assert.equal(s.injectTokens(ids), 32);
  });

  test('a prompt of 33 tokens (1 mod 16) is saved but never found', async () => {
    const s = new SharedStorage(dir, 16, 2, 64);
    const ids = range(5000, 33);
    await s.save(ids);
    assert.equal(s.lookup(ids).hit, false);
  });

  test('a longer prompt sharing the saved prefix hits (prefix semantics of the folder name)', async () => {
    const s = new SharedStorage(dir, 16, 2, 64);
    await s.save(range(9000, 20)); // saved under the first 16 tokens
    const longer = [...range(9000, 16), 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17].slice(0, 30); // align(29,16)=16
    assert.equal(s.lookup(longer).hit, true);
  });

  test('placeholder files are valid safetensors (header length + JSON header)', () => {
    const buf = safetensorsPlaceholder(200);
    assert.equal(buf.length, 200);
    const n = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + n).toString('utf8')) as { kv_cache: { data_offsets: number[] } };
    assert.equal(8 + n + header.kv_cache.data_offsets[1]!, 200);
    void readFileSync;
  });
});
