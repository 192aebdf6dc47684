/**
 * Simulator options: the `vllm serve` command line (honoured flags parsed, every other flag accepted and kept for
 * the `non-default args` log line) plus simulator knobs from `--sim-*` flags and `PD_SIM_*` env vars (flags win).
 */
export const DEFAULT_VLLM_VERSION = '0.11.0';

export interface SimKnobs {
  /** Seconds before the port accepts connections (real engines: 20-60 s). */
  startupDelay: number;
  /** Constant part of a request's prefill (its own overhead; does not slow the batch), ms. */
  prefillBaseMs: number;
  /** Prefill cost per uncached prompt token, ms. */
  prefillMsPerToken: number;
  /** Decode step (inter-token latency) with one running request, ms. */
  itlMs: number;
  /** Relative jitter applied to every step, 0.1 = ±10 %. */
  jitter: number;
  /** Step time multiplier when max-num-seqs requests run (linear from 1 at one request). */
  timeFactorUnderLoad: number;
  /** Cost of saving/loading KV per token through shared storage (a NIXL pull costs a tenth), ms. */
  kvLoadMsPerToken: number;
  /** Bytes of each placeholder `<layer>.safetensors` file. */
  kvLayerBytes: number;
  /** Number of layers (files per KV folder). */
  kvLayers: number;
  /** Natural answer length when ignore_eos is false; 0 = derived from the prompt (32..256). */
  eosAfter: number;
  /** Reported vLLM version (connector naming follows it). */
  vllmVersion: string;
  /** Fault: fail start-up with this error kind (cuda-oom, model-not-found, or any text). */
  failStartup: string;
  /** Fault: die after serving this many requests (0 = never). */
  crashAfterRequests: number;
  /** Fault: die this many seconds after start-up (0 = never). */
  crashAfterSeconds: number;
  /** Fault: status returned by injected errors. */
  errorStatus: number;
  /** Fault: fraction of generation requests answered with errorStatus. */
  errorRate: number;
  /** Fault: every Nth generation request is answered with errorStatus (0 = never). */
  errorEvery: number;
  /** Fault: extra wait before the first token, ms. */
  stallMs: number;
  /** Fault: cut streams after this many tokens (0 = never). */
  cutAfter: number;
  /** Fault: multiply every latency by this. */
  slowdown: number;
  /** Seed of the simulator's own randomness (jitter, error rate). */
  seed: number;
  /** Print one INFO line per request received (vLLM's --enable-log-requests style). */
  logRequests: boolean;
}

export const DEFAULT_KNOBS: SimKnobs = {
  startupDelay: 0.2,
  prefillBaseMs: 30,
  prefillMsPerToken: 0.02,
  itlMs: 9,
  jitter: 0.1,
  timeFactorUnderLoad: 5,
  kvLoadMsPerToken: 0.05,
  kvLayerBytes: 1024,
  kvLayers: 36,
  eosAfter: 0,
  vllmVersion: DEFAULT_VLLM_VERSION,
  failStartup: '',
  crashAfterRequests: 0,
  crashAfterSeconds: 0,
  errorStatus: 500,
  errorRate: 0,
  errorEvery: 0,
  stallMs: 0,
  cutAfter: 0,
  slowdown: 1,
  seed: 0,
  logRequests: false,
};

