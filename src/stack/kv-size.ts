/**
 * How many bytes of KV cache one prompt token costs for the configured model: 2 (K and V) x layers x KV heads x
 * head dim x dtype bytes, as vLLM sizes its KV pages (vllm/v1/kv_cache_interface.py AttentionSpec.page_size_bytes)
 * and as the shared-storage connector writes them to disk. Read from a local model's config.json when there is
 * one, else from a table of common models matched by name (pd and its simulator each keep their own copy).
 */
import { readFile } from 'node:fs/promises';
import { basename, isAbsolute, join } from 'node:path';

export interface KvGeometry {
  /** Where the numbers came from: "config.json", a table entry, or "assumed". */
  source: string;
  layers: number;
  kvHeads: number;
  headDim: number;
  dtypeBytes: number;
}

const TABLE: Array<[RegExp, string, number, number]> = [
  // pattern, name, layers, kv heads (head dim 128, bf16 for all of these)
  [/qwen3-0\.6b/, 'Qwen3-0.6B', 28, 8],
  [/qwen3-1\.7b/, 'Qwen3-1.7B', 28, 8],
  [/qwen3-4b/, 'Qwen3-4B', 36, 8],
  [/qwen3-8b/, 'Qwen3-8B', 36, 8],
  [/qwen3-14b/, 'Qwen3-14B', 40, 8],
  [/qwen3-32b/, 'Qwen3-32B', 64, 8],
  [/llama-3(\.\d)?-8b/, 'Llama-3.x-8B', 32, 8],
  [/llama-3(\.\d)?-70b/, 'Llama-3.x-70B', 80, 8],
  [/mistral-7b/, 'Mistral-7B', 32, 8],
];

const DTYPE_BYTES: Record<string, number> = { float32: 4, float16: 2, bfloat16: 2, float8: 1 };

export function kvBytesPerToken(g: KvGeometry): number {
  return 2 * g.layers * g.kvHeads * g.headDim * g.dtypeBytes;
}

export function geometryFromName(model: string): KvGeometry {
  const name = basename(model).toLowerCase();
  for (const [re, label, layers, kvHeads] of TABLE) {
    if (re.test(name)) return { source: `table (${label})`, layers, kvHeads, headDim: 128, dtypeBytes: 2 };
  }
  return { source: 'assumed (Qwen3-4B geometry; the model is not in pd\'s table)', layers: 36, kvHeads: 8, headDim: 128, dtypeBytes: 2 };
}

/** The model's config.json (num_hidden_layers, num_key_value_heads, head_dim, torch_dtype) when it is local. */
export async function kvGeometry(model: string): Promise<KvGeometry> {
  if (!isAbsolute(model)) return geometryFromName(model);
  try {
    const c = JSON.parse(await readFile(join(model, 'config.json'), 'utf8')) as Record<string, unknown>;
    const num = (k: string): number | undefined => { const v = c[k]; return typeof v === 'number' ? v : undefined; };
    const layers = num('num_hidden_layers');
    const heads = num('num_attention_heads');
    const kvHeads = num('num_key_value_heads') ?? heads;
    const hidden = num('hidden_size');
    const headDim = num('head_dim') ?? (heads && hidden ? hidden / heads : undefined);
    if (!layers || !kvHeads || !headDim) return geometryFromName(model);
    const dtype = typeof c.torch_dtype === 'string' ? c.torch_dtype : 'bfloat16';
    return { source: 'config.json', layers, kvHeads, headDim, dtypeBytes: DTYPE_BYTES[dtype] ?? 2 };
  } catch {
    return geometryFromName(model);
  }
}
