/** One upstream engine as the proxy sees it: where it is, whether it is healthy, how busy we keep it. */
import { Pool } from 'undici';

/** producer/consumer in a two-stage (PD) proxy; engine in a single-stage one (TP, PP, DP). */
export type EngineRole = 'producer' | 'consumer' | 'engine';

export interface Upstream {
  /** e.g. 'producer-0', 'consumer-1', 'engine-0' */
  name: string;
  /** Base URL like http://127.0.0.1:8100 (a path prefix is kept; a trailing /v1/... endpoint is dropped). */
  url: string;
  /**
   * The engine's P2P NCCL address, `<ip>:<kv_port>` (the zmq_address its P2pNcclEngine binds); required on every
   * producer and consumer when the connector is P2pNcclConnector.
   */
  kvAddress?: string;
}

export interface EngineState {
  readonly name: string;
  readonly role: EngineRole;
  /** Normalised base URL (origin + optional prefix, no trailing slash). */
  readonly url: string;
  readonly origin: string;
  /** Path prefix prepended to the client's path ('' for most engines). */
  readonly prefix: string;
  readonly pool: Pool;
  readonly kvAddress: string | undefined;
  healthy: boolean;
  /** Why the engine is down for good (set by its supervisor), or null; a down engine is never probed back in. */
  down: string | null;
  /** Bumped on every explicit health change, so that a probe started earlier cannot undo it. */
  healthEpoch: number;
  inFlight: number;
}

/** Mark an engine in or out of rotation explicitly (supervisor, connection refused). */
export function setHealth(e: EngineState, healthy: boolean): void {
  e.healthy = healthy;
  if (healthy) e.down = null;
  e.healthEpoch++;
}

/** Take an engine out of rotation for good (its supervisor gave up on it); setHealth(e, true) undoes it. */
export function setDown(e: EngineState, reason: string): void {
  e.healthy = false;
  e.down = reason;
  e.healthEpoch++;
}

/**
 * Split an engine URL into origin and path prefix. Accepts base URLs (http://h:8100) and, like the reference
 * script, full endpoint URLs (http://h:8100/v1/completions): everything from `/v1` on is dropped so that
 * completions and chat both reach the right route.
 */
export function parseEngineUrl(raw: string): { origin: string; prefix: string; url: string } {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new TypeError(`not a URL: "${raw}" (expected e.g. http://127.0.0.1:8100)`);
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:')
    throw new TypeError(`unsupported protocol in "${raw}" (use http:// or https://)`);
  let path = u.pathname;
  const v1 = path.search(/\/v1(\/|$)/);
  if (v1 >= 0) path = path.slice(0, v1);
  path = path.replace(/\/+$/, '');
  return { origin: u.origin, prefix: path, url: u.origin + path };
}

export interface EnginePoolOptions {
  connectMs: number;
}

export function createEngine(up: Upstream, role: EngineRole, opts: EnginePoolOptions): EngineState {
  const { origin, prefix, url } = parseEngineUrl(up.url);
  const pool = new Pool(origin, {
    connectTimeout: opts.connectMs,
    keepAliveTimeout: 4_000,
    keepAliveMaxTimeout: 60_000,
    // Long streams are normal: per-request timeouts are set on each request instead.
    headersTimeout: 0,
    bodyTimeout: 0,
  });
  return {
    name: up.name,
    role,
    url,
    origin,
    prefix,
    pool,
    kvAddress: up.kvAddress,
    healthy: true,
    down: null,
    healthEpoch: 0,
    inFlight: 0,
  };
}