/** Knob documentation: flag, env var, meaning (shown by `--help` and in the README). */
export const KNOB_DOCS: Array<[keyof SimKnobs, string]> = [
  ['startupDelay', 'seconds before the port accepts connections (default 0.2)'],
  ['prefillBaseMs', 'constant part of the prefill (per request, does not slow the batch), ms (default 30)'],
  ['prefillMsPerToken', 'prefill ms per uncached prompt token, batch work (default 0.02 = 50k tokens/s)'],
  ['itlMs', 'inter-token latency in ms with one running request (default 9)'],
  ['jitter', 'relative jitter of every step, 0.1 = ±10% (default 0.1)'],
  ['timeFactorUnderLoad', 'step-time multiplier at max-num-seqs running requests, linear from 1 (default 5)'],
  ['kvLoadMsPerToken', 'ms per token to save/load KV through shared storage; a NIXL pull costs a tenth (default 0.05)'],
  ['kvLayerBytes', 'size of each placeholder <layer>.safetensors file (default 1024)'],
  ['kvLayers', 'number of layer files per KV folder (default 36)'],
  ['eosAfter', 'answer length when ignore_eos is false; 0 = 32..256 derived from the prompt (default 0)'],
  ['vllmVersion', 'vLLM version reported by --version, /version and the logs (default 0.11.0)'],
  ['failStartup', 'fail start-up: cuda-oom | model-not-found | <any message> (default off)'],
  ['crashAfterRequests', 'die after N generation requests; /health turns 503 first (default 0 = never)'],
  ['crashAfterSeconds', 'die T seconds after start-up; /health turns 503 first (default 0 = never)'],
  ['errorStatus', 'HTTP status of injected errors: 400|401|404|429|500|503 (default 500)'],
  ['errorRate', 'fraction 0..1 of generation requests answered with --sim-error-status (default 0)'],
  ['errorEvery', 'every Nth generation request is answered with --sim-error-status (default 0 = never)'],
  ['stallMs', 'stall before the first token, ms (default 0)'],
  ['cutAfter', 'cut every stream after N tokens without [DONE] (default 0 = never)'],
  ['slowdown', 'multiply every latency by this factor (default 1)'],
  ['seed', 'seed of the simulator randomness: jitter, error rate (default 0)'],
  ['logRequests', 'log one line per received request (default false)'],
];

export function knobFlag(k: keyof SimKnobs): string {
  return '--sim-' + k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase());
}
export function knobEnv(k: keyof SimKnobs): string {
  return 'PD_SIM_' + k.replace(/[A-Z]/g, (c) => '_' + c).toUpperCase();
}

export interface KvTransferConfig {
  kv_connector?: string | null;
  engine_id?: string | null;
  kv_role?: string | null;
  kv_rank?: number | null;
  kv_parallel_size?: number;
  kv_buffer_size?: number;
  kv_buffer_device?: string;
  kv_ip?: string;
  kv_port?: number;
  kv_connector_extra_config?: Record<string, unknown>;
  kv_connector_module_path?: string | null;
  [k: string]: unknown;
}

export interface SimOptions {
  model: string;
  servedModelNames: string[];
  host: string | null;
  port: number;
  apiKeys: string[];
  maxModelLen: number;
  blockSize: number;
  maxNumSeqs: number;
  seed: number;
  kvTransferConfig: KvTransferConfig | null;
  /** Flags given on the command line (vLLM's `non-default args` line), snake_case → value. */
  nonDefaultArgs: Record<string, unknown>;
  knobs: SimKnobs;
  /** --version was asked. */
  printVersion: boolean;
  /** --help was asked. */
  printHelp: boolean;
}

/** A command-line mistake, reported like argparse: `vllm serve: error: ...`, exit 2. */
export class ArgError extends Error {}

