/**
 * Conformance: local prefix cache and external (connector) hits.
 * - vllm/v1/core/kv_cache_manager.py get_computed_blocks: full blocks only, at most (num_tokens - 1) // block_size
 *   of them (the last prompt token is always computed); prefix_cache_stats record every request's num_tokens as
 *   queries and its local hit as hits (vllm:prefix_cache_queries / vllm:prefix_cache_hits); nothing is recorded with
 *   --no-enable-prefix-caching.
 * - vllm/v1/core/sched/scheduler.py: the connector is asked get_num_new_matched_tokens(request, num_computed_tokens)
 *   with the local hit; vllm:external_prefix_cache_queries/hits count num_tokens and the external tokens.
 * - example_connector.py: "External Cache Hit!" when the folder exists; the external tokens are
 *   align(L - 1, B) - num_computed_tokens; the request is loaded ("Inject KV cache of N tokens") only when they are > 0.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { tempDir } from '../helpers/tmp.js';
import { postJson } from './sse.js';
import { promptOfLength } from '../../src/sim/tokenizer.js';
import { BlockPool } from '../../src/sim/blocks.js';

const metric = async (sim: SimHandle, name: string): Promise<number> => {
  const text = await (await fetch(`${sim.url}/metrics`)).text();
  const m = new RegExp(`^${name.replace(/:/g, '\\:')}\\{[^}]*\\} (\\S+)$`, 'm').exec(text);
  return m ? Number(m[1]) : NaN;
};

test('BlockPool: block-aligned hits, never the last token, LRU eviction of unused blocks', () => {
  const pool = new BlockPool(4, 16, true);
  const ids = Array.from({ length: 48 }, (_, i) => i);
  assert.equal(pool.localHit(ids), 0);
  assert.ok(pool.allocate(3));
  pool.release(3, ids);
  assert.equal(pool.localHit(ids), 32); // (48 - 1) // 16 = 2 blocks
  assert.equal(pool.localHit([...ids, 99]), 48);
  assert.equal(pool.localHit(ids.slice(0, 20)), 16);
  assert.ok(pool.allocate(4)); // every block taken: the cached ones are evicted
  pool.release(4, null);
  assert.equal(pool.localHit(ids), 0);
  assert.equal(new BlockPool(8, 16, false).localHit(ids), 0);
});

describe('prefix cache through the HTTP API', () => {
  let dir: string;
  let cleanup: () => Promise<void>;
  let a: SimHandle;
  let b: SimHandle;
  let off: SimHandle;
  before(async () => {
    ({ dir, cleanup } = await tempDir('pd-sim-prefix-'));
    [a, b, off] = await Promise.all([
      startSim({ storageDir: dir }),
      startSim({ storageDir: dir }),
      startSim({ args: ['--no-enable-prefix-caching'] }),
    ]);
  });
  after(async () => {
    await Promise.all([a.stop(), b.stop(), off.stop()]);
    await cleanup();
  });

  test('a repeated prompt on one engine is served from its prefix cache; external tokens only beyond it', async () => {
    const prompt = promptOfLength(40, 21);
    await postJson(`${a.url}/v1/completions`, { prompt, max_tokens: 1 });
    assert.equal(await metric(a, 'vllm:prefix_cache_queries_total'), 40);
    assert.equal(await metric(a, 'vllm:prefix_cache_hits_total'), 0);
    await postJson(`${a.url}/v1/completions`, { prompt, max_tokens: 1 });
    assert.equal(await metric(a, 'vllm:prefix_cache_queries_total'), 80);
    assert.equal(await metric(a, 'vllm:prefix_cache_hits_total'), 32);
    // The folder exists (hit logged) but the local cache already has align(39, 16) = 32 tokens: nothing to inject.
    await a.waitForOutput(/External Cache Hit!/);
    assert.doesNotMatch(a.output(), /Inject KV cache/);
    assert.equal(await metric(a, 'vllm:external_prefix_cache_queries_total'), 80);
    assert.equal(await metric(a, 'vllm:external_prefix_cache_hits_total'), 0);
    // Another engine has no local hit: the connector loads the 32 tokens.
    await postJson(`${b.url}/v1/completions`, { prompt, max_tokens: 1 });
    await b.waitForOutput(/Inject KV cache of 32 tokens to the paged memory/);
    assert.equal(await metric(b, 'vllm:external_prefix_cache_hits_total'), 32);
    assert.equal(await metric(b, 'vllm:prefix_cache_hits_total'), 0);
  });

  test('--no-enable-prefix-caching: no reuse, no prefix-cache counts', async () => {
    const prompt = promptOfLength(40, 22);
    await postJson(`${off.url}/v1/completions`, { prompt, max_tokens: 1 });
    await postJson(`${off.url}/v1/completions`, { prompt, max_tokens: 1 });
    assert.equal(await metric(off, 'vllm:prefix_cache_queries_total'), 0);
    assert.equal(await metric(off, 'vllm:prefix_cache_hits_total'), 0);
    assert.match(off.output(), /enable_prefix_caching=False/);
  });
});
