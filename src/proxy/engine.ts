/** One upstream engine as the proxy sees it: where it is, whether it is healthy, how busy we keep it. */
import { Pool } from 'undici';

export type EngineRole = 'producer' | 'consumer';

export interface Upstream {
  /** e.g. 'producer-0' */
  name: string;
  /** Base URL like http://127.0.0.1:8100 (a path prefix is kept; a trailing /v1/... endpoint is dropped). */
  url: string;
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
  healthy: boolean;
  /** Bumped on every explicit health change, so that a probe started earlier cannot undo it. */
  healthEpoch: number;
  inFlight: number;
}

/** Mark an engine in or out of rotation explicitly (supervisor, connection refused). */
export function setHealth(e: EngineState, healthy: boolean): void {
  e.healthy = healthy;
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
  return { name: up.name, role, url, origin, prefix, pool, healthy: true, healthEpoch: 0, inFlight: 0 };
}
