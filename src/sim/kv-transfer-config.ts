/**
 * `--kv-transfer-config` validated at parse time as vLLM does: EngineArgs parses config-class flags with
 * `TypeAdapter(KVTransferConfig).validate_json(val)` and turns a pydantic ValidationError into an argparse error
 * (vllm/engine/arg_utils.py, parse_dataclass), so a bad config exits 2 before any log line, with pydantic's
 * "N validation error(s) for KVTransferConfig" text. Fields, types, defaults and __post_init__ checks follow
 * vllm/config/kv_transfer.py (pydantic lax mode: numeric strings are accepted for numbers).
 */
import { pyRepr } from './kv/nixl.js';

export interface KvTransferConfig {
  kv_connector?: string | null;
  engine_id?: string | null;
  kv_buffer_device?: string;
  kv_buffer_size?: number;
  kv_role?: string | null;
  kv_rank?: number | null;
  kv_parallel_size?: number;
  kv_ip?: string;
  kv_port?: number;
  kv_connector_extra_config?: Record<string, unknown>;
  kv_connector_module_path?: string | null;
  enable_permute_local_kv?: boolean;
  kv_load_failure_policy?: 'recompute' | 'fail';
  [k: string]: unknown;
}

/** KVRole = Literal[KVProducer, KVConsumer]; get_args flattens it in this order. */
export const KV_ROLES = ['kv_producer', 'kv_both', 'kv_consumer'] as const;
const PYDANTIC_DOCS = 'https://errors.pydantic.dev/2.12/v';

interface PydanticError {
  loc: string[];
  msg: string;
  type: string;
  input: unknown;
  inputRepr?: string;
  inputType?: string;
}

function pyType(v: unknown): string {
  if (v === null) return 'NoneType';
  if (typeof v === 'boolean') return 'bool';
  if (typeof v === 'number') return Number.isInteger(v) ? 'int' : 'float';
  if (typeof v === 'string') return 'str';
  if (Array.isArray(v)) return 'list';
  return 'dict';
}

/** pydantic shortens long input reprs to their first and last 24 characters. */
function shortRepr(text: string): string {
  return text.length > 50 ? `${text.slice(0, 24)}...${text.slice(-24)}` : text;
}

/** The text of a pydantic ValidationError (str(e)), as argparse prints it after "argument --kv-transfer-config: ". */
export function formatValidationError(title: string, errors: PydanticError[]): string {
  const lines = [`${errors.length} validation error${errors.length === 1 ? '' : 's'} for ${title}`];
  for (const e of errors) {
    if (e.loc.length > 0) lines.push(e.loc.join('.'));
    const input = shortRepr(e.inputRepr ?? pyRepr(e.input));
    lines.push(`  ${e.msg} [type=${e.type}, input_value=${input}, input_type=${e.inputType ?? pyType(e.input)}]`);
    lines.push(`    For further information visit ${PYDANTIC_DOCS}/${e.type}`);
  }
  return lines.join('\n');
}

export class KvTransferConfigError extends Error {}

/** serde_json's wording for a JSON syntax error, with pydantic's "Invalid JSON: " prefix. */
function jsonErrorMessage(raw: string, e: Error): string {
  const at = /position (\d+)/.exec(e.message);
  const pos = at ? Number(at[1]) : raw.length;
  const before = raw.slice(0, pos);
  const line = before.split('\n').length;
  const column = pos - before.lastIndexOf('\n');
  const trimmed = raw.trim();
  let what = 'expected value';
  if (pos >= raw.length || /Unexpected end/.test(e.message)) what = trimmed.startsWith('{') ? 'EOF while parsing an object' : 'EOF while parsing a value';
  else if (/property name|Expected property/.test(e.message) || (raw[pos - 1] === '{' && raw[pos] !== '"')) what = 'key must be a string';
  else if (/after property value|Expected ','/.test(e.message)) what = "expected `,` or `}`";
  return `Invalid JSON: ${what} at line ${line} column ${Math.max(1, column)}`;
}

type FieldCheck = (v: unknown) => { ok: true; value: unknown } | { ok: false; type: string; msg: string };