/** vLLM boolean flags (store_true / BooleanOptionalAction) that take no value. */
const BOOLEAN_FLAGS = new Set([
  'trust-remote-code', 'enforce-eager', 'enable-prefix-caching', 'enable-chunked-prefill', 'disable-log-stats',
  'disable-log-requests', 'enable-log-requests', 'disable-custom-all-reduce', 'enable-lora', 'enable-auto-tool-choice',
  'disable-frontend-multiprocessing', 'disable-fastapi-docs', 'enable-request-id-headers', 'enable-prompt-tokens-details',
  'enable-server-load-tracking', 'enable-force-include-usage', 'disable-uvicorn-access-log', 'headless', 'api-server-count',
  'async-scheduling', 'enable-expert-parallel', 'skip-tokenizer-init', 'enable-sleep-mode', 'calculate-kv-scales',
  'disable-sliding-window', 'disable-cascade-attn', 'return-tokens-as-token-ids', 'enable-log-outputs',
  'enable-tokenizer-info-endpoint', 'allow-credentials', 'use-v2-block-manager', 'enable-eplb', 'data-parallel-hybrid-lb',
  'data-parallel-external-lb', 'fully-sharded-loras', 'disable-mm-preprocessor-cache', 'enable-dbo', 'ray-workers-use-nsight',
  'disable-hybrid-kv-cache-manager', 'enable-mfu-metrics', 'enable-prompt-embeds', 'multi-step-stream-outputs',
]);
BOOLEAN_FLAGS.delete('api-server-count');
const MULTI_VALUE_FLAGS = new Set(['served-model-name', 'api-key', 'allowed-origins', 'middleware', 'lora-modules']);

const snake = (s: string): string => s.replace(/-/g, '_');

function num(flag: string, v: string, int = true): number {
  const n = Number(v);
  if (v.trim() === '' || !Number.isFinite(n) || (int && !Number.isInteger(n)))
    throw new ArgError(`argument --${flag}: invalid ${int ? 'int' : 'float'} value: '${v}'`);
  return n;
}

function knobFromString(k: keyof SimKnobs, raw: string, source: string): SimKnobs[keyof SimKnobs] {
  const def = DEFAULT_KNOBS[k];
  if (typeof def === 'string') return raw;
  if (typeof def === 'boolean') return raw === '' || /^(1|true|yes|on)$/i.test(raw);
  const n = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(n) || n < 0)
    throw new ArgError(`${source}: invalid value '${raw}' (expected a non-negative number)`);
  return n;
}

/** Parse a Python-ish `--kv-transfer-config` JSON (vLLM accepts JSON only). */
export function parseKvTransferConfig(raw: string): KvTransferConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new ArgError(
      `argument --kv-transfer-config: Value ${raw} cannot be converted to <class 'vllm.config.kv_transfer.KVTransferConfig'>. ` +
        `(invalid JSON: ${(e as Error).message})`,
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new ArgError(
      `argument --kv-transfer-config: Value ${raw} cannot be converted to <class 'vllm.config.kv_transfer.KVTransferConfig'>. ` +
        '(expected a JSON object)',
    );
  return parsed as KvTransferConfig;
}

/**
 * Parse `serve MODEL [flags]` (or `[flags]` with `--model`). `--flag value` and `--flag=value` both work; unknown
 * flags are accepted (a following non-flag token is taken as their value unless the flag is a known boolean).
 */
