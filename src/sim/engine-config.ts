/**
 * The engine configuration vLLM derives from the command line and the (simulated) GPU, as pure functions:
 * - max_model_len from the model (vllm/config/model.py), refused when above the model's without
 *   VLLM_ALLOW_LONG_MAX_MODEL_LEN;
 * - max_num_seqs / max_num_batched_tokens defaults by GPU class and usage context, as
 *   EngineArgs.get_batch_defaults (vllm/engine/arg_utils.py) sets them for the OpenAI server: 8192 / 1024 on a GPU
 *   with >= 70 GiB that is not an A100, else 2048 / 256; then max_num_batched_tokens <= max_num_seqs x
 *   max_model_len (and >= max_model_len without chunked prefill), max_num_seqs <= max_num_batched_tokens;
 * - world size = TP x PP checked against the visible GPUs (vllm/config/parallel.py ParallelConfig.__post_init__);
 * - the KV block pool: (GPU memory x gpu_memory_utilization - weights - activation/graph reserve) / page size,
 *   per GPU, with KV heads split by TP and layers by PP (vllm/v1/core/kv_cache_utils.py), refused when one request
 *   of max_model_len does not fit (check_enough_kv_cache_memory).
 */
import { geometryFor, kvBytesPerToken, weightBytes, type ModelGeometry } from './geometry.js';
import type { SimOptions } from './options.js';

export const GiB = 1024 ** 3;
/** Non-KV memory a vLLM engine keeps per GPU besides the weights (activations at the profile peak, CUDA graphs). */
export const RESERVED_BYTES_PER_GPU = 2 * GiB;

export interface EngineConfig {
  geometry: ModelGeometry;
  maxModelLen: number;
  blockSize: number;
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  chunkedPrefill: boolean;
  prefixCaching: boolean;
  tp: number;
  pp: number;
  dp: number;
  /** GPUs one DP replica uses (TP x PP). */
  worldSize: number;
  /** Physical GPU ids (CUDA_VISIBLE_DEVICES) or their count. */
  visibleGpus: number;
  gpuName: string;
  gpuMemoryBytes: number;
  weightsBytesPerGpu: number;
  availableKvBytesPerGpu: number;
  /** KV bytes one token takes on one GPU (heads split by TP, layers by PP). */
  kvBytesPerTokenPerGpu: number;
  /** Blocks of each DP replica's pool. */
  numGpuBlocks: number;
}

/** A configuration vLLM refuses while building the engine config; `where` tells the process that raises it. */
export class EngineConfigError extends Error {
  constructor(message: string, readonly where: 'api' | 'engine', readonly pydantic: string | null = null) {
    super(message);
  }
}

/** Batch defaults for the OpenAI API server (UsageContext.OPENAI_API_SERVER). */
export function batchDefaults(gpuMemoryBytes: number, gpuName: string): { maxNumBatchedTokens: number; maxNumSeqs: number } {
  if (gpuMemoryBytes >= 70 * GiB && !gpuName.toLowerCase().includes('a100')) return { maxNumBatchedTokens: 8192, maxNumSeqs: 1024 };
  return { maxNumBatchedTokens: 2048, maxNumSeqs: 256 };
}

/** How many GPUs CUDA_VISIBLE_DEVICES leaves (all of the simulated node's when unset). */
export function visibleGpuCount(cvd: string | undefined, nodeGpus: number): number {
  if (cvd === undefined) return nodeGpus;
  return cvd.split(',').map((s) => s.trim()).filter((s) => s !== '' && s !== '-1').length;
}

export interface GpuSpec {
  memoryGib: number;
  name: string;
  nodeGpus: number;
  geometryOverride: string;
}

