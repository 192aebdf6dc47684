/**
 * Which route a request takes. Generation requests (POST /v1/completions and /v1/chat/completions, and every
 * other /v1/* request that is not a GET or HEAD) go through the gate; GET/HEAD /v1/* are forwarded ungated, and
 * /health, /metrics and 404s are answered by the Hono app.
 *
 * Paths are routed by their canonical form, so that a variant never reaches an engine half-routed (say, a
 * `/v1/completions/` sent straight to a consumer with no prefill and no rate limit): percent-escapes decoded
 * (Starlette matches routes on the decoded path too), repeated slashes collapsed and a trailing slash dropped;
 * a path that cannot be decoded or has `.`/`..` segments is refused with 400.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Frame, Route } from './frame.js';
import { openAiErrorBody } from './openai-error.js';

export interface ProxyRoutes {
  completions: Route<unknown>;
  chat: Route<unknown>;
  /** Any other /v1/* request, to one engine of the streaming group. */
  forward: Route<Buffer | null>;
  /** The same, without the gate (GET and HEAD). */
  forwardFree: Route<Buffer | null>;
}

/** Paths that are already canonical need no work (the common case: no escape, no double or trailing slash). */
const MAYBE_NOT_CANONICAL = /%|\/\/|.\/$|\/\.|[^\x21-\x7e]/;
const DOT_SEGMENT = /(^|\/)\.\.?(\/|$)/;
/** Control characters (a decoded %00-%1F or %7F): the path cannot be sent on. */
const hasControl = (p: string): boolean => {
  for (let i = 0; i < p.length; i++) {
    const c = p.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
};

/** The canonical path of a request URL (no query), or null when the path must be refused. */
export function canonicalPath(url: string): string | null {
  const q = url.indexOf('?');
  const raw = q < 0 ? url : url.slice(0, q);
  if (!MAYBE_NOT_CANONICAL.test(raw)) return raw.startsWith('/') ? raw : null;
  let path: string;
  try {
    path = decodeURIComponent(raw);
  } catch {
    return null;
  }
  if (!path.startsWith('/') || hasControl(path) || DOT_SEGMENT.test(path)) return null;
  path = path.replace(/\/{2,}/g, '/');
  if (path.length > 1 && path.endsWith('/')) path = path.slice(0, -1);
  return path;
}

const GENERATION: Record<string, 'completions' | 'chat'> = {
  '/v1/completions': 'completions',
  '/v1/chat/completions': 'chat',
};

function refuse(res: ServerResponse, status: number, message: string): void {
  const body = openAiErrorBody(status, message);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

/**
 * The server's request listener: a direct fast path for exact generation URLs, then routing by canonical path;
 * `other` (the Hono app) answers what is not proxied.
 */
export function routeRequests(
  frame: Frame,
  routes: ProxyRoutes,
  other: (req: IncomingMessage, res: ServerResponse) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    const method = req.method ?? 'GET';
    const url = req.url ?? '/';
    if (method === 'POST') {
      if (url === '/v1/chat/completions') return void frame.run(req, res, method, url, routes.chat, true);
      if (url === '/v1/completions') return void frame.run(req, res, method, url, routes.completions, true);
    }
    const path = canonicalPath(url);
    if (path === null) return refuse(res, 400, `Request path ${JSON.stringify(url.split('?')[0])} is not valid.`);
    const kind = GENERATION[path];
    if (kind !== undefined && method === 'POST') {
      // The engines get the canonical path (with the client's query string).
      const q = url.indexOf('?');
      req.url = q < 0 ? path : path + url.slice(q);
      return void frame.run(req, res, method, path, kind === 'chat' ? routes.chat : routes.completions, true);
    }
    if (path.startsWith('/v1/')) {
      const cheap = method === 'GET' || method === 'HEAD';
      return void frame.run(req, res, method, path, cheap ? routes.forwardFree : routes.forward, !cheap);
    }
    if (path !== url) {
      const q = url.indexOf('?');
      req.url = q < 0 ? path : path + url.slice(q);
    }
    other(req, res);
  };
}
