/**
 * The stack plan: everything `pd up` will run, built once per command from the loaded configuration and handed
 * down — to preflight, the supervisor, the proxy's options, the CLI's task list, `pd plan` and `pd render k8s` —
 * instead of being recomputed by each. A detached supervisor receives it as a file, so nothing is probed twice.
 */
import { join } from 'node:path';
import type { PdConfig, Topology } from '../../config/schema.js';
import type { Problem } from '../../config/problems.js';
import { httpUrl } from '../../util/net.js';
import { splitCommand } from '../../util/args.js';
import { buildEnginePlans, type EnginePlan } from './engines.js';
import { checkPlan } from './checks.js';
import { isNixlConnector, isP2pNcclConnector, isSharedStorageConnector } from './kv-transfer-config.js';
import type { ConnectorChoice } from './connector.js';

export interface ProxyRoute {
  method: string;
  path: string;
  description: string;
}

export interface ProxyPlan {
  host: string;
  port: number;
  url: string;
  /** two-stage: prefill on a producer, then decode on a consumer; single-stage: whole requests on one engine. */
  mode: 'two-stage' | 'single-stage';
  routes: ProxyRoute[];
}

export interface StackPlan {
  /** Plan format version (the detached supervisor refuses a plan it does not know). */
  version: 1;
  topology: Topology;
  model: string;
  /** The id engines list in /v1/models (servedModelName, else the model). */
  modelId: string;
  /** The effective configuration (overrides and --simulate applied). */
  config: PdConfig;
  configPath: string | null;
  simulate: boolean;
  /** The vLLM command (argv prefix before `serve`): the configured one, or the simulator under --simulate. */
  command: string[];
  /** null for the aggregated topology (no KV connector). */
  connector: ConnectorChoice | null;
  /** What `vllm --version` printed (the one probe per command), or null when it could not be run. */
  vllmVersion: string | null;
  engines: EnginePlan[];
  proxy: ProxyPlan;
  /** The folder SharedStorage/ExampleConnector engines write, or null when the connector uses none. */
  sharedStoragePath: string | null;
  stateDir: string;
  logDir: string;
  problems: Problem[];
}

export interface BuildPlanOptions {
  configPath: string | null;
  connector: ConnectorChoice;
  vllmVersion: string | null;
  /** Replaces the vLLM executable (the simulator under --simulate). */
  command?: string[];
  simulate: boolean;
}

function proxyRoutes(engines: readonly EnginePlan[], connector: string | null): ProxyRoute[] {
  const names = (role: EnginePlan['role']): string =>
    engines
      .filter((e) => e.role === role)
      .map((e) => e.name)
      .join('|');
  /** The generation routes, then /v1/models, /health, /metrics and the rest of /v1 served by `others`. */
  const routes = (generation: string, others: string, healthy: string): ProxyRoute[] => [
    { method: 'POST', path: '/v1/completions', description: generation },
    { method: 'POST', path: '/v1/chat/completions', description: generation },
    { method: 'GET', path: '/v1/models', description: `from ${others}` },
    { method: 'GET', path: '/health', description: healthy },
    { method: 'GET', path: '/metrics', description: 'Prometheus metrics of the proxy and the stack' },
    { method: '*', path: '/v1/*', description: `other OpenAI routes forwarded to ${others}` },
  ];
  if (connector === null) {
    const all = names('engine');
    return routes(`whole request → ${all} (balanced, streamed back)`, all, '200 when at least one engine is healthy');
  }
  const p = names('producer');
  const c = names('consumer');
  const handoff = isNixlConnector(connector)
    ? ', kv_transfer_params handed from stage 1 to stage 2'
    : isP2pNcclConnector(connector)
      ? ', both stages carry the P2P request id naming the producer and consumer'
      : '';
  const twoStage = `stage 1 → ${p} (max_tokens=1, stream=false), stage 2 → ${c} (client's body, streamed back${handoff})`;
  return routes(twoStage, c, '200 when at least one producer and one consumer are healthy');
}

/** Build the plan (pure: no process is run, no file is read). */
export function buildStackPlan(config: PdConfig, opts: BuildPlanOptions): StackPlan {
  const aggregated = config.topology === 'aggregated';
  const connector = aggregated ? null : opts.connector;
  const logDir = join(config.stateDir, 'logs');
  const engines = buildEnginePlans(config, { connector: connector?.name ?? null, command: opts.command, logDir });
  return {
    version: 1,
    topology: config.topology,
    model: config.model,
    modelId: config.servedModelName ?? config.model,
    config,
    configPath: opts.configPath,
    simulate: opts.simulate,
    command: opts.command ?? splitCommand(config.engine.command),
    connector,
    vllmVersion: opts.vllmVersion,
    engines,
    proxy: {
      host: config.proxy.host,
      port: config.proxy.port,
      url: httpUrl(config.proxy.host, config.proxy.port),
      mode: aggregated ? 'single-stage' : 'two-stage',
      routes: proxyRoutes(engines, connector?.name ?? null),
    },
    sharedStoragePath: connector !== null && isSharedStorageConnector(connector.name) ? config.kv.sharedStoragePath : null,
    stateDir: config.stateDir,
    logDir,
    problems: checkPlan(config, engines, { connector: connector?.name ?? null, simulate: opts.simulate, configPath: opts.configPath }),
  };
}

export function enginesOfRole(plan: StackPlan, role: EnginePlan['role']): EnginePlan[] {
  return plan.engines.filter((e) => e.role === role);
}
