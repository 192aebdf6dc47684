/**
 * Config discovery and loading: `-c PATH` (or PD_CONFIG), else ./pd.config.json, else defaults; then PD_* env
 * overrides, then command-line overrides; then the zod schema. Relative paths are resolved against the config
 * file's folder (or the working directory when there is no file).
 */
import { readFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { configSchema, type PdConfig } from './schema.js';
import { ConfigError } from '../util/errors.js';
import { formatPath, formatZodIssues } from './zod-issues.js';

export const DEFAULT_CONFIG_FILE = 'pd.config.json';

export interface LoadOptions {
  configPath?: string;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** Dotted-path overrides from the command line, e.g. { model: 'x', 'proxy.port': 9000 }. Undefined is skipped. */
  overrides?: Record<string, unknown>;
}

export interface LoadedConfig {
  config: PdConfig;
  /** The file that was read, or null when built-in defaults were used. */
  path: string | null;
}

/** PD_* environment variables and the config field each one sets. */
export const ENV_OVERRIDES: ReadonlyArray<{ env: string; path: string; type: 'string' | 'number' }> = [
  { env: 'PD_MODEL', path: 'model', type: 'string' },
  { env: 'PD_VLLM_COMMAND', path: 'engine.command', type: 'string' },
  { env: 'PD_CONNECTOR', path: 'kv.connector', type: 'string' },
  { env: 'PD_SHARED_STORAGE_PATH', path: 'kv.sharedStoragePath', type: 'string' },
  { env: 'PD_PROXY_HOST', path: 'proxy.host', type: 'string' },
  { env: 'PD_PROXY_PORT', path: 'proxy.port', type: 'number' },
  { env: 'PD_RATE_LIMIT', path: 'proxy.rateLimit', type: 'number' },
  { env: 'PD_MAX_CONCURRENT', path: 'proxy.maxConcurrent', type: 'number' },
  { env: 'PD_STATE_DIR', path: 'stateDir', type: 'string' },
  { env: 'PD_RESULTS_DIR', path: 'bench.resultsDir', type: 'string' },
];

function setPath(target: Record<string, unknown>, dotted: string, value: unknown): void {
  const keys = dotted.split('.');
  let node: Record<string, unknown> = target;
  for (const key of keys.slice(0, -1)) {
    const next = node[key];
    if (typeof next !== 'object' || next === null || Array.isArray(next)) node[key] = {};
    node = node[key] as Record<string, unknown>;
  }
  node[keys[keys.length - 1]!] = value;
}

function lineCol(text: string, position: number): string {
  const before = text.slice(0, position);
  const line = before.split('\n').length;
  const col = position - before.lastIndexOf('\n');
  return `line ${line}, column ${col}`;
}

export function parseConfigText(text: string, file: string): Record<string, unknown> {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    const msg = e instanceof Error ? e.message : String(e);
    const pos = /position (\d+)/.exec(msg);
    const where = pos ? ` at ${lineCol(text, Number(pos[1]))}` : '';
    throw new ConfigError(`${file} is not valid JSON${where}: ${msg}`, {
      hint: 'Fix the JSON syntax (no comments or trailing commas), or run `pd init` to write a fresh file.',
    });
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new ConfigError(`${file} must contain a JSON object, not ${Array.isArray(raw) ? 'an array' : typeof raw}`, {
      hint: 'Start from `pd init` or pd.config.example.json.',
    });
  }
  return raw as Record<string, unknown>;
}

/** Where an overridden field's value came from (dotted path → words for an error message). */
type Origins = Map<string, { what: string; fix: string }>;

function envOverrides(raw: Record<string, unknown>, env: NodeJS.ProcessEnv, origins: Origins): void {
  for (const { env: name, path, type } of ENV_OVERRIDES) {
    const value = env[name];
    if (value === undefined || value === '') continue;
    if (type === 'number') {
      const n = Number(value);
      if (!Number.isFinite(n)) {
        throw new ConfigError(`environment variable ${name}=${JSON.stringify(value)} is not a number`, {
          hint: `Set ${name} to a number (it overrides ${path}), or unset it.`,
        });
      }
      setPath(raw, path, n);
    } else {
      setPath(raw, path, value);
    }
    origins.set(path, { what: `environment variable ${name}=${JSON.stringify(value)}`, fix: `Fix or unset ${name}.` });
  }
}

