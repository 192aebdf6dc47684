/**
 * Conformance: capacity.
 * - vllm/engine/arg_utils.py EngineArgs.get_batch_defaults (OpenAI API server): >= 70 GiB and not an A100 →
 *   max_num_batched_tokens 8192, max_num_seqs 1024; otherwise 2048 / 256; then max_num_batched_tokens <=
 *   max_num_seqs x max_model_len and max_num_seqs <= max_num_batched_tokens.
 * - vllm/v1/core/kv_cache_utils.py: num_gpu_blocks = available KV memory / page size; "To serve at least one request
 *   with the models's max seq len" when one max-length request does not fit.
 * - vllm/v1/core/sched/scheduler.py: a token budget per step (chunked prefill), admission limited by max_num_seqs and
 *   free KV blocks (the rest wait), recompute preemption of the newest running request when a decode needs a block
 *   (logged as in docs/configuration/optimization.md, counted in vllm:num_preemptions).
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { batchDefaults, planEngine, GiB } from '../../src/sim/engine-config.js';
import { parseSimArgs } from '../../src/sim/options.js';
import { Engine, type GenParams, type Seq } from '../../src/sim/engine.js';
import { BlockPool } from '../../src/sim/blocks.js';
import { stepMs, type CostModel } from '../../src/sim/cost.js';
import { DEFAULT_KNOBS } from '../../src/sim/knobs.js';

const GPU = { memoryGib: 80, name: 'NVIDIA H100 80GB HBM3', nodeGpus: 8, geometryOverride: '' };
const plan = (argv: string[], gpu = GPU, env: NodeJS.ProcessEnv = {}) => planEngine(parseSimArgs(['serve', ...argv], {}), gpu, env);
const ZERO = { ...DEFAULT_KNOBS, itlMs: 0, prefillBaseMs: 0, prefillMsPerToken: 0, jitter: 0, startupDelay: 0 };
const NO_COST: CostModel = { tp: 1, pp: 1, layers: 1, kvBytesPerTokenPerGpu: 0, hbmBytesPerMs: Infinity, allReduceMs: 0, ppHopMs: 0 };
const params = (n: number, maxTokens: number): GenParams => ({
  promptIds: Array.from({ length: n }, (_, i) => 1000 + i + n * 7), maxTokens, minTokens: 0, ignoreEos: true, stop: [], stopTokenIds: [],
  includeStopStrInOutput: false, seed: null, temperature: 0, stallMs: 0, slowdown: 1,
});

test('get_batch_defaults by GPU class, and the clamps', () => {
  assert.deepEqual(batchDefaults(80 * GiB, 'NVIDIA H100 80GB HBM3'), { maxNumBatchedTokens: 8192, maxNumSeqs: 1024 });
  assert.deepEqual(batchDefaults(80 * GiB, 'NVIDIA A100-SXM4-80GB'), { maxNumBatchedTokens: 2048, maxNumSeqs: 256 });
  assert.deepEqual(batchDefaults(24 * GiB, 'NVIDIA L4'), { maxNumBatchedTokens: 2048, maxNumSeqs: 256 });
  const h100 = plan(['Qwen/Qwen3-4B']);
  assert.deepEqual([h100.maxNumBatchedTokens, h100.maxNumSeqs], [8192, 1024]);
  const small = plan(['Qwen/Qwen3-4B', '--max-model-len', '4', '--max-num-seqs', '2']);
  assert.equal(small.maxNumBatchedTokens, 8); // <= max_num_seqs x max_model_len
  const a100 = plan(['Qwen/Qwen3-4B'], { ...GPU, name: 'NVIDIA A100-SXM4-80GB' });
  assert.deepEqual([a100.maxNumBatchedTokens, a100.maxNumSeqs], [2048, 256]);
  const noChunk = plan(['Qwen/Qwen3-4B', '--no-enable-chunked-prefill', '--max-model-len', '16k']);
  assert.equal(noChunk.maxNumBatchedTokens, 16000);
});

test('KV block pool from gpu_memory_utilization and the geometry; too small for one request fails', () => {
  const p = plan(['Qwen/Qwen3-4B', '--gpu-memory-utilization', '0.5']);
  const expected = Math.floor((80 * GiB * 0.5 - 4.0e9 * 2 - 2 * GiB) / (16 * 147_456));
  assert.equal(p.numGpuBlocks, expected);
  assert.ok(plan(['Qwen/Qwen3-4B']).numGpuBlocks > p.numGpuBlocks);
  assert.throws(() => plan(['Qwen/Qwen3-32B', '--gpu-memory-utilization', '0.9'], { ...GPU, memoryGib: 80 }, {}), (e: Error) =>
    /To serve at least one request with the models's max seq len \(40960\)/.test(e.message) || /No available memory/.test(e.message));
  assert.throws(() => plan(['Qwen/Qwen3-32B'], { ...GPU, memoryGib: 24 }), /No available memory for the cache blocks/);
  // --max-model-len auto (or -1) fits the context to the KV cache instead of failing.
  const fitted = plan(['Qwen/Qwen3-32B', '--max-model-len', 'auto']);
  assert.ok(fitted.maxModelLen < 40960 && fitted.maxModelLen >= 16, String(fitted.maxModelLen));
});

test('chunked prefill: a long prompt is computed in budget-sized chunks', async () => {
  const steps: number[] = [];
  const engine = new Engine(ZERO, { maxNumSeqs: 4, maxNumBatchedTokens: 64, chunkedPrefill: true, pool: new BlockPool(1000, 16, false), cost: NO_COST });
  engine.events.step = (p) => steps.push(p);
  await new Promise<void>((resolve) => engine.submit(params(200, 2), { onToken: () => undefined, onFinish: () => resolve() }));
  assert.deepEqual(steps.filter((p) => p > 0), [64, 64, 64, 8]);
});

test('queueing when the block pool runs out, and recompute preemption when a decode needs a block', async () => {
  // 10 blocks of 16: each request needs ceil((40+1)/16) = 3 at admission, so three run and the fourth waits.
  const engine = new Engine(ZERO, { maxNumSeqs: 8, maxNumBatchedTokens: 4096, chunkedPrefill: true, pool: new BlockPool(10, 16, false), cost: NO_COST });
  let preempted = 0;
  engine.events.preempted = () => preempted++;
  const done: Array<Promise<Seq>> = [];
  for (let i = 0; i < 4; i++)
    done.push(new Promise((resolve) => engine.submit(params(40 + i, 30), { onToken: () => undefined, onFinish: (_r, _s, seq) => resolve(seq) })));
  await new Promise((r) => setImmediate(r));
  await new Promise((r) => setImmediate(r));
  assert.equal(engine.stats.running, 3);
  assert.equal(engine.stats.waiting, 1);
  const seqs = await Promise.all(done);
  assert.ok(seqs.every((s) => s.generated === 30));
  assert.ok(preempted > 0, 'decodes growing past their blocks preempt the newest request');
  assert.equal(engine.kvUsage, 0);
});

test('decode cost grows with the context the batch reads', () => {
  const cost: CostModel = { ...NO_COST, kvBytesPerTokenPerGpu: 147_456, hbmBytesPerMs: 3350e6 };
  const k = { ...DEFAULT_KNOBS, jitter: 0 };
  const short = stepMs(cost, k, { prefillTokens: 0, decodeSeqs: 8, contextTokens: 8 * 100, running: 8, maxNumSeqs: 256, ioMs: 0 });
  const long = stepMs(cost, k, { prefillTokens: 0, decodeSeqs: 8, contextTokens: 8 * 30_000, running: 8, maxNumSeqs: 256, ioMs: 0 });
  assert.ok(long > short + 10, `${short} → ${long}`);
});
