/** The embedded proxy's options, from the plan: its config section, the planned engines as upstreams, the connector. */
import type { ProxyOptions, Upstream } from '../../proxy/server.js';
import type { StackPlan } from './build.js';
import type { EnginePlan } from './engines.js';

function upstream(e: EnginePlan): Upstream {
  return { name: e.name, url: e.url };
}

export function proxyOptionsFromPlan(plan: StackPlan, log?: (line: string) => void): ProxyOptions {
  const { config } = plan;
  return {
    ...config.proxy,
    timeouts: { ...config.proxy.timeouts },
    producers: plan.engines.filter((e) => e.role === 'producer').map(upstream),
    consumers: plan.engines.filter((e) => e.role === 'consumer').map(upstream),
    connector: plan.connector?.name ?? '',
    ...(config.engine.apiKey !== undefined ? { engineApiKey: config.engine.apiKey } : {}),
    ...(log ? { log } : {}),
  };
}
