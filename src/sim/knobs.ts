/**
 * The simulator's own knobs, as ONE zod schema: the type (z.infer), the defaults, the validation, the flag and
 * environment names (`--sim-<kebab>` / `PD_SIM_<SNAKE>`), the `--help` lines and the docs/simulator.md table all
 * come from it. Knobs are set by `--sim-*` flags or `PD_SIM_*` environment variables; a flag wins over the env.
 */
import * as z from 'zod';
import { SIM_VLLM_VERSION } from './versions.js';

/** Metadata on a knob: `timing` knobs are zeroed by --sim-zero-latency unless set explicitly. */
interface KnobMeta {
  timing?: boolean;
  /** The value zero-latency mode gives a timing knob (default 0). */
  zero?: string;
  /** How the default reads in docs when the raw value says little (e.g. "off"). */
  shownDefault?: string;
}

const num = (def: number, doc: string, meta: KnobMeta = {}) => z.number().min(0).default(def).describe(doc).meta({ ...meta });
const int = (def: number, doc: string, meta: KnobMeta = {}) => z.number().int().min(0).default(def).describe(doc).meta({ ...meta });
const str = (def: string, doc: string, meta: KnobMeta = {}) => z.string().default(def).describe(doc).meta({ ...meta });
const bool = (def: boolean, doc: string, meta: KnobMeta = {}) => z.boolean().default(def).describe(doc).meta({ ...meta });

/** The default reported vLLM version (see versions.ts for what each version changes). */
export const DEFAULT_VLLM_VERSION = SIM_VLLM_VERSION;

export const knobsSchema = z.object({
  startupDelay: num(0.2, 'seconds before the port accepts connections (real engines: 20-60 s)', { timing: true }),
  prefillBaseMs: num(30, 'constant part of the prefill, ms (per request; does not slow the batch)', { timing: true }),
  prefillMsPerToken: num(0.02, 'prefill ms per uncached prompt token, batch work (0.02 = 50k tokens/s)', { timing: true }),
  itlMs: num(9, 'inter-token latency in ms with one running request', { timing: true }),
  jitter: num(0.1, 'relative jitter of every step, 0.1 = ±10%', { timing: true }),
  timeFactorUnderLoad: num(5, 'decode step-time multiplier at max-num-seqs running requests, linear from 1'),
  hbmGbps: num(3350, 'GPU memory bandwidth, GB/s: decode reads the KV of every running token (context cost)'),
  allReduceUs: num(10, 'one tensor-parallel all-reduce, µs (two per layer per step when TP > 1)', { timing: true }),
  ppHopMs: num(0.2, 'one pipeline-parallel stage boundary, ms (per step when PP > 1)', { timing: true }),
  storageBandwidth: z.string().regex(/^(auto|inf|\d+(\.\d+)?)$/, 'expected a number of MB/s, auto or inf').default('auto').describe( 'shared-storage KV save/load bandwidth, MB/s: a number, auto (measured on the storage path at start-up) or inf').meta({ timing: true, zero: 'inf' }),
  kvLinkGbps: num(25, 'GPU-to-GPU KV transfer bandwidth between engines (NIXL pull, P2P NCCL send), GB/s (0 = free)', { timing: true }),
  p2pRecvTimeoutMs: num(2000, 'P2P NCCL consumer: how long a request waits for its KV from the producer its id names before recomputing, ms'),
  kvLoadFailRate: z.number().min(0).max(1).default(0).describe('fault: fraction 0..1 of external KV loads (NIXL pulls, P2P receives) that fail').meta({}),
  modelGeometry: str('', 'model geometry: a preset (qwen3-0.6b … qwen3-32b, llama-3.1-8b, llama-3.1-70b, mistral-7b) or JSON {layers,kvHeads,headDim,hiddenSize,paramsB,maxModelLen}; empty = from the model name', { shownDefault: 'from the model name' }),
  kvLayers: int(0, 'layer files per KV folder (0 = the model\'s layers)'),
  kvLayerBytes: int(0, 'bytes of each <layer>.safetensors file (0 = the real size: tokens x 2 x kv heads x head dim x 2)'),
  gpuMemoryGib: num(80, 'memory of each simulated GPU, GiB (KV pool and batch defaults follow it)'),
  gpuName: str('NVIDIA H100 80GB HBM3', 'name of the simulated GPU (an A100 gets the smaller batch defaults, as in vLLM)'),
  gpuCount: int(8, 'GPUs on the simulated node when CUDA_VISIBLE_DEVICES is unset'),
  eosAfter: int(0, 'answer length when ignore_eos is false; 0 = 32..256 derived from the prompt'),
  vllmVersion: str(DEFAULT_VLLM_VERSION, 'vLLM version reported by --version, /version and the logs (behaviour follows it)'),
  failStartup: str('', 'fail start-up after the delay: cuda-oom | model-not-found | <any message> (exit 1)', { shownDefault: 'off' }),
  crashAfterRequests: int(0, 'die after N generation requests; /health turns 503 first, exit 1 (0 = never)'),
  crashAfterSeconds: num(0, 'die T seconds after start-up; /health turns 503 first, exit 1 (0 = never)'),
  errorStatus: z
    .number()
    .int()
    .refine((s) => [400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504].includes(s), {
      message: 'must be one of 400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504',
    })
    .default(500)
    .describe('HTTP status of injected errors: 400, 401, 404, 429, 500, 503, …')
    .meta({}),
  errorRate: z.number().min(0).max(1).default(0).describe('fraction 0..1 of generation requests answered with --sim-error-status').meta({}),
  errorEvery: int(0, 'every Nth generation request is answered with --sim-error-status (0 = never)'),
  stallMs: num(0, 'stall before the first token, ms'),
  cutAfter: int(0, 'cut every stream after N tokens, without [DONE] (0 = never)'),
  slowdown: num(1, 'multiply every latency by this factor'),
  seed: int(0, 'seed of the simulator randomness: jitter, error rate'),
  logRequests: bool(false, 'log one line per received request (also on with --enable-log-requests)'),
});

