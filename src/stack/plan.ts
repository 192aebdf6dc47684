/** What `pd up` will run: engines (exact argv/env), the connector choice and the proxy's routes. */
import type { PdConfig } from '../config/schema.js';
import { validateConfig, type ConfigProblem } from '../config/validate.js';
import { buildEnginePlans, type EnginePlan } from './engine-plan.js';
import { httpUrl } from '../util/net.js';
import { isNixlConnector } from './kv-transfer-config.js';
import type { ConnectorChoice } from './connector.js';
import { shellCommandLine } from '../util/shell-quote.js';

export interface ProxyRoute {
  method: string;
  path: string;
  description: string;
}

export interface StackPlan {
  model: string;
  connector: ConnectorChoice;
  engines: EnginePlan[];
  proxy: { host: string; port: number; url: string; routes: ProxyRoute[] };
  sharedStoragePath: string | null;
  problems: ConfigProblem[];
}

export interface MakePlanOptions {
  connector: ConnectorChoice;
  /** Replaces the vLLM executable (the simulator under --simulate). */
  command?: string[];
}

export function proxyRoutes(config: PdConfig, connector: string): ProxyRoute[] {
  const p = config.producers.map((_, i) => `producer-${i}`).join('|');
  const c = config.consumers.map((_, i) => `consumer-${i}`).join('|');
  const nixl = isNixlConnector(connector) ? ', kv_transfer_params handed from stage 1 to stage 2' : '';
  const twoStage = `stage 1 → ${p} (max_tokens=1, stream=false), stage 2 → ${c} (client's body, streamed back${nixl})`;
  return [
    { method: 'POST', path: '/v1/completions', description: twoStage },
    { method: 'POST', path: '/v1/chat/completions', description: twoStage },
    { method: 'GET', path: '/v1/models', description: `from ${c}` },
    { method: 'GET', path: '/health', description: '200 when at least one producer and one consumer are healthy' },
    { method: 'GET', path: '/metrics', description: 'Prometheus metrics of the proxy and the stack' },
    { method: '*', path: '/v1/*', description: `other OpenAI routes forwarded to ${c}` },
  ];
}

export function makePlan(config: PdConfig, opts: MakePlanOptions): StackPlan {
  const connector = opts.connector.name;
  return {
    model: config.model,
    connector: opts.connector,
    engines: buildEnginePlans(config, { connector, command: opts.command }),
    proxy: {
      host: config.proxy.host,
      port: config.proxy.port,
      url: httpUrl(config.proxy.host, config.proxy.port),
      routes: proxyRoutes(config, connector),
    },
    sharedStoragePath: connector === 'NixlConnector' ? null : config.kv.sharedStoragePath,
    problems: validateConfig(config, connector),
  };
}

export function engineCommandLine(engine: EnginePlan): string {
  return shellCommandLine(engine.env, engine.argv);
}

export function formatPlan(plan: StackPlan): string {
  const lines: string[] = [];
  lines.push(`# model: ${plan.model}`);
  lines.push(`# connector: ${plan.connector.name} (${plan.connector.reason})`);
  if (plan.sharedStoragePath) lines.push(`# shared storage: ${plan.sharedStoragePath}`);
  for (const e of plan.engines) {
    lines.push('');
    lines.push(`# ${e.name}: ${e.kvRole}, GPU ${e.gpus.join(',')}, ${e.url}, log ${e.logFile}`);
    lines.push(engineCommandLine(e));
  }
  lines.push('');
  lines.push(`# proxy: ${plan.proxy.url} (binds ${plan.proxy.host}:${plan.proxy.port})`);
  const width = Math.max(...plan.proxy.routes.map((r) => `${r.method} ${r.path}`.length));
  for (const r of plan.proxy.routes) lines.push(`#   ${`${r.method} ${r.path}`.padEnd(width)}  ${r.description}`);
  return lines.join('\n') + '\n';
}

/** `pd plan --json`: the same as data. */
export function planToJson(plan: StackPlan): unknown {
  return {
    model: plan.model,
    connector: plan.connector,
    sharedStoragePath: plan.sharedStoragePath,
    engines: plan.engines.map((e) => ({ ...e, commandLine: engineCommandLine(e) })),
    proxy: plan.proxy,
    problems: plan.problems,
  };
}
