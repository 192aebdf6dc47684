/** Writing responses as uvicorn/FastAPI does (headers, access log line) and reading JSON bodies as vLLM does. */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import { errorBody } from './protocol.js';
import { HttpError, validationError } from './request.js';
import type { SimLogger } from './log.js';
import type { SimOptions } from './options.js';

export class Responder {
  /** --disable-uvicorn-access-log */
  private readonly noAccessLog: boolean;
  private readonly requestIdHeaders: boolean;

  constructor(opts: SimOptions, private readonly log: SimLogger) {
    this.noAccessLog = opts.nonDefaultArgs.disable_uvicorn_access_log === true;
    this.requestIdHeaders = opts.nonDefaultArgs.enable_request_id_headers === true;
  }

  /** uvicorn's access line for a finished (or started, for streams) response. */
  access(req: IncomingMessage, status: number): void {
    if (this.noAccessLog) return;
    let addr = req.socket.remoteAddress ?? '-';
    if (addr.startsWith('::ffff:')) addr = addr.slice(7);
    this.log.access(`${addr}:${req.socket.remotePort ?? 0}`, req.method ?? 'GET', req.url ?? '/', req.httpVersion, status, STATUS_CODES[status] ?? '');
  }

  /** --enable-request-id-headers: echo X-Request-Id (or a fresh one) on every response, as vLLM's middleware does. */
  requestIdHeader(req: IncomingMessage): Record<string, string> {
    if (!this.requestIdHeaders) return {};
    const id = req.headers['x-request-id'];
    return { 'x-request-id': typeof id === 'string' && id ? id : randomUUID().replace(/-/g, '') };
  }

  send(req: IncomingMessage, res: ServerResponse, status: number, body: unknown, contentType = 'application/json'): void {
    const data = body === null ? '' : typeof body === 'string' ? body : JSON.stringify(body);
    res.writeHead(status, {
      'content-type': contentType,
      'content-length': Buffer.byteLength(data),
      server: 'uvicorn',
      ...this.requestIdHeader(req),
    });
    res.end(data);
    this.access(req, status);
  }

  sendError(req: IncomingMessage, res: ServerResponse, e: unknown): void {
    if (e instanceof HttpError) return this.send(req, res, e.status, e.body);
    const msg = e instanceof Error ? e.message : String(e);
    this.log.error('serving_engine.py:1', `Error in request: ${msg}`);
    this.send(req, res, 500, errorBody(msg, 500));
  }

  methodNotAllowed(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    this.send(req, res, 405, { detail: 'Method Not Allowed' });
  }
}

export function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(chunks.length === 1 ? chunks[0]!.toString('utf8') : Buffer.concat(chunks).toString('utf8')));
    req.on('error', reject);
  });
}

/** FastAPI's JSON decode error, as vLLM's validation handler words it. */
export function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch (e) {
    const pos = /position (\d+)/.exec((e as Error).message)?.[1] ?? '0';
    throw validationError(
      `[{'type': 'json_invalid', 'loc': ('body', ${pos}), 'msg': 'JSON decode error', 'input': {}, 'ctx': {'error': 'Expecting value'}}]`,
    );
  }
}
