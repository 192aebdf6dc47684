/**
 * Simulator options: the `vllm serve` command line (honoured flags parsed, every other flag accepted and kept for
 * the `non-default args` log line) plus simulator knobs from `--sim-*` flags and `PD_SIM_*` env vars (flags win).
 */
import {
  DEFAULT_KNOBS, KNOB_NAMES, KnobError, isTrue, knobEnv, knobFlag, resolveKnobs, type KnobName, type SimKnobs,
} from './knobs.js';

export { DEFAULT_KNOBS, DEFAULT_VLLM_VERSION, knobEnv, knobFlag, type SimKnobs } from './knobs.js';

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
  const knobByFlag = new Map<string, KnobName>();
  for (const k of KNOB_NAMES) knobByFlag.set(knobFlag(k).slice(2), k);
  const knobFlags = new Map<KnobName, string>();
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
      zeroLatencyFlag = inline === undefined || isTrue(inline);
      continue;
    }
    const knob = knobByFlag.get(name);
    if (knob) {
      const raw = typeof DEFAULT_KNOBS[knob] === 'boolean' && inline === undefined && !isValue(args[i + 1]) ? '' : takeOne();
      knobFlags.set(knob, raw);
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
  // vLLM also reads the key from VLLM_API_KEY when --api-key is absent.
  if (opts.apiKeys.length === 0 && env.VLLM_API_KEY) opts.apiKeys = [env.VLLM_API_KEY];
  try {
    opts.knobs = resolveKnobs(knobFlags, env, zeroLatencyFlag);
  } catch (e) {
    if (e instanceof KnobError) throw new ArgError(e.message);
    throw e;
  }
  if (opts.nonDefaultArgs.enable_log_requests === true && !knobFlags.has('logRequests') && env[knobEnv('logRequests')] === undefined) opts.knobs.logRequests = true;
  return opts;
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