export function parseSimArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): SimOptions {
  const args = [...argv];
  if (args[0] === 'serve') args.shift();
  const opts: SimOptions = {
    model: 'Qwen/Qwen3-0.6B',
    servedModelNames: [],
    host: null,
    port: 8000,
    apiKeys: [],
    maxModelLen: 0,
    blockSize: 16,
    maxNumSeqs: 256,
    seed: 0,
    kvTransferConfig: null,
    nonDefaultArgs: {},
    knobs: { ...DEFAULT_KNOBS },
    printVersion: false,
    printHelp: false,
  };
  let positionalModel: string | null = null;
  const knobByFlag = new Map<string, keyof SimKnobs>();
  for (const k of Object.keys(DEFAULT_KNOBS) as Array<keyof SimKnobs>) knobByFlag.set(knobFlag(k).slice(2), k);
  const knobsFromFlags = new Set<keyof SimKnobs>();
  let zeroLatencyFlag = false;

  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--version' || a === '-v') {
      opts.printVersion = true;
      continue;
    }
    if (a === '--help' || a === '-h') {
      opts.printHelp = true;
      continue;
    }
    if (!a.startsWith('--')) {
      if (positionalModel === null) {
        positionalModel = a;
        opts.nonDefaultArgs.model_tag = a;
        continue;
      }
      throw new ArgError(`unrecognized arguments: ${a}`);
    }
    const eq = a.indexOf('=');
    const name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
    const inline = eq >= 0 ? a.slice(eq + 1) : undefined;
    const isValue = (t: string | undefined): t is string => t !== undefined && (!t.startsWith('-') || /^-\d/.test(t));
    const takeOne = (): string => {
      if (inline !== undefined) return inline;
      const next = args[i + 1];
      if (!isValue(next)) throw new ArgError(`argument --${name}: expected one argument`);
      i++;
      return next;
    };
    const takeMany = (): string[] => {
      if (inline !== undefined) return [inline];
      const vals: string[] = [];
      while (isValue(args[i + 1])) vals.push(args[++i]!);
      if (vals.length === 0) throw new ArgError(`argument --${name}: expected at least one argument`);
      return vals;
    };

    if (name === 'sim-zero-latency') {
      zeroLatencyFlag = inline === undefined || /^(1|true|yes|on)$/i.test(inline);
      continue;
    }
    const knob = knobByFlag.get(name);
    if (knob) {
      const def = DEFAULT_KNOBS[knob];
      const raw = typeof def === 'boolean' && inline === undefined && !isValue(args[i + 1]) ? '' : takeOne();
      (opts.knobs as unknown as Record<string, unknown>)[knob] = knobFromString(knob, raw, `argument --${name}`);
      knobsFromFlags.add(knob);
      continue;
    }
    switch (name) {
      case 'model':
        opts.model = takeOne();
        opts.nonDefaultArgs.model = opts.model;
        continue;
      case 'host':
        opts.host = takeOne();
        opts.nonDefaultArgs.host = opts.host;
        continue;
      case 'port':
        opts.port = num(name, takeOne());
        if (opts.port < 0 || opts.port > 65535) throw new ArgError(`argument --port: invalid port ${opts.port}`);
        opts.nonDefaultArgs.port = opts.port;
        continue;
      case 'served-model-name':
        opts.servedModelNames = takeMany();
        opts.nonDefaultArgs.served_model_name = opts.servedModelNames;
        continue;
      case 'api-key':
        opts.apiKeys = takeMany();
        opts.nonDefaultArgs.api_key = opts.apiKeys.map(() => '******');
        continue;
      case 'max-model-len': {
        const v = takeOne();
        const m = /^(\d+(?:\.\d+)?)([kKmM]?)$/.exec(v);
        if (!m) throw new ArgError(`argument --max-model-len: Invalid value: '${v}'`);
        const mult = m[2] === '' ? 1 : m[2] === 'k' ? 1000 : m[2] === 'K' ? 1024 : m[2] === 'm' ? 1e6 : 1024 * 1024;
        opts.maxModelLen = Math.floor(Number(m[1]) * mult);
        opts.nonDefaultArgs.max_model_len = opts.maxModelLen;
        continue;
      }
      case 'block-size':
        opts.blockSize = num(name, takeOne());
        if (opts.blockSize <= 0) throw new ArgError(`argument --block-size: invalid choice: ${opts.blockSize}`);
        opts.nonDefaultArgs.block_size = opts.blockSize;
        continue;
      case 'max-num-seqs':
        opts.maxNumSeqs = num(name, takeOne());
        if (opts.maxNumSeqs <= 0) throw new ArgError('argument --max-num-seqs: must be positive');
        opts.nonDefaultArgs.max_num_seqs = opts.maxNumSeqs;
        continue;
      case 'seed':
        opts.seed = num(name, takeOne());
        opts.nonDefaultArgs.seed = opts.seed;
        continue;
      case 'kv-transfer-config':
        opts.kvTransferConfig = parseKvTransferConfig(takeOne());
        opts.nonDefaultArgs.kv_transfer_config = opts.kvTransferConfig;
        continue;
      default:
        break;
    }
    if (BOOLEAN_FLAGS.has(name) || name.startsWith('no-')) {
      opts.nonDefaultArgs[snake(name.startsWith('no-') ? name.slice(3) : name)] = inline ?? !name.startsWith('no-');
      continue;
    }
    if (MULTI_VALUE_FLAGS.has(name)) {
      opts.nonDefaultArgs[snake(name)] = takeMany();
      continue;
    }
    // Unknown flag: take a value when one follows, otherwise treat it as a switch.
    if (inline !== undefined) opts.nonDefaultArgs[snake(name)] = inline;
    else if (isValue(args[i + 1])) opts.nonDefaultArgs[snake(name)] = args[++i];
    else opts.nonDefaultArgs[snake(name)] = true;
  }
  if (positionalModel !== null) {
    if (opts.nonDefaultArgs.model !== undefined && opts.nonDefaultArgs.model !== positionalModel)
      throw new ArgError(`model specified twice: positional '${positionalModel}' and --model '${opts.model}'`);
    opts.model = positionalModel;
    opts.nonDefaultArgs.model = positionalModel;
  }
  if (opts.servedModelNames.length === 0) opts.servedModelNames = [opts.model];
  if (opts.nonDefaultArgs.enable_log_requests === true && !knobsFromFlags.has('logRequests')) opts.knobs.logRequests = true;
  // vLLM also reads the key from VLLM_API_KEY when --api-key is absent.
  if (opts.apiKeys.length === 0 && env.VLLM_API_KEY) opts.apiKeys = [env.VLLM_API_KEY];

  // Env knobs (flags win).
  for (const k of Object.keys(DEFAULT_KNOBS) as Array<keyof SimKnobs>) {
    if (knobsFromFlags.has(k)) continue;
    const raw = env[knobEnv(k)];
    if (raw !== undefined && raw !== '')
      (opts.knobs as unknown as Record<string, unknown>)[k] = knobFromString(k, raw, `environment ${knobEnv(k)}`);
  }
  const zeroEnv = env.PD_SIM_ZERO_LATENCY;
  if (zeroLatencyFlag || (zeroEnv !== undefined && /^(1|true|yes|on)$/i.test(zeroEnv))) applyZeroLatency(opts.knobs, knobsFromFlags, env);
  if (opts.knobs.errorRate > 1) throw new ArgError(`--sim-error-rate must be between 0 and 1 (got ${opts.knobs.errorRate})`);
  if (![400, 401, 403, 404, 408, 409, 422, 429, 500, 502, 503, 504].includes(opts.knobs.errorStatus))
    throw new ArgError(`--sim-error-status must be one of 400, 401, 404, 429, 500, 503 (got ${opts.knobs.errorStatus})`);
  return opts;
}

/** Zero-latency mode: every timing knob 0 unless explicitly set. */
function applyZeroLatency(knobs: SimKnobs, fromFlags: Set<keyof SimKnobs>, env: NodeJS.ProcessEnv): void {
  const timing: Array<keyof SimKnobs> = ['startupDelay', 'prefillBaseMs', 'prefillMsPerToken', 'itlMs', 'jitter', 'kvLoadMsPerToken'];
  for (const k of timing) if (!fromFlags.has(k) && env[knobEnv(k)] === undefined) (knobs as unknown as Record<string, number>)[k] = 0;
}

/** True when no request ever waits on a timer (all timing knobs 0 and no stall). */
export function isZeroLatency(k: SimKnobs): boolean {
  return k.prefillBaseMs === 0 && k.prefillMsPerToken === 0 && k.itlMs === 0 && k.kvLoadMsPerToken === 0 && k.stallMs === 0;
}

/** Compare dotted versions: negative when a < b. */
export function compareVersions(a: string, b: string): number {
  const pa = a.split(/[.+-]/).map((x) => parseInt(x, 10) || 0);
  const pb = b.split(/[.+-]/).map((x) => parseInt(x, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length, 3); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}
