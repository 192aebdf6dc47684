/**
 * The `vllm serve` command line, parsed like vLLM's FlexibleArgumentParser (vllm/utils/argparse_utils.py) does:
 * `--flag value`, `--flag=value`, underscores or dashes, `--bool` / `--no-bool`, `-tp 2`, `-O3`,
 * `--json-flag.key value`. Value errors exit 2 with the serve subparser's usage; flags vLLM does not have are
 * collected and refused at the end as "unrecognized arguments" with the top-level usage (argparse's
 * parse_args), before any log line. Simulator knobs come from `--sim-*` flags and `PD_SIM_*` env (knobs.ts).
 */
import { DEFAULT_KNOBS, KNOB_NAMES, KnobError, isTrue, knobEnv, knobFlag, resolveKnobs, type KnobName, type SimKnobs } from './knobs.js';
import { KvTransferConfigError, parseKvTransferConfig, type KvTransferConfig } from './kv-transfer-config.js';
import { ALIASES, BOOLEAN_FLAGS, JSON_FLAGS, MULTI_FLAGS, VALUE_FLAGS } from './vllm-flags.js';

export { DEFAULT_KNOBS, DEFAULT_VLLM_VERSION, knobEnv, knobFlag, type SimKnobs } from './knobs.js';
export { compareVersions } from './versions.js';
export { parseKvTransferConfig, type KvTransferConfig } from './kv-transfer-config.js';

export interface SimOptions {
  model: string;
  servedModelNames: string[];
  host: string | null;
  port: number;
  apiKeys: string[];
  /** --max-model-len; null = the model's. */
  maxModelLen: number | null;
  /** --max-model-len -1 / auto: the longest that fits in the KV cache, at most the model's. */
  maxModelLenAuto: boolean;
  blockSize: number;
  /** null = vLLM's default for the GPU class (get_batch_defaults). */
  maxNumSeqs: number | null;
  maxNumBatchedTokens: number | null;
  gpuMemoryUtilization: number;
  /** null = the version's default (on). */
  enablePrefixCaching: boolean | null;
  enableChunkedPrefill: boolean | null;
  tensorParallelSize: number;
  pipelineParallelSize: number;
  dataParallelSize: number;
  seed: number;
  kvTransferConfig: KvTransferConfig | null;
  /** Flags given on the command line (vLLM's `non-default args` line), snake_case → value. */
  nonDefaultArgs: Record<string, unknown>;
  knobs: SimKnobs;
  printVersion: boolean;
  printHelp: boolean;
}

/**
 * A command-line mistake, reported like argparse: `usage: …` then `<prog>: error: <message>`, exit 2. `top` errors
 * (unrecognized arguments) come from the top-level `vllm` parser, the others from the `vllm serve` subparser.
 */
export class ArgError extends Error {
  constructor(message: string, readonly level: 'serve' | 'top' = 'serve') {
    super(message);
  }
}

const VALUE = new Set(VALUE_FLAGS);
const BOOL = new Set(BOOLEAN_FLAGS);
const MULTI = new Set(MULTI_FLAGS);
const JSON_SET = new Set(JSON_FLAGS);
const snake = (s: string): string => s.replace(/-/g, '_');

function int(flag: string, v: string): number {
  if (!/^\s*[+-]?\d+\s*$/.test(v)) throw new ArgError(`argument --${flag}: invalid int value: '${v}'`);
  return Number(v);
}

function float(flag: string, v: string): number {
  const n = Number(v);
  if (v.trim() === '' || Number.isNaN(n)) throw new ArgError(`argument --${flag}: invalid float value: '${v}'`);
  return n;
}

/**
 * vLLM's human_readable_int (vllm/utils/argparse_utils.py): k/m/g/t are decimal (1k = 1000, 25.6k allowed),
 * K/M/G/T binary (1K = 1024, integers only), plain integers otherwise.
 */
export function humanReadableInt(flag: string, value: string, typeName = 'human_readable_int'): number {
  const v = value.trim();
  const m = /^(\d+(?:\.\d+)?)([kKmMgGtT])$/.exec(v);
  if (m) {
    const [, num, suffix] = m as unknown as [string, string, string];
    const dec: Record<string, number> = { k: 1e3, m: 1e6, g: 1e9, t: 1e12 };
    if (suffix in dec) return Math.trunc(Number(num) * dec[suffix]!);
    if (!/^\d+$/.test(num))
      throw new ArgError(`argument --${flag}: Decimals are not allowed with binary suffixes like ${suffix}. Did you mean to use ${num}${suffix.toLowerCase()} instead?`);
    return Number(num) * 2 ** (10 * ('KMGT'.indexOf(suffix) + 1));
  }
  if (!/^[+-]?\d+$/.test(v)) throw new ArgError(`argument --${flag}: invalid ${typeName} value: '${value}'`);
  return Number(v);
}

