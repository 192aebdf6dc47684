/**
 * Header hygiene for a proxy (RFC 9110 §7.6.1): hop-by-hop headers, and any header named in `Connection`,
 * are never forwarded, in either direction. Request headers are also rebuilt for the upstream: `host` and
 * `content-length` are recomputed, `authorization` follows the engine-key rule, and `x-request-id` is set.
 */
import type { IncomingHttpHeaders, OutgoingHttpHeaders } from 'node:http';

export const HOP_BY_HOP = new Set([
  'connection',
  'keep-alive',
  'proxy-authenticate',
  'proxy-authorization',
  'proxy-connection',
  'te',
  'trailer',
  'trailers',
  'transfer-encoding',
  'upgrade',
]);

function connectionListed(value: string | string[] | undefined): Set<string> | null {
  if (value === undefined) return null;
  // Fast path for what nearly every client sends.
  if (value === 'keep-alive' || value === 'close' || value === 'Keep-Alive' || value === 'Close') return null;
  const s = Array.isArray(value) ? value.join(',') : value;
  const names = s
    .split(',')
    .map((x) => x.trim().toLowerCase())
    .filter((x) => x !== '' && x !== 'close' && x !== 'keep-alive');
  return names.length === 0 ? null : new Set(names);
}

/** Remove hop-by-hop headers (and those named by Connection) from a lower-cased header record. */
export function stripHopByHop<T extends Record<string, unknown>>(headers: T, extraDrop?: ReadonlySet<string>): T {
  const listed = connectionListed(headers['connection'] as string | string[] | undefined);
  const out: Record<string, unknown> = {};
  for (const key in headers) {
    const v = headers[key];
    if (v === undefined) continue;
    if (HOP_BY_HOP.has(key) || (listed !== null && listed.has(key)) || (extraDrop !== undefined && extraDrop.has(key)))
      continue;
    out[key] = v;
  }
  return out as T;
}

const REQUEST_DROP = new Set(['host', 'content-length', 'authorization', 'x-request-id', 'expect']);

export interface UpstreamRequestHeaderOptions {
  requestId: string;
  /** Engine API key from config: replaces the client's Authorization. */
  engineApiKey?: string;
  /** Body length when the proxy sends a body of its own. */
  contentLength?: number;
}

/**
 * Headers sent to an engine: the client's end-to-end headers, the request id, and Authorization —
 * `Bearer <engineApiKey>` when configured, else the client's own header, else none at all.
 */
export function upstreamRequestHeaders(
  client: IncomingHttpHeaders,
  opts: UpstreamRequestHeaderOptions,
): Record<string, string | string[]> {
  const out = stripHopByHop(client as Record<string, string | string[] | undefined>, REQUEST_DROP) as Record<
    string,
    string | string[]
  >;
  out['x-request-id'] = opts.requestId;
  if (opts.engineApiKey !== undefined) out['authorization'] = `Bearer ${opts.engineApiKey}`;
  else if (client.authorization !== undefined) out['authorization'] = client.authorization;
  if (opts.contentLength !== undefined) out['content-length'] = String(opts.contentLength);
  return out;
}

/** Headers returned to the client from an engine response (undici lower-cases names). */
export function downstreamResponseHeaders(
  upstream: Record<string, string | string[] | undefined>,
  extra: OutgoingHttpHeaders,
): OutgoingHttpHeaders {
  const out = stripHopByHop(upstream) as OutgoingHttpHeaders;
  for (const k in extra) out[k] = extra[k];
  return out;
}
