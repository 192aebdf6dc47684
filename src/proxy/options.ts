/** Build the proxy's options from a pd config (used by `pd up` and by `pd proxy -c`). */
import type { EngineInstance, PdConfig } from '../config/schema.js';
import type { ProxyOptions, Upstream } from './server.js';

/** Where to reach an engine that binds `host`: wildcard binds are reached on loopback. */
export function connectHost(host: string): string {
  if (host === '0.0.0.0' || host === '') return '127.0.0.1';
  if (host === '::' || host === '[::]') return '::1';
  return host;
}

export function engineBaseUrl(e: Pick<EngineInstance, 'host' | 'port'>): string {
  const h = connectHost(e.host);
  return `http://${h.includes(':') && !h.startsWith('[') ? `[${h}]` : h}:${e.port}`;
}

export function upstreamsFromConfig(config: PdConfig): { producers: Upstream[]; consumers: Upstream[] } {
  return {
    producers: config.producers.map((e, i) => ({ name: `producer-${i}`, url: engineBaseUrl(e) })),
    consumers: config.consumers.map((e, i) => ({ name: `consumer-${i}`, url: engineBaseUrl(e) })),
  };
}

export function proxyOptionsFromConfig(config: PdConfig, connector: string): ProxyOptions {
  return {
    ...config.proxy,
    timeouts: { ...config.proxy.timeouts },
    ...upstreamsFromConfig(config),
    connector,
    ...(config.engine.apiKey !== undefined ? { engineApiKey: config.engine.apiKey } : {}),
  };
}
