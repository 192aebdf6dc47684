/**
 * Model geometry: what the KV cache of a model weighs and what its defaults are, from each model's Hugging Face
 * config.json (num_hidden_layers, num_key_value_heads, head_dim, hidden_size, max_position_embeddings; bf16).
 * vLLM sizes a KV cache page per layer as 2 (K and V) x block_size x num_kv_heads x head_size x dtype bytes
 * (vllm/v1/kv_cache_interface.py AttentionSpec.page_size_bytes), and its default max_model_len is the model's
 * max_position_embeddings (vllm/config/model.py _get_and_verify_max_len). The model is matched by the basename of
 * its name or path; `--sim-model-geometry` picks a preset or gives the numbers for any other model.
 */
import * as z from 'zod';

export const geometrySchema = z.object({
  name: z.string(),
  architecture: z.string().default('Qwen3ForCausalLM'),
  layers: z.number().int().positive(),
  kvHeads: z.number().int().positive(),
  headDim: z.number().int().positive(),
  hiddenSize: z.number().int().positive(),
  /** Parameters, billions (weights memory = params x dtype bytes). */
  paramsB: z.number().positive(),
  maxModelLen: z.number().int().positive(),
  dtypeBytes: z.number().int().positive().default(2),
});
export type ModelGeometry = z.infer<typeof geometrySchema>;

const g = (name: string, layers: number, kvHeads: number, hiddenSize: number, paramsB: number, maxModelLen: number, architecture = 'Qwen3ForCausalLM'): ModelGeometry => ({
  name, architecture, layers, kvHeads, headDim: 128, hiddenSize, paramsB, maxModelLen, dtypeBytes: 2,
});

/** Presets, most specific first (matched against the lower-cased basename). */
export const GEOMETRIES: Array<[RegExp, ModelGeometry]> = [
  [/qwen3-0\.6b/, g('Qwen3-0.6B', 28, 8, 1024, 0.6, 40960)],
  [/qwen3-1\.7b/, g('Qwen3-1.7B', 28, 8, 2048, 1.7, 40960)],
  [/qwen3-4b-(instruct|thinking)-2507/, g('Qwen3-4B-2507', 36, 8, 2560, 4.0, 262144)],
  [/qwen3-4b/, g('Qwen3-4B', 36, 8, 2560, 4.0, 40960)],
  [/qwen3-8b/, g('Qwen3-8B', 36, 8, 4096, 8.2, 40960)],
  [/qwen3-14b/, g('Qwen3-14B', 40, 8, 5120, 14.8, 40960)],
  [/qwen3-32b/, g('Qwen3-32B', 64, 8, 5120, 32.8, 40960)],
  [/llama-3(\.\d)?-8b|llama-3\.1-8b|meta-llama-3(\.\d)?-8b/, g('Llama-3.1-8B', 32, 8, 4096, 8.0, 131072, 'LlamaForCausalLM')],
  [/llama-3(\.\d)?-70b|meta-llama-3(\.\d)?-70b/, g('Llama-3.1-70B', 80, 8, 8192, 70.6, 131072, 'LlamaForCausalLM')],
  [/mistral-7b/, g('Mistral-7B', 32, 8, 4096, 7.2, 32768, 'MistralForCausalLM')],
];

/** An unknown model is simulated as the reference model (Qwen3-4B) with a 40,960-token context. */
export const DEFAULT_GEOMETRY: ModelGeometry = { ...GEOMETRIES[3]![1], name: 'default (Qwen3-4B geometry)' };

export class GeometryError extends Error {}

/** The preset whose name matches, or null. */
export function presetFor(model: string): ModelGeometry | null {
  const base = (model.replace(/\/+$/, '').split('/').pop() ?? model).toLowerCase();
  for (const [re, geo] of GEOMETRIES) if (re.test(base)) return geo;
  return null;
}

/** The geometry of `model`, or of `override` (a preset name, or JSON with the fields of geometrySchema). */
export function geometryFor(model: string, override = ''): ModelGeometry {
  if (override.trim() === '') return presetFor(model) ?? DEFAULT_GEOMETRY;
  if (!override.trim().startsWith('{')) {
    const preset = presetFor(override);
    if (!preset) throw new GeometryError(`unknown model geometry '${override}' (presets: ${GEOMETRIES.map(([, x]) => x.name).join(', ')}; or JSON {"layers":…,"kvHeads":…,"headDim":…,"hiddenSize":…,"paramsB":…,"maxModelLen":…})`);
    return preset;
  }
  let json: unknown;
  try {
    json = JSON.parse(override);
  } catch (e) {
    throw new GeometryError(`model geometry is not valid JSON: ${(e as Error).message}`);
  }
  const r = geometrySchema.safeParse({ name: 'custom', ...(json as object) });
  if (!r.success) throw new GeometryError(`model geometry: ${r.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return r.data;
}

/** Bytes of K and V for one token in one layer: 2 x kv heads x head dim x dtype bytes. */
export function kvBytesPerTokenPerLayer(geo: ModelGeometry): number {
  return 2 * geo.kvHeads * geo.headDim * geo.dtypeBytes;
}

/** Bytes of KV for one token over all layers (Qwen3-4B: 147,456 = 144 KiB). */
export function kvBytesPerToken(geo: ModelGeometry): number {
  return kvBytesPerTokenPerLayer(geo) * geo.layers;
}

/** Bytes of the model's weights. */
export function weightBytes(geo: ModelGeometry): number {
  return geo.paramsB * 1e9 * geo.dtypeBytes;
}
