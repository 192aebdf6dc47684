/**
 * Checks of a planned stack: what the schema and the file-level checks cannot see because it depends on the
 * planned engines and the resolved connector (clashing ports, shared GPUs, flags pd owns, parallel sizes, side
 * channels, a KV cache path that overlaps pd's files). Severity is policy, decided here from codes and facts
 * (a GPU shared by two engines is an error on real GPUs unless allowed), so every command agrees on it.
 */
import { isAbsolute } from 'node:path';
import type { PdConfig } from '../../config/schema.js';
import { KNOWN_CONNECTORS, budgetIsActive } from '../../config/schema.js';
import { checkConfig, checkKvPathOverlap, protectedPaths } from '../../config/checks.js';
import type { Problem } from '../../config/problems.js';
import { suggest } from '../../config/zod-issues.js';
import { engineExtraArgs, listEngines } from '../../config/engines.js';
import { hasArg } from '../../util/args.js';
import { isSharedStorageConnector } from './kv-transfer-config.js';
import { parallelSizes, type EnginePlan } from './engines.js';

export interface PlanCheckContext {
  /** Resolved connector (null for the aggregated topology). */
  connector: string | null;
  simulate: boolean;
  configPath: string | null;
}

/** Flags pd sets itself: putting them in args would fight pd's own values. */
const OWNED_FLAGS: ReadonlyArray<{ flag: string; use: (field: string) => string }> = [
  { flag: '--port', use: (f) => `${f}.port` },
  { flag: '--host', use: (f) => `${f}.host` },
  { flag: '--kv-transfer-config', use: () => 'the kv section' },
];

const LOOPBACK = /^(127\.\d+\.\d+\.\d+|::1|\[::1\]|localhost)$/;

function checkPorts(config: PdConfig, engines: readonly EnginePlan[], problems: Problem[]): void {
  const owners = new Map<number, string>([[config.proxy.port, 'proxy.port']]);
  const claim = (port: number, owner: string, field: string, hint: string): void => {
    const prev = owners.get(port);
    if (prev !== undefined) {
      problems.push({ code: 'port-clash', severity: 'error', field, message: `port ${port} is already used by ${prev}`, hint });
    } else owners.set(port, owner);
  };
  for (const e of engines) {
    claim(e.port, `${e.field}.port`, `${e.field}.port`, `Give ${e.name} its own port (every engine and the proxy need distinct ports).`);
  }
  // NIXL side channels and P2P kv ports: one per GPU rank of each engine, all distinct from every other port.
  for (const e of engines) {
    const base = e.sideChannelPort ?? e.kvPort;
    if (base === undefined) continue;
    const nixl = e.sideChannelPort !== undefined;
    const what = nixl ? 'NIXL side-channel port' : 'P2P kv_port';
    const field = nixl
      ? config[e.role === 'producer' ? 'producers' : 'consumers'][e.index]?.env.VLLM_NIXL_SIDE_CHANNEL_PORT !== undefined
        ? `${e.field}.env.VLLM_NIXL_SIDE_CHANNEL_PORT`
        : 'kv.nixlSideChannelBasePort'
      : config[e.role === 'producer' ? 'producers' : 'consumers'][e.index]?.kvPort !== undefined
        ? `${e.field}.kvPort`
        : 'kv.p2pKvBasePort';
    for (let r = 0; r < e.gpus.length; r++) {
      const port = base + r;
      if (!Number.isInteger(port) || port < 1 || port > 65535) {
        problems.push({
          code: 'side-channel-port-invalid',
          severity: 'error',
          field,
          message: `${what} ${port} of ${e.name} is not a valid port (1-65535)`,
          hint: `Lower ${nixl ? 'kv.nixlSideChannelBasePort' : 'kv.p2pKvBasePort'} so that one port per GPU of every engine fits below 65536.`,
        });
        continue;
      }
      const prev = owners.get(port);
      if (prev !== undefined) {
        problems.push({
          code: 'side-channel-port-clash',
          severity: 'error',
          field: nixl ? `${e.field}.env.VLLM_NIXL_SIDE_CHANNEL_PORT` : field,
          message: `${what} ${port} of ${e.name} is also used by ${prev}`,
          hint: nixl
            ? 'Remove VLLM_NIXL_SIDE_CHANNEL_PORT from the engine env (pd assigns unique ports) or pick a free one.'
            : 'Remove kvPort from the engine (pd assigns unique ports) or pick a free one.',
        });
      } else owners.set(port, e.name);
    }
  }
  if (config.topology === 'pd' && engines.some((e) => e.kvPort !== undefined)) {
    claim(config.kv.p2pProxyPort, 'kv.p2pProxyPort', 'kv.p2pProxyPort', 'Give the P2P registration port (kv.p2pProxyPort) a port of its own.');
  }
}