export type SimKnobs = z.infer<typeof knobsSchema>;
export type KnobName = keyof SimKnobs;

export const KNOB_NAMES = Object.keys(knobsSchema.shape) as KnobName[];
export const DEFAULT_KNOBS: SimKnobs = knobsSchema.parse({});

export function knobFlag(k: KnobName): string {
  return '--sim-' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}
export function knobEnv(k: KnobName): string {
  return 'PD_SIM_' + k.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}

/** The zero-latency switch: not a knob of its own (it changes other knobs' defaults). */
export const ZERO_LATENCY_FLAG = '--sim-zero-latency';
export const ZERO_LATENCY_ENV = 'PD_SIM_ZERO_LATENCY';

export interface KnobInfo {
  name: KnobName;
  flag: string;
  env: string;
  type: 'number' | 'integer' | 'string' | 'boolean';
  default: unknown;
  shownDefault: string;
  doc: string;
  timing: boolean;
  zero: unknown;
}

let infoCache: KnobInfo[] | null = null;

/** Every knob with its flag, env var, JSON type, default and meaning, read from the schema. */
export function knobInfos(): KnobInfo[] {
  if (infoCache) return infoCache;
  const props = (z.toJSONSchema(knobsSchema, { io: 'input' }) as { properties: Record<string, Record<string, unknown>> }).properties;
  infoCache = KNOB_NAMES.map((name) => {
    const p = props[name]!;
    const def = p.default;
    return {
      name,
      flag: knobFlag(name),
      env: knobEnv(name),
      type: p.type as KnobInfo['type'],
      default: def,
      shownDefault: typeof p.shownDefault === 'string' ? p.shownDefault : String(def),
      doc: typeof p.description === 'string' ? p.description : '',
      timing: p.timing === true,
      zero: typeof p.zero === 'string' ? p.zero : 0,
    };
  });
  return infoCache;
}

/** A knob's metadata, read from the schema's registry (cheap: no JSON Schema conversion). */
function metaOf(k: KnobName): KnobMeta {
  return (knobsSchema.shape[k].meta() ?? {}) as KnobMeta;
}

