/** Build the proxy's options from a pd config (used by `pd up` and by `pd proxy -c`). */
import type { EngineInstance, PdConfig } from '../config/schema.js';
import type { ProxyConfig } from '../config/schema.js';
import type { TwoStageOptions } from './topology.js';
import type { Upstream } from './engine.js';
import { httpUrl } from '../util/net.js';

export { connectHost } from '../util/net.js';

export function engineBaseUrl(e: Pick<EngineInstance, 'host' | 'port'>): string {
  return httpUrl(e.host, e.port);
}

export function upstreamsFromConfig(config: PdConfig): { producers: Upstream[]; consumers: Upstream[] } {
  return {
    producers: config.producers.map((e, i) => ({ name: `producer-${i}`, url: engineBaseUrl(e) })),
    consumers: config.consumers.map((e, i) => ({ name: `consumer-${i}`, url: engineBaseUrl(e) })),
  };
}

/** Two-stage options for a PD config (producers and consumers, the resolved connector). */
export function proxyOptionsFromConfig(config: PdConfig, connector: string): ProxyConfig & TwoStageOptions {
  return {
    mode: 'two-stage',
    ...config.proxy,
    timeouts: { ...config.proxy.timeouts },
    ...upstreamsFromConfig(config),
    connector,
    ...(config.engine.apiKey !== undefined ? { engineApiKey: config.engine.apiKey } : {}),
  };
}
