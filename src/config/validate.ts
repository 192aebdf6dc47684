/**
 * Checks that catch real mistakes before anything starts. The schema catches types, ranges and unknown keys;
 * these catch combinations: clashing ports, shared GPUs, wrong kv_role, relative storage paths, flags that pd
 * owns, NIXL side-channel clashes.
 */
import { isAbsolute } from 'node:path';
import type { PdConfig, Role } from './schema.js';
import { KNOWN_CONNECTORS } from './schema.js';
import { ConfigError } from '../util/errors.js';
import { buildEnginePlans, engineExtraArgs, engineName, argValue, hasArg, listEngines } from '../stack/engine-plan.js';
import { isNixlConnector, isSharedStorageConnector } from '../stack/kv-transfer-config.js';
import { suggest } from './zod-issues.js';
import { budgetIsActive } from '../cache/janitor.js';

export interface ConfigProblem {
  severity: 'error' | 'warning';
  /** The config field, e.g. producers[0].port */
  field: string;
  message: string;
  hint: string;
}

/** Flags pd sets itself: putting them in args would fight pd's own values. */
const OWNED_FLAGS: ReadonlyArray<{ flag: string; use: (role: Role, i: number) => string }> = [
  { flag: '--port', use: (r, i) => `${r}s[${i}].port` },
  { flag: '--host', use: (r, i) => `${r}s[${i}].host` },
  { flag: '--kv-transfer-config', use: () => 'the kv section' },
];

