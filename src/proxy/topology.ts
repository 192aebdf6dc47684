/**
 * The proxy's two modes and the engine groups and routes each uses:
 * - two-stage (PD disaggregation): producers and consumers; completions and chat run prefill then decode, other
 *   /v1/* requests go to a consumer;
 * - single-stage (TP, PP, DP): engines that each serve whole requests; every /v1/* request goes to one of them.
 * Both share the frame: limits, queue, request ids, access log, metrics, Server-Timing.
 */
import type { ProxyConfig } from '../config/schema.js';
import { createEngine, type EngineState, type Upstream } from './engine.js';
import { Balancer } from './balancer.js';
import type { EngineGroup } from './dispatch.js';
import { TwoStageRoute } from './two-stage.js';
import { EngineRoute } from './engine-route.js';
import { ForwardRoute } from './forward.js';
import type { ProxyRoutes } from './router.js';
import { usesP2pRequestIds } from './stage-bodies.js';
import type { ProxyMetrics } from './metrics.js';

interface CommonOptions {
  /**
   * Resolved KV connector name, e.g. 'SharedStorageConnector' | 'ExampleConnector' | 'NixlConnector' |
   * 'P2pNcclConnector'; null in single-stage mode (no KV hand-off).
   */
  connector: string | null;
  /** API key the engines require (replaces the client's Authorization upstream). */
  engineApiKey?: string;
  /** Sink for access-log lines and warnings (default: stderr, batched). */
  log?: (line: string) => void;
}

/** PD disaggregation: `producers` prefill (kv_producer), `consumers` decode (kv_consumer). */
export interface TwoStageOptions extends CommonOptions {
  mode?: 'two-stage';
  producers: Upstream[];
  consumers: Upstream[];
}

/** TP, PP, DP: `engines` (engine-0, engine-1, …) each serve whole requests. */
export interface SingleStageOptions extends CommonOptions {
  mode: 'single-stage';
  engines: Upstream[];
}

export type ProxyOptions = ProxyConfig & (TwoStageOptions | SingleStageOptions);

export type ProxyMode = 'two-stage' | 'single-stage';

export const modeOf = (o: ProxyOptions): ProxyMode => (o.mode === 'single-stage' ? 'single-stage' : 'two-stage');

/** Refuse options that cannot work (a programming error of the caller: TypeError). */
export function checkOptions(o: ProxyOptions): void {
  const lists: Upstream[][] = o.mode === 'single-stage' ? [o.engines] : [o.producers, o.consumers];
  const what = o.mode === 'single-stage' ? ['engine'] : ['producer', 'consumer'];
  lists.forEach((l, i) => {
    if (!Array.isArray(l) || l.length === 0) throw new TypeError(`startProxy: at least one ${what[i]} is required`);
  });
  const names = new Set<string>();
  for (const u of lists.flat()) {
    if (names.has(u.name)) throw new TypeError(`startProxy: duplicate engine name "${u.name}"`);
    names.add(u.name);
  }
  if (o.mode !== 'single-stage') {
    if (typeof o.connector !== 'string' || o.connector === '')
      throw new TypeError('startProxy: a two-stage proxy needs the resolved connector name');
    if (usesP2pRequestIds(o.connector)) {
      const missing = lists.flat().filter((u) => !u.kvAddress || !/:\d+$/.test(u.kvAddress));
      if (missing.length > 0)
        throw new TypeError(
          `startProxy: ${o.connector} needs kvAddress ("<ip>:<kv_port>") on every producer and consumer; missing or ` +
            `malformed on ${missing.map((u) => u.name).join(', ')}`,
        );
    }
  }
}

export interface Topology {
  mode: ProxyMode;
  /** The groups a request needs one healthy engine of (for /health). */
  groups: EngineState[][];
  all: EngineState[];
  routes: ProxyRoutes;
}

export interface TopologyDeps {
  metrics: ProxyMetrics;
  log: (line: string) => void;
}

export function buildTopology(o: ProxyOptions, deps: TopologyDeps): Topology {
  const poolOpts = { connectMs: o.timeouts.connectMs };
  const common = { ...deps, engineApiKey: o.engineApiKey, timeouts: o.timeouts };
  if (o.mode === 'single-stage') {
    const engines = o.engines.map((u) => createEngine(u, 'engine', poolOpts));
    const group: EngineGroup = { role: 'engine', engines, balancer: new Balancer(o.balance) };
    const d = { ...common, engines: group };
    return {
      mode: 'single-stage',
      groups: [engines],
      all: engines,
      routes: {
        completions: new EngineRoute(d, 'completions'),
        chat: new EngineRoute(d, 'chat'),
        forward: new ForwardRoute(common, group, true),
        forwardFree: new ForwardRoute(common, group, false),
      },
    };
  }
  const producers = o.producers.map((u) => createEngine(u, 'producer', poolOpts));
  const consumers = o.consumers.map((u) => createEngine(u, 'consumer', poolOpts));
  const producerGroup: EngineGroup = { role: 'producer', engines: producers, balancer: new Balancer(o.balance) };
  const consumerGroup: EngineGroup = { role: 'consumer', engines: consumers, balancer: new Balancer(o.balance) };
  const d = { ...common, producers: producerGroup, consumers: consumerGroup, connector: o.connector! };
  return {
    mode: 'two-stage',
    groups: [producers, consumers],
    all: [...producers, ...consumers],
    routes: {
      completions: new TwoStageRoute(d, 'completions'),
      chat: new TwoStageRoute(d, 'chat'),
      forward: new ForwardRoute(common, consumerGroup, true),
      forwardFree: new ForwardRoute(common, consumerGroup, false),
    },
  };
}