/** --max-model-len: human_readable_int_or_auto (-1 and "auto" mean the model's own length). */
export function parseMaxModelLen(value: string): number | null {
  if (value.trim().toLowerCase() === 'auto' || value.trim() === '-1') return null;
  return humanReadableInt('max-model-len', value, 'human_readable_int_or_auto');
}

function setPath(obj: Record<string, unknown>, path: string[], value: unknown): void {
  let cur = obj;
  for (const k of path.slice(0, -1)) {
    if (typeof cur[k] !== 'object' || cur[k] === null) cur[k] = {};
    cur = cur[k] as Record<string, unknown>;
  }
  cur[path.at(-1)!] = value;
}

/** Parse `serve MODEL [flags]` (or `[flags]` with `--model`). Throws ArgError. */
export function parseSimArgs(argv: readonly string[], env: NodeJS.ProcessEnv = process.env): SimOptions {
  const args = [...argv];
  if (args[0] === 'serve') args.shift();
  const opts: SimOptions = {
    model: 'Qwen/Qwen3-0.6B', servedModelNames: [], host: null, port: 8000, apiKeys: [], maxModelLen: null, maxModelLenAuto: false, blockSize: 16,
    maxNumSeqs: null, maxNumBatchedTokens: null, gpuMemoryUtilization: 0.9, enablePrefixCaching: null, enableChunkedPrefill: null,
    tensorParallelSize: 1, pipelineParallelSize: 1, dataParallelSize: 1, seed: 0, kvTransferConfig: null,
    nonDefaultArgs: {}, knobs: { ...DEFAULT_KNOBS }, printVersion: false, printHelp: false,
  };
  let positionalModel: string | null = null;
  const knobByFlag = new Map<string, KnobName>(KNOB_NAMES.map((k) => [knobFlag(k).slice(2), k]));
  const knobFlags = new Map<KnobName, string>();
  let zeroLatencyFlag = false;
  const unrecognized: string[] = [];
  const jsonDotted = new Map<string, Record<string, unknown>>();
  const jsonWhole = new Map<string, string>();
  const isValue = (t: string | undefined): t is string => t !== undefined && (!t.startsWith('-') || /^-\d/.test(t));

  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    if (a === '--version' || a === '-v') {
      opts.printVersion = true;
      continue;
    }
    if (a === '--help' || a === '-h' || a.startsWith('--help=')) {
      opts.printHelp = true;
      continue;
    }
    if (!a.startsWith('-') || /^-\d/.test(a)) {
      if (positionalModel === null) {
        positionalModel = a;
        opts.nonDefaultArgs.model_tag = a;
      } else unrecognized.push(a);
      continue;
    }
    // -O3 / -O 3 / -O=3: the optimization level (vLLM rewrites it to --optimization-level).
    let token = a;
    const oMatch = /^-O(=?)(\d+)$/.exec(a);
    if (oMatch) token = `--optimization-level=${oMatch[2]}`;
    const long = token.startsWith('--');
    const eq = token.indexOf('=');
    let name = (eq >= 0 ? token.slice(long ? 2 : 1, eq) : token.slice(long ? 2 : 1));
    const inline = eq >= 0 ? token.slice(eq + 1) : undefined;
    // FlexibleArgumentParser accepts underscores in flag names.
    const dot = name.indexOf('.');
    const base = (dot >= 0 ? name.slice(0, dot) : name).replace(/_/g, '-');
    name = dot >= 0 ? base + name.slice(dot) : base;
    const resolved = long ? (ALIASES[base] && !VALUE.has(base) && !BOOL.has(base) ? ALIASES[base] : base) : ALIASES[base];
    const takeOne = (flag: string): string => {
      if (inline !== undefined) return inline;
      const next = args[i + 1];
      if (!isValue(next)) throw new ArgError(`argument --${flag}: expected one argument`);
      i++;
      return next;
    };
    const takeMany = (flag: string): string[] => {
      if (inline !== undefined) return [inline];
      const vals: string[] = [];
      while (isValue(args[i + 1])) vals.push(args[++i]!);
      if (vals.length === 0) throw new ArgError(`argument --${flag}: expected at least one argument`);
      return vals;
    };
    if (long && base === 'sim-zero-latency') {
      zeroLatencyFlag = inline === undefined || isTrue(inline);
      continue;
    }
    const knob = long ? knobByFlag.get(base) : undefined;
    if (knob) {
      const raw = typeof DEFAULT_KNOBS[knob] === 'boolean' && inline === undefined && !isValue(args[i + 1]) ? '' : takeOne(base);
      knobFlags.set(knob, raw);
      continue;
    }
    if (resolved === undefined) {
      unrecognized.push(a);
      while (inline === undefined && isValue(args[i + 1]) && positionalModel !== null) unrecognized.push(args[++i]!);
      continue;
    }
    // --json-flag.key value
    if (dot >= 0 && JSON_SET.has(resolved)) {
      const raw = takeOne(name);
      let v: unknown = raw;
      try {
        v = JSON.parse(raw);
      } catch {
        /* a plain string */
      }
      const obj = jsonDotted.get(resolved) ?? {};
      setPath(obj, name.slice(dot + 1).split('.'), v);
      jsonDotted.set(resolved, obj);
      continue;
    }
    if (dot >= 0) {
      unrecognized.push(a);
      continue;
    }
    const key = snake(resolved);
    if (BOOL.has(resolved) || (resolved.startsWith('no-') && BOOL.has(resolved.slice(3)))) {
      const positive = BOOL.has(resolved) ? resolved : resolved.slice(3);
      if (inline !== undefined) throw new ArgError(`argument --${positive}/--no-${positive}: ignored explicit argument '${inline}'`);
      const value = BOOL.has(resolved);
      opts.nonDefaultArgs[snake(positive)] = value;
      if (positive === 'enable-prefix-caching') opts.enablePrefixCaching = value;
      if (positive === 'enable-chunked-prefill') opts.enableChunkedPrefill = value;
      continue;
    }
    if (MULTI.has(resolved)) {
      const vals = takeMany(resolved);
      if (resolved === 'served-model-name') opts.servedModelNames = vals;
      if (resolved === 'api-key') opts.apiKeys = vals;
      opts.nonDefaultArgs[key] = resolved === 'api-key' ? vals.map(() => '******') : vals;
      continue;
    }
    if (JSON_SET.has(resolved)) {
      jsonWhole.set(resolved, takeOne(resolved));
      continue;
    }
    if (!VALUE.has(resolved)) {
      unrecognized.push(a);
      continue;
    }
    const v = takeOne(resolved);
    let parsed: unknown = v;
    switch (resolved) {
      case 'model':
        opts.model = v;
        break;
      case 'host':
        opts.host = v;
        break;
      case 'port':
        parsed = opts.port = int(resolved, v);
        break;
      case 'max-model-len':
        parsed = opts.maxModelLen = parseMaxModelLen(v);
        opts.maxModelLenAuto = parsed === null;
        if (parsed === null) parsed = -1;
        break;
      case 'block-size':
        parsed = opts.blockSize = int(resolved, v);
        break;
      case 'max-num-seqs':
        parsed = opts.maxNumSeqs = int(resolved, v);
        break;
      case 'max-num-batched-tokens':
        parsed = opts.maxNumBatchedTokens = humanReadableInt(resolved, v);
        break;
      case 'gpu-memory-utilization':
        parsed = opts.gpuMemoryUtilization = float(resolved, v);
        break;
      case 'tensor-parallel-size':
        parsed = opts.tensorParallelSize = int(resolved, v);
        break;
      case 'pipeline-parallel-size':
        parsed = opts.pipelineParallelSize = int(resolved, v);
        break;
      case 'data-parallel-size':
        parsed = opts.dataParallelSize = int(resolved, v);
        break;
      case 'seed':
        parsed = opts.seed = int(resolved, v);
        break;
      default:
        break;
    }
    opts.nonDefaultArgs[key] = parsed;
  }

  // Config-class flags: the whole JSON, then the dotted keys over it, validated like pydantic does.
  for (const flag of new Set([...jsonWhole.keys(), ...jsonDotted.keys()])) {
    let raw = jsonWhole.get(flag);
    const dotted = jsonDotted.get(flag);
    if (dotted) {
      let baseObj: Record<string, unknown> = {};
      if (raw !== undefined) {
        try {
          baseObj = JSON.parse(raw) as Record<string, unknown>;
        } catch {
          /* reported below by the validator */
        }
      }
      if (raw === undefined || typeof baseObj === 'object') raw = JSON.stringify({ ...baseObj, ...dotted });
    }
    if (flag === 'kv-transfer-config') {
      try {
        opts.kvTransferConfig = parseKvTransferConfig(raw!);
      } catch (e) {
        if (e instanceof KvTransferConfigError) throw new ArgError(`argument --kv-transfer-config: ${e.message}`);
        throw e;
      }
      opts.nonDefaultArgs.kv_transfer_config = opts.kvTransferConfig;
    } else {
      try {
        opts.nonDefaultArgs[snake(flag)] = JSON.parse(raw!);
      } catch {
        opts.nonDefaultArgs[snake(flag)] = raw;
      }
    }
  }
  if (positionalModel !== null) {
    if (opts.nonDefaultArgs.model !== undefined && opts.nonDefaultArgs.model !== positionalModel)
      throw new ArgError(`model specified twice: positional '${positionalModel}' and --model '${opts.model}'`);
    opts.model = positionalModel;
    opts.nonDefaultArgs.model = positionalModel;
  }
  if (unrecognized.length > 0) throw new ArgError(`unrecognized arguments: ${unrecognized.join(' ')}`, 'top');
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
  return (
    k.prefillBaseMs === 0 && k.prefillMsPerToken === 0 && k.itlMs === 0 && k.stallMs === 0 && k.storageBandwidth === 'inf' &&
    k.kvLinkGbps === 0 && k.allReduceUs === 0 && k.ppHopMs === 0
  );
}
