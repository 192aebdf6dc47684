/**
 * Every way a proxied request can end without an engine's own answer, and the one table that gives each its
 * client status code. As in fastify-reply-from (index.js, its onError mapping), an upstream error is classified
 * by its code once, here, and nowhere else decides between 502, 503 and 504.
 */
import type { EngineState } from './engine.js';

/** Why the proxy answered instead of an engine (the access log's `note`, a metric label). */
export type FailureReason =
  | 'unauthorized'
  | 'bad_request'
  | 'too_large'
  | 'request_timeout'
  | 'rate_limit'
  | 'queue_full'
  | 'queue_timeout'
  | 'closed'
  | 'body_budget'
  | 'no_engine'
  | 'timeout'
  | 'upstream_error'
  | 'client_abort';

/** The table: reason → status sent to the client (499 is never sent: the client is gone). */
export const FAILURE_STATUS: Readonly<Record<FailureReason, number>> = {
  unauthorized: 401,
  bad_request: 400,
  too_large: 413,
  request_timeout: 408,
  rate_limit: 429,
  queue_full: 503,
  queue_timeout: 503,
  closed: 503,
  body_budget: 503,
  no_engine: 503,
  timeout: 504,
  upstream_error: 502,
  client_abort: 499,
};

/** A request the proxy ends itself, answered in the OpenAI error shape. */
export class ProxyFailure extends Error {
  readonly status: number;
  /** Seconds for a Retry-After header. */
  readonly retryAfter: number | undefined;
  /** The request field at fault (the error object's `param`). */
  readonly param: string | null;
  /** The error object's `type`, when not the one its status implies. */
  readonly type: string | undefined;

  constructor(
    readonly reason: FailureReason,
    message: string,
    opts: { retryAfter?: number; param?: string | null; type?: string } = {},
  ) {
    super(message);
    this.status = FAILURE_STATUS[reason];
    this.retryAfter = opts.retryAfter;
    this.param = opts.param ?? null;
    this.type = opts.type;
  }
}

export const clientGone = (): ProxyFailure => new ProxyFailure('client_abort', 'client went away');

/** The error code of an undici / node error (or of its cause). */
export function errCode(e: unknown): string {
  const err = e as { code?: unknown; cause?: { code?: unknown } } | null;
  if (err && typeof err.code === 'string') return err.code;
  if (err && err.cause && typeof err.cause.code === 'string') return err.cause.code;
  return '';
}

/**
 * Errors that prove the request never reached an engine: the connection was never made. Only these are retried
 * on another engine. A reset, a broken pipe or a closed socket can happen after the engine read the request, so
 * retrying would run a generation twice (fastify-reply-from retries only what it knows was not sent, too).
 */
const NEVER_SENT = new Set([
  'ECONNREFUSED',
  'UND_ERR_CONNECT_TIMEOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'EADDRNOTAVAIL',
]);

export function neverSent(e: unknown): boolean {
  return NEVER_SENT.has(errCode(e));
}

/** Upstream error codes that mean "too slow" rather than "broken". */
const TIMEOUT_CODES = new Set(['UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT', 'UND_ERR_CONNECT_TIMEOUT', 'ETIMEDOUT']);

export function isTimeout(e: unknown): boolean {
  return TIMEOUT_CODES.has(errCode(e)) || (e as Error | null)?.name === 'TimeoutError';
}

export type UpstreamStage = 'prefill' | 'decode' | 'forward' | 'engine';

/** The proxy's answer when an engine call failed before its response headers (or while reading a small body). */
export function upstreamFailure(e: unknown, stage: UpstreamStage, engine?: EngineState): ProxyFailure {
  if (e instanceof ProxyFailure) return e;
  const who = engine ?? (e as { engine?: EngineState } | null)?.engine;
  const name = who ? `${who.name} (${who.url})` : `the ${stage} engine`;
  const what = stage === 'prefill' || stage === 'decode' ? stage : 'upstream';
  const message = (e as Error | null)?.message ?? String(e);
  return isTimeout(e)
    ? new ProxyFailure('timeout', `The ${what} engine ${name} timed out: ${message}`)
    : new ProxyFailure('upstream_error', `The ${what} engine ${name} could not be reached: ${message}`);
}

export function noEngine(role: string, total: number): ProxyFailure {
  return new ProxyFailure(
    'no_engine',
    `No healthy ${role} engine is available (all ${total} are down or failed their /health probe).`,
    { retryAfter: 1 },
  );
}