function checkGpus(config: PdConfig, engines: readonly EnginePlan[], simulate: boolean, problems: Problem[]): void {
  const owners = new Map<number, EnginePlan>();
  // Real GPUs shared by two engines make them fight for memory: refused unless allowed; simulated GPUs are free.
  const refuse = !config.allowSharedGpus && !simulate;
  for (const e of engines) {
    for (const gpu of new Set(e.gpus)) {
      const prev = owners.get(gpu);
      if (prev === undefined) {
        owners.set(gpu, e);
        continue;
      }
      const crossRole = prev.role !== e.role;
      problems.push({
        code: 'gpu-shared',
        severity: refuse ? 'error' : 'warning',
        field: `${e.field}.gpus`,
        message: `GPU ${gpu} is used by both ${prev.name} and ${e.name}${crossRole ? ' (prefill and decode on one GPU)' : ''}`,
        hint: config.allowSharedGpus
          ? 'allowed by allowSharedGpus; lower --gpu-memory-utilization so both engines fit'
          : simulate
            ? 'fine for simulated engines; on real GPUs `pd up` refuses it unless "allowSharedGpus": true (or --allow-shared-gpus)'
            : 'Give each engine its own GPU; to share on purpose set "allowSharedGpus": true (or pass --allow-shared-gpus) and lower --gpu-memory-utilization.',
      });
    }
  }
}

function checkEngineArgs(config: PdConfig, problems: Problem[]): void {
  for (const ref of listEngines(config)) {
    const args = engineExtraArgs(config, ref);
    for (const { flag, use } of OWNED_FLAGS) {
      if (!hasArg(args, flag)) continue;
      problems.push({
        code: 'owned-flag',
        severity: 'error',
        field: `${ref.field}.args`,
        message: `${flag} is set in the engine args of ${ref.name}`,
        hint: `pd sets ${flag} itself; set it through ${use(ref.field)} instead.`,
      });
    }
    const sizes = parallelSizes(args, ref.instance.gpus.length);
    if (!sizes.given) continue;
    const product = sizes.tensor * sizes.pipeline * sizes.data;
    if (Number.isInteger(product) && product === ref.instance.gpus.length) continue;
    const asked = (['tensor', 'pipeline', 'data'] as const)
      .filter((k) => sizes.raw[k] !== undefined)
      .map((k) => `--${k}-parallel-size ${sizes.raw[k]}`)
      .join(' x ');
    problems.push({
      code: 'parallel-size-mismatch',
      severity: 'error',
      field: `${ref.field}.gpus`,
      message: `${asked} needs ${Number.isFinite(product) ? product : '?'} GPU(s), but ${ref.instance.gpus.length} GPU(s) are listed`,
      hint: 'List one GPU per rank (tensor x pipeline x data parallel size), or drop --tensor-parallel-size (pd sets it from gpus).',
    });
  }
}

function checkStorage(config: PdConfig, ctx: PlanCheckContext, problems: Problem[]): void {
  const connector = ctx.connector;
  if (connector === null || !(isSharedStorageConnector(connector) || connector === 'auto')) return;
  const path = config.kv.sharedStoragePath;
  if (!isAbsolute(path)) {
    problems.push({
      code: 'storage-path-relative',
      severity: 'error',
      field: 'kv.sharedStoragePath',
      message: `"${path}" is not an absolute path`,
      hint: 'Use an absolute path such as /mnt/pd_kv, so every engine writes and reads the same folder.',
    });
  } else {
    problems.push(...checkKvPathOverlap(path, protectedPaths(config, ctx.configPath)));
  }
  // A budget with (almost) no grace period can evict a prompt's KV between prefill writing it and decode reading
  // it: the consumer then silently recomputes the prompt. (The janitor runs only for the shared-storage connector.)
  const budget = config.kv.cache;
  if (budgetIsActive(budget) && budget.graceSeconds < 1) {
    problems.push({
      code: 'cache-grace-short',
      severity: 'warning',
      field: 'kv.cache.graceSeconds',
      message: `a grace period of ${budget.graceSeconds} s lets the janitor evict a prompt's KV between prefill and decode`,
      hint: 'Keep graceSeconds at least as long as a request takes from prefill to the first decoded token (default 30).',
    });
  }
}

/** Every problem of the configuration and its plan, errors and warnings. */
export function checkPlan(config: PdConfig, engines: readonly EnginePlan[], ctx: PlanCheckContext): Problem[] {
  const problems: Problem[] = [];
  checkPorts(config, engines, problems);
  checkGpus(config, engines, ctx.simulate, problems);
  problems.push(...checkConfig(config));
  checkStorage(config, ctx, problems);

  // Unknown connector names are allowed (escape hatch) but a near-miss of a known one is a typo.
  const connector = ctx.connector;
  if (connector !== null && connector !== 'auto' && !(KNOWN_CONNECTORS as readonly string[]).includes(connector)) {
    const near = suggest(connector, [...KNOWN_CONNECTORS]);
    if (near !== undefined) {
      problems.push({
        code: 'connector-typo',
        severity: 'error',
        field: 'kv.connector',
        message: `unknown connector "${connector}"`,
        hint: `Did you mean "${near}"? Other connector class names are passed to vLLM as they are.`,
      });
    }
  }
  checkEngineArgs(config, problems);

  // Engines reachable beyond loopback without a key of their own bypass the proxy's key, rate limit and queue.
  if (config.proxy.apiKey !== undefined && config.engine.apiKey === undefined) {
    for (const e of engines) {
      if (LOOPBACK.test(e.host)) continue;
      problems.push({
        code: 'engine-exposed-without-key',
        severity: 'warning',
        field: `${e.field}.host`,
        message: `${e.name} binds ${e.host}, so clients can reach it without the proxy's API key, rate limit or queue`,
        hint: 'Bind engines to 127.0.0.1 (the default), or set engine.apiKey so they require a key too.',
      });
    }
  }
  return problems;
}