export function planEngine(o: SimOptions, gpu: GpuSpec, env: NodeJS.ProcessEnv): EngineConfig {
  const geometry = geometryFor(o.model, gpu.geometryOverride);
  const tp = o.tensorParallelSize;
  const pp = o.pipelineParallelSize;
  const dp = o.dataParallelSize;
  const worldSize = tp * pp;
  const visibleGpus = visibleGpuCount(env.CUDA_VISIBLE_DEVICES, gpu.nodeGpus);
  if (worldSize > visibleGpus)
    throw new EngineConfigError(
      `World size (${worldSize}) is larger than the number of available GPUs (${visibleGpus}) in this node. If this is intentional and you are using:\n` +
        "- ray, set '--distributed-executor-backend ray'.\n- multiprocessing, set '--nnodes' appropriately.",
      'api',
      'ParallelConfig',
    );
  if (worldSize * dp > visibleGpus)
    throw new EngineConfigError(
      `RuntimeError: CUDA error: invalid device ordinal (data parallel rank ${Math.floor(visibleGpus / worldSize)} needs GPUs ` +
        `${Math.floor(visibleGpus / worldSize) * worldSize}..${Math.floor(visibleGpus / worldSize) * worldSize + worldSize - 1}; ` +
        `${visibleGpus} visible for DP ${dp} x TP ${tp} x PP ${pp})`,
      'engine',
    );
  let maxModelLen = o.maxModelLen ?? geometry.maxModelLen;
  if (maxModelLen > geometry.maxModelLen && !/^(1|true)$/i.test(env.VLLM_ALLOW_LONG_MAX_MODEL_LEN ?? ''))
    throw new EngineConfigError(
      `User-specified max_model_len (${maxModelLen}) is greater than the derived max_model_len (max_position_embeddings=${geometry.maxModelLen} or model_max_length=None in model's config.json). ` +
        'To allow overriding this maximum, set the env var VLLM_ALLOW_LONG_MAX_MODEL_LEN=1. VLLM_ALLOW_LONG_MAX_MODEL_LEN must be used with extreme caution. ' +
        'If the model uses relative position encoding (RoPE), positions exceeding derived_max_model_len lead to nan. If the model uses absolute position encoding, positions exceeding derived_max_model_len will cause a CUDA array out-of-bounds error.',
      'api',
      'ModelConfig',
    );
  maxModelLen = Math.max(1, maxModelLen);
  const gpuMemoryBytes = gpu.memoryGib * GiB;
  const chunkedPrefill = o.enableChunkedPrefill ?? true;
  const defaults = batchDefaults(gpuMemoryBytes, gpu.name);
  let maxNumSeqs = o.maxNumSeqs ?? defaults.maxNumSeqs;
  let maxNumBatchedTokens = o.maxNumBatchedTokens ?? defaults.maxNumBatchedTokens;
  if (o.maxNumBatchedTokens === null) {
    if (!chunkedPrefill) maxNumBatchedTokens = Math.max(maxModelLen, maxNumBatchedTokens);
    maxNumBatchedTokens = Math.min(maxNumSeqs * maxModelLen, maxNumBatchedTokens);
  }
  if (o.maxNumSeqs === null) maxNumSeqs = Math.min(maxNumSeqs, maxNumBatchedTokens);
  if (!chunkedPrefill && maxNumBatchedTokens < maxModelLen)
    throw new EngineConfigError(
      `max_num_batched_tokens (${maxNumBatchedTokens}) is smaller than max_model_len (${maxModelLen}). This effectively limits the maximum sequence length to max_num_batched_tokens and makes vLLM reject longer sequences. Please increase max_num_batched_tokens or decrease max_model_len.`,
      'api',
      'SchedulerConfig',
    );
  const weightsBytesPerGpu = weightBytes(geometry) / worldSize;
  const kvHeadsPerGpu = Math.max(1, geometry.kvHeads / tp);
  const layersPerGpu = Math.ceil(geometry.layers / pp);
  const kvBytesPerTokenPerGpu = (kvBytesPerToken(geometry) / geometry.layers / geometry.kvHeads) * kvHeadsPerGpu * layersPerGpu;
  const availableKvBytesPerGpu = gpuMemoryBytes * o.gpuMemoryUtilization - weightsBytesPerGpu - RESERVED_BYTES_PER_GPU;
  if (availableKvBytesPerGpu <= 0)
    throw new EngineConfigError('ValueError: No available memory for the cache blocks. Try increasing `gpu_memory_utilization` when initializing the engine.', 'engine');
  const numGpuBlocks = Math.floor(availableKvBytesPerGpu / (o.blockSize * kvBytesPerTokenPerGpu));
  const estimated = Math.floor(availableKvBytesPerGpu / kvBytesPerTokenPerGpu / o.blockSize) * o.blockSize;
  // -1 / auto: the longest context that fits (vllm/v1/core/kv_cache_utils.py fits max_model_len to memory).
  if (o.maxModelLenAuto && maxModelLen > estimated) maxModelLen = Math.max(o.blockSize, estimated);
  const neededBytes = maxModelLen * kvBytesPerTokenPerGpu;
  if (neededBytes > availableKvBytesPerGpu) {
    throw new EngineConfigError(
      `ValueError: To serve at least one request with the models's max seq len (${maxModelLen}), (${(neededBytes / GiB).toFixed(2)} GiB KV cache is needed, ` +
        `which is larger than the available KV cache memory (${(availableKvBytesPerGpu / GiB).toFixed(2)} GiB). Based on the available memory, the estimated maximum model length is ${estimated}. ` +
        'Try increasing `gpu_memory_utilization` or decreasing `max_model_len` when initializing the engine.',
      'engine',
    );
  }
  return {
    geometry, maxModelLen, blockSize: o.blockSize, maxNumSeqs, maxNumBatchedTokens, chunkedPrefill,
    prefixCaching: o.enablePrefixCaching ?? true, tp, pp, dp, worldSize, visibleGpus, gpuName: gpu.name, gpuMemoryBytes,
    weightsBytesPerGpu, availableKvBytesPerGpu, kvBytesPerTokenPerGpu, numGpuBlocks,
  };
}
