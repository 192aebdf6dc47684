/**
 * Conformance: the files of the shared-storage connector.
 * vllm/distributed/kv_transfer/kv_connector/v1/example_connector.py (shared_storage_connector.py before 0.13):
 * - folder = md5 of the int64 bytes of the first align(L, B) prompt tokens, one `<layer>.safetensors` per layer;
 * - save_kv_layer saves {"kv_cache": tensor[2, tokens, kv_heads x head_dim]} (bf16) for each layer inside the
 *   forward pass, so the folder fills layer by layer while the prefill runs;
 * - a layer file is tokens x 2 x kv heads x head dim x 2 bytes plus its safetensors header.
 * The simulator writes the files sparse and charges save/load time at the storage bandwidth.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync, statSync, readFileSync, existsSync } from 'node:fs';
import { join } from 'node:path';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { tempDir } from '../helpers/tmp.js';
import { postJson } from './sse.js';
import { promptOfLength, tokenize } from '../../src/sim/tokenizer.js';
import { saveFolderName, layerNames, SharedStorage } from '../../src/sim/kv/shared-storage.js';

const MODEL = '/mnt/models/Qwen3-4B-Instruct-2507';

describe('KV files sized like the real cache', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let sim: SimHandle;
  before(async () => {
    ({ dir, cleanup } = await tempDir('pd-sim-kvfiles-'));
    // A visible prefill (4 ms per token) so that the folder can be watched filling up.
    sim = await startSim({ model: MODEL, storageDir: dir, args: ['--sim-prefill-ms-per-token', '4'] });
  });
  after(async () => {
    await sim.stop();
    await cleanup();
  });

  test('36 layer files of 2 x 8 x 128 x 2 bytes per stored token (Qwen3-4B), sparse, valid safetensors', async () => {
    const prompt = promptOfLength(100, 5);
    const ids = tokenize(prompt);
    assert.equal((await postJson(`${sim.url}/v1/completions`, { prompt, max_tokens: 1 })).status, 200);
    const folder = join(dir, saveFolderName(ids, 16));
    const files = readdirSync(folder).sort();
    assert.deepEqual(files, layerNames(36).map((l) => `${l}.safetensors`).sort());
    const file = join(folder, files[0]!);
    const st = statSync(file);
    const stored = 96; // align(100, 16)
    const buf = readFileSync(file);
    const headerLen = Number(buf.readBigUInt64LE(0));
    const header = JSON.parse(buf.subarray(8, 8 + headerLen).toString('utf8'));
    assert.deepEqual(header.kv_cache.shape, [2, stored, 8 * 128]);
    assert.equal(header.kv_cache.dtype, 'BF16');
    assert.equal(st.size, 8 + headerLen + stored * 2 * 8 * 128 * 2);
    assert.ok(st.blocks * 512 < st.size / 4, `sparse: ${st.blocks * 512} bytes on disk for ${st.size}`);
  });

  test('the folder fills layer by layer during the prefill (a reader sees it half-written)', async () => {
    const prompt = promptOfLength(200, 6);
    const folder = join(dir, saveFolderName(tokenize(prompt), 16));
    const pending = postJson(`${sim.url}/v1/completions`, { prompt, max_tokens: 1 });
    const seen = new Set<number>();
    let done = false;
    void pending.then(() => (done = true));
    while (!done) {
      if (existsSync(folder)) seen.add(readdirSync(folder).length);
      await new Promise((r) => setTimeout(r, 5));
    }
    assert.equal((await pending).status, 200);
    assert.equal(readdirSync(folder).length, 36);
    assert.ok([...seen].some((n) => n > 0 && n < 36), `partial counts seen: ${[...seen].sort((a, b) => a - b).join(',')}`);
  });

  test('a 1k-token prompt of Qwen3-4B writes ~150 MB (what the bandwidth is charged on)', () => {
    const s = new SharedStorage('/nonexistent', 16, { layers: 36, width: 8 * 128, dtypeBytes: 2 });
    const bytes = s.saveBytes(Array.from({ length: 1024 }, (_, i) => i));
    assert.ok(bytes > 148e6 && bytes < 152e6, String(bytes));
  });
});

describe('storage speed is the connector\'s cost', () => {
  test('saving at 100 MB/s makes the prefill of a 200-token prompt last ~290 ms (29 MB)', async () => {
    const { dir, cleanup } = await tempDir('pd-sim-kvbw-');
    const sim = await startSim({ model: MODEL, storageDir: dir, env: { PD_SIM_STORAGE_BANDWIDTH: '100' } });
    try {
      const t0 = performance.now();
      assert.equal((await postJson(`${sim.url}/v1/completions`, { prompt: promptOfLength(200, 8), max_tokens: 1 })).status, 200);
      const ms = performance.now() - t0;
      // align(200,16)=192 tokens x 147,456 B = 28.3 MB (+ headers) at 100 MB/s.
      assert.ok(ms >= 270 && ms < 2000, `${ms.toFixed(0)} ms`);
    } finally {
      await sim.stop();
      await cleanup();
    }
  });
});
