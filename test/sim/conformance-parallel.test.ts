/**
 * Conformance: tensor, pipeline and data parallelism.
 * - vllm/config/parallel.py ParallelConfig.__post_init__: world_size = TP x PP must fit the GPUs the process sees
 *   (CUDA_VISIBLE_DEVICES), else a pydantic ValidationError for ParallelConfig: "World size (N) is larger than the
 *   number of available GPUs (M) in this node. …", raised in the API server before the engine starts (exit 1).
 * - vllm/distributed/parallel_state.py logs "rank R in world size W is assigned as DP rank d, PP rank p, TP rank t";
 *   DP runs one EngineCore_DP<d> per rank, each with its own scheduler and KV cache.
 * - KV capacity per GPU: TP splits the KV heads, PP the layers (vllm/v1/kv_cache_interface.py, kv_cache_utils.py).
 * The step-time model (cost.ts) is the simulator's own: TP divides per-token compute and adds two all-reduces per
 * layer; PP pipelines the batch (more throughput) at a per-stage hop latency; DP engines do not share anything.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { simEntryPath } from '../../src/sim/entry.js';
import { startSim } from '../helpers/sim.js';
import { postJson } from './sse.js';
import { planEngine } from '../../src/sim/engine-config.js';
import { parseSimArgs } from '../../src/sim/options.js';
import { stepMs, type CostModel } from '../../src/sim/cost.js';
import { DEFAULT_KNOBS } from '../../src/sim/knobs.js';

const GPU = { memoryGib: 80, name: 'NVIDIA H100 80GB HBM3', nodeGpus: 8, geometryOverride: '' };
const plan = (argv: string[], cvd?: string) => planEngine(parseSimArgs(['serve', 'Qwen/Qwen3-8B', ...argv], {}), GPU, cvd === undefined ? {} : { CUDA_VISIBLE_DEVICES: cvd });

test('world size larger than the visible GPUs fails like vLLM\'s ParallelConfig, before the engine starts', () => {
  assert.throws(() => plan(['-tp', '2'], '0'), /World size \(2\) is larger than the number of available GPUs \(1\) in this node/);
  assert.throws(() => plan(['-tp', '2', '-pp', '2'], '0,1,2'), /World size \(4\) is larger than the number of available GPUs \(3\)/);
  assert.doesNotThrow(() => plan(['-tp', '2'], '0,1'));
  assert.throws(() => plan(['-dp', '2', '-tp', '2'], '0,1'), /data parallel rank 1/);
  const r = spawnSync(process.execPath, [simEntryPath(), 'serve', 'Qwen/Qwen3-8B', '--port', '1', '--tensor-parallel-size', '2'], {
    env: { ...process.env, PD_SIM_ZERO_LATENCY: '1', CUDA_VISIBLE_DEVICES: '1' }, encoding: 'utf8', timeout: 20_000,
  });
  assert.equal(r.status, 1);
  assert.match(r.stderr, /pydantic_core\._pydantic_core\.ValidationError: 1 validation error for ParallelConfig\n.* {2}Value error, World size \(2\) is larger than the number of available GPUs \(1\) in this node\. If this is intentional and you are using:\n.*- ray, set '--distributed-executor-backend ray'\./);
  assert.match(r.stdout, /non-default args: .*'tensor_parallel_size': 2/);
  assert.doesNotMatch(r.stdout, /Starting to load model/);
});

test('KV capacity per GPU: TP splits the heads, PP the layers; DP gives each rank its own pool', () => {
  const one = plan([]);
  const tp2 = plan(['-tp', '2']);
  const pp2 = plan(['-pp', '2']);
  assert.equal(tp2.kvBytesPerTokenPerGpu, one.kvBytesPerTokenPerGpu / 2);
  assert.equal(pp2.kvBytesPerTokenPerGpu, one.kvBytesPerTokenPerGpu / 2);
  assert.ok(tp2.numGpuBlocks > 2 * one.numGpuBlocks, 'half the KV per token and half the weights per GPU');
  assert.equal(plan(['-dp', '2']).numGpuBlocks, one.numGpuBlocks);
});

test('step-time model: TP divides compute plus all-reduces; PP raises batch throughput at a hop cost', () => {
  const k = { ...DEFAULT_KNOBS, jitter: 0 };
  const base: CostModel = { tp: 1, pp: 1, layers: 36, kvBytesPerTokenPerGpu: 147_456, hbmBytesPerMs: 3350e6, allReduceMs: 0.01, ppHopMs: 0.2 };
  const load = { prefillTokens: 0, decodeSeqs: 1, contextTokens: 1000, running: 1, maxNumSeqs: 256, ioMs: 0 };
  const t1 = stepMs(base, k, load);
  const t2 = stepMs({ ...base, tp: 2, kvBytesPerTokenPerGpu: 147_456 / 2 }, k, load);
  assert.ok(t2 < t1 && t2 > t1 / 2, `TP2 ${t2} vs TP1 ${t1}: faster, but not twice (all-reduce)`);
  const busy = { ...load, decodeSeqs: 200, running: 200, contextTokens: 200 * 1000 };
  const p1 = stepMs(base, k, busy);
  const p2 = stepMs({ ...base, pp: 2, kvBytesPerTokenPerGpu: 147_456 / 2 }, k, busy);
  assert.ok(p2 < p1, `PP2 batch step ${p2} < ${p1}`);
  assert.ok(stepMs({ ...base, pp: 2 }, k, load) > t1, 'a single request pays the stage hop');
});

test('a TP=2 engine logs its two ranks; a DP=2 server runs two engine cores and serves from both', async () => {
  const tp = await startSim({ model: 'Qwen/Qwen3-8B', args: ['-tp', '2'], env: { CUDA_VISIBLE_DEVICES: '0,1' } });
  const dp = await startSim({ model: 'Qwen/Qwen3-8B', args: ['--data-parallel-size', '2'], env: { CUDA_VISIBLE_DEVICES: '2,3' } });
  try {
    assert.match(tp.output(), /\(Worker_TP0 pid=\d+\) INFO .*rank 0 in world size 2 is assigned as DP rank 0, PP rank 0, TP rank 0/);
    assert.match(tp.output(), /\(Worker_TP1 pid=\d+\) INFO .*rank 1 in world size 2 is assigned as DP rank 0, PP rank 0, TP rank 1/);
    assert.match(tp.output(), /tensor_parallel_size=2, pipeline_parallel_size=1, data_parallel_size=1/);
    assert.match(dp.output(), /\(EngineCore_DP1 pid=\d+\) INFO .*Initializing a V1 LLM engine/);
    const rs = await Promise.all(Array.from({ length: 4 }, (_, i) => postJson(`${dp.url}/v1/completions`, { prompt: `request ${i}`, max_tokens: 2 })));
    assert.ok(rs.every((r) => r.status === 200));
  } finally {
    await Promise.all([tp.stop(), dp.stop()]);
  }
});