export function validateConfig(config: PdConfig, connector: string): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  const engines = listEngines(config);

  // Ports: engines against each other and against the proxy.
  const portOwners = new Map<number, string>();
  portOwners.set(config.proxy.port, 'proxy.port');
  for (const { role, index, instance } of engines) {
    const field = `${role}s[${index}].port`;
    const owner = portOwners.get(instance.port);
    if (owner !== undefined) {
      problems.push({
        severity: 'error',
        field,
        message: `port ${instance.port} is already used by ${owner}`,
        hint: `Give ${engineName(role, index)} its own port (every engine and the proxy need distinct ports).`,
      });
    } else {
      portOwners.set(instance.port, field);
    }
  }

  // GPUs: one GPU serving two engines makes them fight for memory.
  const gpuOwners = new Map<number, { name: string; role: Role }>();
  for (const { role, index, instance } of engines) {
    const seen = new Set<number>();
    for (const gpu of instance.gpus) {
      if (seen.has(gpu)) {
        problems.push({
          severity: 'error',
          field: `${role}s[${index}].gpus`,
          message: `GPU ${gpu} is listed twice`,
          hint: 'List each GPU id once.',
        });
        continue;
      }
      seen.add(gpu);
      const prev = gpuOwners.get(gpu);
      const name = engineName(role, index);
      if (prev !== undefined) {
        const crossRole = prev.role !== role;
        problems.push({
          severity: 'warning',
          field: `${role}s[${index}].gpus`,
          message: `GPU ${gpu} is used by both ${prev.name} and ${name}${crossRole ? ' (prefill and decode on one GPU)' : ''}`,
          hint: config.allowSharedGpus
            ? 'allowed by allowSharedGpus; lower --gpu-memory-utilization so both engines fit'
            : 'Give each engine its own GPU; to share on purpose set "allowSharedGpus": true (or pass --allow-shared-gpus) and lower --gpu-memory-utilization.',
        });
      } else {
        gpuOwners.set(gpu, { name, role });
      }
    }
  }

  // kv_role must fit the role.
  for (const { role, index, instance } of engines) {
    if (instance.kvRole === undefined) continue;
    const wrong = (role === 'producer' && instance.kvRole === 'kv_consumer') || (role === 'consumer' && instance.kvRole === 'kv_producer');
    if (wrong) {
      problems.push({
        severity: 'error',
        field: `${role}s[${index}].kvRole`,
        message: `kv_role "${instance.kvRole}" does not fit a ${role}`,
        hint: `Use "${role === 'producer' ? 'kv_producer' : 'kv_consumer'}" (or "kv_both"), or remove kvRole to get the default.`,
      });
    }
  }

  // Shared storage path must be absolute (engines and pd may run from different folders).
  if (isSharedStorageConnector(connector) || connector === 'auto') {
    if (!isAbsolute(config.kv.sharedStoragePath)) {
      problems.push({
        severity: 'error',
        field: 'kv.sharedStoragePath',
        message: `"${config.kv.sharedStoragePath}" is not an absolute path`,
        hint: 'Use an absolute path such as /mnt/pd_kv, so every engine writes and reads the same folder.',
      });
    }
  }

  // A budget with (almost) no grace period can evict a prompt's KV between prefill writing it and decode reading
  // it: the consumer then silently recomputes the prompt.
  // (The janitor runs only for the shared-storage connector.)
  const budget = config.kv.cache;
  if ((isSharedStorageConnector(connector) || connector === 'auto') && budgetIsActive(budget) && budget.graceSeconds < 1) {
    problems.push({
      severity: 'warning',
      field: 'kv.cache.graceSeconds',
      message: `a grace period of ${budget.graceSeconds} s lets the janitor evict a prompt's KV between prefill and decode`,
      hint: 'Keep graceSeconds at least as long as a request takes from prefill to the first decoded token (default 30).',
    });
  }

  // Unknown connector names are allowed (escape hatch) but a near-miss of a known one is a typo.
  if (connector !== 'auto' && !(KNOWN_CONNECTORS as readonly string[]).includes(connector)) {
    const near = suggest(connector, [...KNOWN_CONNECTORS]);
    if (near !== undefined) {
      problems.push({
        severity: 'error',
        field: 'kv.connector',
        message: `unknown connector "${connector}"`,
        hint: `Did you mean "${near}"? Other connector class names are passed to vLLM as they are.`,
      });
    }
  }

  // Flags pd owns, and tensor-parallel size that does not match the GPU list.
  for (const { role, index, instance } of engines) {
    const args = engineExtraArgs(config, role, instance);
    for (const { flag, use } of OWNED_FLAGS) {
      if (hasArg(args, flag)) {
        problems.push({
          severity: 'error',
          field: `${role}s[${index}].args`,
          message: `${flag} is set in the engine args of ${engineName(role, index)}`,
          hint: `pd sets ${flag} itself; set it through ${use(role, index)} instead.`,
        });
      }
    }
    const tp = argValue(args, '--tensor-parallel-size') ?? argValue(args, '-tp');
    if (tp !== undefined && Number(tp) !== instance.gpus.length) {
      problems.push({
        severity: 'error',
        field: `${role}s[${index}].gpus`,
        message: `--tensor-parallel-size ${tp} does not match the ${instance.gpus.length} GPU(s) listed`,
        hint: 'List one GPU per tensor-parallel rank, or drop --tensor-parallel-size (pd sets it from gpus).',
      });
    }
    const env = { ...config.engine.env, ...config.engine[role].env, ...instance.env };
    if (env.CUDA_VISIBLE_DEVICES !== undefined) {
      problems.push({
        severity: 'error',
        field: `${role}s[${index}].env.CUDA_VISIBLE_DEVICES`,
        message: `CUDA_VISIBLE_DEVICES is set in the env of ${engineName(role, index)}`,
        hint: `pd sets CUDA_VISIBLE_DEVICES from ${role}s[${index}].gpus; set the GPU ids there.`,
      });
    }
  }

  // NIXL side channels must be unique per engine and not clash with HTTP ports.
  if (isNixlConnector(connector)) {
    const plans = buildEnginePlans(config, { connector });
    const used = new Map<number, string>();
    for (const plan of plans) {
      const base = plan.nixlSideChannelPort!;
      for (let r = 0; r < plan.gpus.length; r++) {
        const port = base + r;
        if (!Number.isInteger(port) || port < 1 || port > 65535) {
          problems.push({
            severity: 'error',
            field: plan.env.VLLM_NIXL_SIDE_CHANNEL_PORT !== undefined && config[`${plan.role}s`][plan.index]!.env.VLLM_NIXL_SIDE_CHANNEL_PORT !== undefined
              ? `${plan.role}s[${plan.index}].env.VLLM_NIXL_SIDE_CHANNEL_PORT`
              : 'kv.nixlSideChannelBasePort',
            message: `NIXL side-channel port ${port} of ${plan.name} is not a valid port (1-65535)`,
            hint: 'Lower kv.nixlSideChannelBasePort so that one port per GPU of every engine fits below 65536.',
          });
          continue;
        }
        const other = used.get(port) ?? (portOwners.has(port) ? portOwners.get(port) : undefined);
        if (other !== undefined) {
          problems.push({
            severity: 'error',
            field: `${plan.role}s[${plan.index}].env.VLLM_NIXL_SIDE_CHANNEL_PORT`,
            message: `NIXL side-channel port ${port} of ${plan.name} is also used by ${other}`,
            hint: 'Remove VLLM_NIXL_SIDE_CHANNEL_PORT from the engine env (pd assigns unique ports) or pick a free one.',
          });
        }
        used.set(port, plan.name);
      }
    }
  }
  return problems;
}

export function errorsOf(problems: ConfigProblem[]): ConfigProblem[] {
  return problems.filter((p) => p.severity === 'error');
}

/** Throw a ConfigError naming every error-level problem (warnings are left to the caller to print). */
export function assertValid(problems: ConfigProblem[], source: string): void {
  const errors = errorsOf(problems);
  if (errors.length === 0) return;
  const [first, ...rest] = errors;
  throw new ConfigError(`${source} is invalid: ${first!.field}: ${first!.message}`, {
    details: rest.map((p) => `${p.field}: ${p.message} (${p.hint})`),
    hint: first!.hint,
  });
}