const optional = (check: FieldCheck): FieldCheck => (v) => (v === null ? { ok: true, value: null } : check(v));
const str: FieldCheck = (v) => (typeof v === 'string' ? { ok: true, value: v } : { ok: false, type: 'string_type', msg: 'Input should be a valid string' });
const float: FieldCheck = (v) => {
  if (typeof v === 'number') return { ok: true, value: v };
  if (typeof v === 'boolean') return { ok: true, value: v ? 1 : 0 };
  if (typeof v === 'string') {
    const n = Number(v.trim());
    return v.trim() !== '' && Number.isFinite(n) ? { ok: true, value: n } : { ok: false, type: 'float_parsing', msg: 'Input should be a valid number, unable to parse string as a number' };
  }
  return { ok: false, type: 'float_type', msg: 'Input should be a valid number' };
};
const int: FieldCheck = (v) => {
  if (typeof v === 'boolean') return { ok: true, value: v ? 1 : 0 };
  if (typeof v === 'number') return Number.isInteger(v) ? { ok: true, value: v } : { ok: false, type: 'int_from_float', msg: 'Input should be a valid integer, got a number with a fractional part' };
  if (typeof v === 'string') {
    const t = v.trim();
    return /^[+-]?\d+$/.test(t) ? { ok: true, value: Number(t) } : { ok: false, type: 'int_parsing', msg: 'Input should be a valid integer, unable to parse string as an integer' };
  }
  return { ok: false, type: 'int_type', msg: 'Input should be a valid integer' };
};
const bool: FieldCheck = (v) => {
  if (typeof v === 'boolean') return { ok: true, value: v };
  if (v === 0 || v === 1) return { ok: true, value: v === 1 };
  if (typeof v === 'string' && /^(true|false|yes|no|on|off|t|f|y|n|1|0)$/i.test(v)) return { ok: true, value: /^(true|yes|on|t|y|1)$/i.test(v) };
  return { ok: false, type: typeof v === 'string' ? 'bool_parsing' : 'bool_type', msg: typeof v === 'string' ? 'Input should be a valid boolean, unable to interpret input' : 'Input should be a valid boolean' };
};
const dict: FieldCheck = (v) => (v !== null && typeof v === 'object' && !Array.isArray(v) ? { ok: true, value: v } : { ok: false, type: 'dict_type', msg: 'Input should be a valid dictionary' });
const literal = (choices: readonly string[]): FieldCheck => (v) =>
  typeof v === 'string' && choices.includes(v)
    ? { ok: true, value: v }
    : { ok: false, type: 'literal_error', msg: `Input should be ${choices.slice(0, -1).map((c) => `'${c}'`).join(', ')} or '${choices.at(-1)!}'` };

/** KVTransferConfig's fields in declaration order, with their checks. */
const FIELDS: Array<[string, FieldCheck]> = [
  ['kv_connector', optional(str)],
  ['engine_id', optional(str)],
  ['kv_buffer_device', str],
  ['kv_buffer_size', float],
  ['kv_role', optional(literal(KV_ROLES))],
  ['kv_rank', optional(int)],
  ['kv_parallel_size', int],
  ['kv_ip', str],
  ['kv_port', int],
  ['kv_connector_extra_config', dict],
  ['kv_connector_module_path', optional(str)],
  ['enable_permute_local_kv', bool],
  ['kv_load_failure_policy', literal(['recompute', 'fail'])],
];

/** Parse and validate a `--kv-transfer-config` JSON value; throws KvTransferConfigError with pydantic's text. */
export function parseKvTransferConfig(raw: string): KvTransferConfig {
  let parsed: unknown;
  try {
    parsed = JSON.parse(raw);
  } catch (e) {
    throw new KvTransferConfigError(
      formatValidationError('KVTransferConfig', [{ loc: [], msg: jsonErrorMessage(raw, e as Error), type: 'json_invalid', input: raw }]),
    );
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed))
    throw new KvTransferConfigError(
      formatValidationError('KVTransferConfig', [
        { loc: [], msg: 'Input should be a dictionary or an instance of KVTransferConfig', type: 'dataclass_type', input: parsed },
      ]),
    );
  const input = parsed as Record<string, unknown>;
  const out: KvTransferConfig = { ...input };
  const errors: PydanticError[] = [];
  for (const [name, check] of FIELDS) {
    if (!(name in input)) continue;
    const r = check(input[name]);
    if (r.ok) out[name] = r.value;
    else errors.push({ loc: [name], msg: r.msg, type: r.type, input: input[name] });
  }
  if (errors.length > 0) throw new KvTransferConfigError(formatValidationError('KVTransferConfig', errors));
  // __post_init__ (runs after field validation; pydantic reports its ValueError as a value_error on the whole input).
  const postInit = (msg: string): never => {
    throw new KvTransferConfigError(
      formatValidationError('KVTransferConfig', [
        { loc: [], msg: `Value error, ${msg}`, type: 'value_error', input, inputRepr: `ArgsKwargs((), ${pyRepr(input)})`, inputType: 'ArgsKwargs' },
      ]),
    );
  };
  if (out.kv_connector != null && out.kv_role == null)
    postInit(`Please specify kv_role when kv_connector is set, supported roles are (${KV_ROLES.map((r) => `'${r}'`).join(', ')})`);
  return out;
}