/** The knobs that --sim-zero-latency sets to 0. */
export function timingKnobs(): KnobName[] {
  return KNOB_NAMES.filter((k) => metaOf(k).timing === true);
}

const TRUE_RE = /^(1|true|yes|on)$/i;
const FALSE_RE = /^(0|false|no|off)$/i;

/** A raw flag/env string turned into the knob's JSON type; null when it cannot be read as that type. */
export function knobValueFromString(k: KnobName, raw: string): unknown {
  switch (typeof DEFAULT_KNOBS[k]) {
    case 'string':
      return raw;
    case 'boolean':
      if (raw === '' || TRUE_RE.test(raw)) return true;
      if (FALSE_RE.test(raw)) return false;
      return null;
    default: {
      const n = Number(raw);
      return raw.trim() === '' || !Number.isFinite(n) ? null : n;
    }
  }
}

export function isTrue(raw: string | undefined): boolean {
  return raw !== undefined && TRUE_RE.test(raw);
}

/** One line per knob for `--help`. */
export function knobHelpLines(): string[] {
  return knobInfos().map((k) => `  ${k.flag} / ${k.env}: ${k.doc} (default ${k.shownDefault === '' ? '""' : k.shownDefault})`);
}

/** The docs/simulator.md knob table (between its generated-table markers), generated from the schema. */
export function knobsMarkdown(): string {
  const esc = (s: string): string => s.replace(/\|/g, '\\|');
  const rows = [
    '| flag | env | type | default | meaning |',
    '| --- | --- | --- | --- | --- |',
    `| \`${ZERO_LATENCY_FLAG}\` | \`${ZERO_LATENCY_ENV}\` | boolean | off | every timing knob 0 unless set explicitly (${timingKnobs().map((k) => `\`${knobFlag(k)}\``).join(', ')}) |`,
    ...knobInfos().map(
      (k) => `| \`${k.flag}\` | \`${k.env}\` | ${k.type} | ${k.shownDefault === '' ? '""' : `\`${k.shownDefault}\``} | ${esc(k.doc)} |`,
    ),
  ];
  return rows.join('\n') + '\n';
}

/** A knob value that does not fit the schema; the message names the flag or env var it came from. */
export class KnobError extends Error {}

/**
 * The knobs from raw `--sim-*` flag values (by knob) and `PD_SIM_*` env vars; a flag wins over the env. With
 * zero latency (flag or PD_SIM_ZERO_LATENCY), every timing knob not set explicitly is 0.
 */
export function resolveKnobs(flags: ReadonlyMap<KnobName, string>, env: NodeJS.ProcessEnv, zeroLatencyFlag: boolean): SimKnobs {
  const raw: Partial<Record<KnobName, unknown>> = {};
  const source = new Map<KnobName, string>();
  for (const k of KNOB_NAMES) {
    const fromFlag = flags.get(k);
    const fromEnv = env[knobEnv(k)];
    const [text, where] = fromFlag !== undefined ? [fromFlag, `argument ${knobFlag(k)}`] : fromEnv !== undefined && fromEnv !== '' ? [fromEnv, `environment ${knobEnv(k)}`] : [undefined, ''];
    if (text === undefined) continue;
    const v = knobValueFromString(k, text);
    if (v === null) throw new KnobError(`${where}: invalid value '${text}' (expected ${typeof DEFAULT_KNOBS[k] === 'boolean' ? 'boolean' : 'number'})`);
    raw[k] = v;
    source.set(k, where);
  }
  if (zeroLatencyFlag || isTrue(env[ZERO_LATENCY_ENV]))
    for (const k of timingKnobs()) if (!source.has(k)) raw[k] = metaOf(k).zero ?? 0;
  const r = knobsSchema.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0]!;
    const k = issue.path[0] as KnobName;
    throw new KnobError(`${source.get(k) ?? knobFlag(k)}: invalid value '${String(raw[k])}' (${issue.message})`);
  }
  return r.data;
}
