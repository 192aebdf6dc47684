/**
 * The embedded proxy's options, from the plan: its config section, the planned engines as upstreams (producers and
 * consumers for PD, engines for TP/PP/DP), the connector and, for P2P NCCL, each engine's KV address.
 */
import type { ProxyOptions, Upstream } from '../../proxy/server.js';
import { commonProxyOptions } from '../../proxy/options.js';
import type { StackPlan } from './build.js';
import type { EnginePlan } from './engines.js';

function upstream(e: EnginePlan): Upstream {
  return { name: e.name, url: e.url, ...(e.kvAddress !== undefined ? { kvAddress: e.kvAddress } : {}) };
}

export function proxyOptionsFromPlan(plan: StackPlan, log?: (line: string) => void): ProxyOptions {
  const { config } = plan;
  const common = { ...commonProxyOptions(config), ...(log ? { log } : {}) };
  const of = (role: EnginePlan['role']): Upstream[] => plan.engines.filter((e) => e.role === role).map(upstream);
  if (plan.proxy.mode === 'single-stage')
    return { ...common, mode: 'single-stage', engines: of('engine'), connector: plan.connector?.name ?? null };
  return {
    ...common,
    mode: 'two-stage',
    producers: of('producer'),
    consumers: of('consumer'),
    connector: plan.connector?.name ?? '',
  };
}
