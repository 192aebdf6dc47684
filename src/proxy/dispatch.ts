/**
 * Sending a request to one engine of a group (the producers, the consumers, or the engines of a single-stage
 * proxy): pick one by the balance strategy, call it, and try another once when the call failed before anything
 * reached the engine (connection refused or not made in time; see failures.ts). The chosen engine's inFlight is incremented; the caller decrements it when done
 * with the response.
 */
import { callUpstream, type UpstreamCallOptions, type UpstreamResponse } from './upstream-call.js';
import { setHealth, type EngineRole, type EngineState } from './engine.js';
import type { Balancer } from './balancer.js';
import { errCode, neverSent, noEngine, type UpstreamStage } from './failures.js';
import type { ProxyMetrics } from './metrics.js';

export interface EngineGroup {
  readonly role: EngineRole;
  readonly engines: EngineState[];
  readonly balancer: Balancer;
}

export interface Dispatched {
  engine: EngineState;
  res: UpstreamResponse;
}

export interface DispatchDeps {
  metrics: ProxyMetrics;
  log: (line: string) => void;
}

/**
 * `pinned`: call this engine only (no balancing, no retry elsewhere): P2P NCCL's decode stage must reach the
 * consumer the request id named. `forEngine`: the options for a given engine (headers that name it).
 */
export async function dispatch(
  deps: DispatchDeps,
  stage: UpstreamStage,
  group: EngineGroup,
  opts: UpstreamCallOptions,
  pinned?: EngineState,
  forEngine?: (engine: EngineState, opts: UpstreamCallOptions) => UpstreamCallOptions,
): Promise<Dispatched> {
  const first = pinned ?? group.balancer.pick(group.engines);
  if (first === undefined) {
    deps.metrics.reject('no_engine');
    throw noEngine(group.role, group.engines.length);
  }
  let engine: EngineState = first;
  for (let attempt = 0; ; attempt++) {
    engine.inFlight++;
    try {
      const o = forEngine === undefined ? opts : forEngine(engine, opts);
      const res = await callUpstream(engine.pool, engine.prefix === '' ? o : { ...o, path: engine.prefix + o.path });
      return { engine, res };
    } catch (e) {
      engine.inFlight--;
      if (opts.signal.aborted) throw e;
      const code = errCode(e);
      deps.metrics.upstreamErrors.inc({ engine: engine.name, stage, kind: code || 'error' });
      if (code === 'ECONNREFUSED' && engine.healthy) {
        setHealth(engine, false);
        deps.log(`warning: ${engine.name} (${engine.url}) refused a connection; taken out of rotation until /health answers`);
      }
      if (attempt === 0 && pinned === undefined && neverSent(e)) {
        engine = group.balancer.pick(group.engines, engine) ?? engine;
        deps.metrics.retries.inc({ stage });
        continue;
      }
      (e as { engine?: EngineState }).engine = engine;
      throw e;
    }
  }
}
