/** Build the proxy's options from a pd config (used by `pd proxy -c`; `pd up` builds them from the stack plan). */
import type { EngineInstance, PdConfig } from '../config/schema.js';
import type { ProxyConfig } from '../config/schema.js';
import { listEngines } from '../config/engines.js';
import type { SingleStageOptions, TwoStageOptions } from './topology.js';
import type { EngineRole, Upstream } from './engine.js';
import { httpUrl } from '../util/net.js';

export { connectHost } from '../util/net.js';

export function engineBaseUrl(e: Pick<EngineInstance, 'host' | 'port'>): string {
  return httpUrl(e.host, e.port);
}

function upstreams(config: PdConfig, role: EngineRole): Upstream[] {
  return listEngines(config)
    .filter((r) => r.role === role)
    .map((r) => ({ name: r.name, url: engineBaseUrl(r.instance) }));
}

/** What every proxy takes from the config whatever its mode: the proxy section and the engines' API key. */
export function commonProxyOptions(config: PdConfig): ProxyConfig & { engineApiKey?: string } {
  return {
    ...config.proxy,
    timeouts: { ...config.proxy.timeouts },
    ...(config.engine.apiKey !== undefined ? { engineApiKey: config.engine.apiKey } : {}),
  };
}

/**
 * The proxy for a config's topology: two-stage over its producers and consumers with the resolved connector (PD),
 * single-stage over its engines (aggregated: TP, PP, DP).
 */
export function proxyOptionsFromConfig(
  config: PdConfig,
  connector: string,
): ProxyConfig & (TwoStageOptions | SingleStageOptions) {
  const common = commonProxyOptions(config);
  if (config.topology === 'aggregated')
    return { ...common, mode: 'single-stage', engines: upstreams(config, 'engine'), connector: null };
  return {
    ...common,
    mode: 'two-stage',
    producers: upstreams(config, 'producer'),
    consumers: upstreams(config, 'consumer'),
    connector,
  };
}