/**
 * Parse and validate an in-memory config object (used by loadConfig and by tests). When the first problem is in
 * a field that an environment variable or a command-line option set, the error names that, not the file.
 */
export function parseConfig(raw: unknown, source = 'config', origins?: Origins): PdConfig {
  const result = configSchema.safeParse(raw, { reportInput: true });
  if (!result.success) {
    const lines = formatZodIssues(result.error.issues);
    const first = result.error.issues[0];
    const field = first ? formatPath(first.path) : '';
    const origin = origins ? [...origins].find(([p]) => field === p || field.startsWith(`${p}.`) || field.startsWith(`${p}[`)) : undefined;
    if (origin) {
      throw new ConfigError(`${origin[1].what} is invalid: ${lines[0]}`, {
        details: lines.slice(1),
        hint: `${origin[1].fix} (It overrides ${origin[0]}${isAbsolute(source) ? ` from ${source}` : ''}.)`,
      });
    }
    throw new ConfigError(`${source} is invalid: ${lines[0]}`, {
      details: lines.slice(1),
      hint: 'Fix the field(s) named above; `pd config schema` prints every field with its type and default.',
    });
  }
  checkTopologyFields(raw as Record<string, unknown>, result.data, source);
  return result.data;
}

/** The engine lists must fit the topology: `engines` for aggregated, `producers`/`consumers` for pd. */
function checkTopologyFields(raw: Record<string, unknown>, config: PdConfig, source: string): void {
  if (config.topology === 'aggregated') {
    if (config.engines === undefined) {
      throw new ConfigError(`${source} is invalid: engines: required with "topology": "aggregated"`, {
        hint: 'List the engines that serve whole requests, e.g. "engines": [{ "gpus": [0, 1], "port": 8100 }] (pd init -t tensor-parallel).',
      });
    }
    const pdOnly = ['producers', 'consumers'].filter((k) => k in raw);
    if (pdOnly.length > 0) {
      throw new ConfigError(`${source} is invalid: ${pdOnly.join(', ')}: not used with "topology": "aggregated"`, {
        hint: 'An aggregated stack has no prefill/decode split: move the engines to "engines", or set "topology": "pd".',
      });
    }
  } else if ('engines' in raw) {
    throw new ConfigError(`${source} is invalid: engines: only used with "topology": "aggregated"`, {
      hint: 'For a PD stack list "producers" and "consumers"; for TP/PP/DP set "topology": "aggregated".',
    });
  }
}

function resolvePaths(config: PdConfig, base: string): PdConfig {
  const abs = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  return {
    ...config,
    stateDir: abs(config.stateDir),
    bench: { ...config.bench, resultsDir: abs(config.bench.resultsDir), sheet: abs(config.bench.sheet) },
  };
}

export async function loadConfig(opts: LoadOptions = {}): Promise<LoadedConfig> {
  const cwd = opts.cwd ?? process.cwd();
  const env = opts.env ?? process.env;
  const explicit = opts.configPath ?? (env.PD_CONFIG && env.PD_CONFIG !== '' ? env.PD_CONFIG : undefined);
  let path: string | null = null;
  let raw: Record<string, unknown> = {};

  if (explicit !== undefined) {
    path = resolve(cwd, explicit);
    if (!existsSync(path)) {
      throw new ConfigError(`config file ${path} does not exist`, {
        hint: 'Check the -c/--config path (or PD_CONFIG), or create one with `pd init`.',
      });
    }
  } else if (existsSync(resolve(cwd, DEFAULT_CONFIG_FILE))) {
    path = resolve(cwd, DEFAULT_CONFIG_FILE);
  }

  if (path !== null) {
    let text: string;
    try {
      text = await readFile(path, 'utf8');
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code ?? 'error';
      throw new ConfigError(`cannot read config file ${path} (${code})`, {
        hint: code === 'EISDIR' ? 'Pass the path of a JSON file, not a folder.' : 'Check the file permissions.',
      });
    }
    raw = parseConfigText(text, path);
  }

  const origins: Origins = new Map();
  envOverrides(raw, env, origins);
  for (const [key, value] of Object.entries(opts.overrides ?? {})) {
    if (value === undefined) continue;
    setPath(raw, key, value);
    origins.set(key, { what: `the command-line value ${JSON.stringify(value)} for ${key}`, fix: 'Fix that option on the command line.' });
  }

  const config = parseConfig(raw, path ?? 'the configuration', origins);
  return { config: resolvePaths(config, path ? dirname(path) : cwd), path };
}
