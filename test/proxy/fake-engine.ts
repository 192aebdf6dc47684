/**
 * A small purpose-built upstream for proxy tests: a real node:http server that records every request it gets
 * (method, url, headers, body, whether the client hung up) and answers like a vLLM engine unless a test
 * installs its own handler to force a shape (errors, slow or broken streams, Nixl parameters).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { EventEmitter } from 'node:events';

export interface Recorded {
  method: string;
  url: string;
  headers: IncomingMessage['headers'];
  body: string;
  json: Record<string, unknown> | undefined;
  /** The connection closed before the answer was complete. */
  aborted: boolean;
  finished: boolean;
  /** performance.now() when the request (body included) arrived */
  at: number;
}

export type Handler = (rec: Recorded, req: IncomingMessage, res: ServerResponse) => void | Promise<void>;

export interface FakeEngineOptions {
  /** Token chunks in a streamed answer (default: max_tokens, at most 5). */
  tokens?: number;
  /** Gap between streamed chunks (ms). */
  tokenGapMs?: number;
  /** Delay before answering a non-streaming request (ms). */
  delayMs?: number;
  /** When set and the request carries kv_transfer_params.do_remote_decode, these params are returned. */
  kvTransferParams?: Record<string, unknown>;
  /** Status for GET /health. */
  healthStatus?: number;
  handler?: Handler;
}

export interface FakeEngine {
  url: string;
  port: number;
  requests: Recorded[];
  /** Requests except /health probes. */
  calls(): Recorded[];
  opts: FakeEngineOptions;
  events: EventEmitter;
  /** Resolves when a request matching the predicate has been recorded (and its body read). */
  waitForRequest(pred?: (r: Recorded) => boolean, timeoutMs?: number): Promise<Recorded>;
  /** Resolves when the given request's connection closed before completion. */
  waitForAbort(rec: Recorded, timeoutMs?: number): Promise<void>;
  close(): Promise<void>;
}

export function completionJson(json: Record<string, unknown> | undefined, extra: Record<string, unknown> = {}): string {
  const chat = json !== undefined && Array.isArray(json.messages);
  return JSON.stringify({
    id: 'cmpl-fake',
    object: chat ? 'chat.completion' : 'text_completion',
    created: 1,
    model: json?.model ?? 'fake',
    choices: [chat ? { index: 0, message: { role: 'assistant', content: 'x' }, finish_reason: 'length' } : { index: 0, text: 'x', finish_reason: 'length' }],
    usage: { prompt_tokens: 3, completion_tokens: 1, total_tokens: 4 },
    ...extra,
  });
}

export function sseChunk(json: Record<string, unknown> | undefined, i: number): string {
  const chat = json !== undefined && Array.isArray(json.messages);
  const choice = chat ? { index: 0, delta: { content: `t${i}` }, finish_reason: null } : { index: 0, text: `t${i}`, finish_reason: null };
  return `data: ${JSON.stringify({ id: 'cmpl-fake', object: chat ? 'chat.completion.chunk' : 'text_completion', choices: [choice] })}\n\n`;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

async function defaultHandler(opts: FakeEngineOptions, rec: Recorded, _req: IncomingMessage, res: ServerResponse): Promise<void> {
  if (rec.url === '/health') {
    res.writeHead(opts.healthStatus ?? 200).end();
    return;
  }
  if (rec.url === '/v1/models') {
    res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ object: 'list', data: [{ id: 'fake-model', object: 'model' }] }));
    return;
  }
  if (rec.method === 'POST' && (rec.url === '/v1/completions' || rec.url === '/v1/chat/completions')) {
    const j = rec.json ?? {};
    if (j.stream === true) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
      const n = opts.tokens ?? Math.min(5, Number(j.max_tokens ?? 5));
      for (let i = 0; i < n; i++) {
        if (res.destroyed) return;
        res.write(sseChunk(j, i));
        if (opts.tokenGapMs) await sleep(opts.tokenGapMs);
      }
      res.end('data: [DONE]\n\n');
      return;
    }
    if (opts.delayMs) await sleep(opts.delayMs);
    const kv = (j.kv_transfer_params as { do_remote_decode?: boolean } | undefined)?.do_remote_decode && opts.kvTransferParams
      ? { kv_transfer_params: opts.kvTransferParams }
      : {};
    if (res.destroyed) return;
    res.writeHead(200, { 'content-type': 'application/json' }).end(completionJson(j, kv));
    return;
  }
  res.writeHead(404, { 'content-type': 'application/json' }).end(JSON.stringify({ error: { message: 'Not Found', type: 'NotFoundError', param: null, code: 404 } }));
}

export async function startFakeEngine(opts: FakeEngineOptions = {}): Promise<FakeEngine> {
  const requests: Recorded[] = [];
  const events = new EventEmitter();
  events.setMaxListeners(0);
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      let json: Record<string, unknown> | undefined;
      try {
        json = body ? (JSON.parse(body) as Record<string, unknown>) : undefined;
      } catch {
        json = undefined;
      }
      const rec: Recorded = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, body, json, aborted: false, finished: false, at: performance.now() };
      requests.push(rec);
      res.on('close', () => {
        if (!res.writableFinished) {
          rec.aborted = true;
          events.emit('abort', rec);
        }
      });
      res.on('finish', () => (rec.finished = true));
      events.emit('request', rec);
      const h = opts.handler ?? ((r, q, s) => defaultHandler(opts, r, q, s));
      Promise.resolve(h(rec, req, res)).catch(() => res.destroy());
    });
  });
  server.keepAliveTimeout = 10_000;
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    requests,
    calls: () => requests.filter((r) => r.url !== '/health'),
    opts,
    events,
    waitForRequest(pred = () => true, timeoutMs = 5000) {
      const found = requests.find((r) => r.url !== '/health' && pred(r));
      if (found) return Promise.resolve(found);
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          events.off('request', on);
          reject(new Error('timed out waiting for an upstream request'));
        }, timeoutMs);
        const on = (r: Recorded): void => {
          if (r.url !== '/health' && pred(r)) {
            clearTimeout(t);
            events.off('request', on);
            resolve(r);
          }
        };
        events.on('request', on);
      });
    },
    waitForAbort(rec, timeoutMs = 5000) {
      if (rec.aborted) return Promise.resolve();
      return new Promise((resolve, reject) => {
        const t = setTimeout(() => {
          events.off('abort', on);
          reject(new Error('timed out waiting for the upstream connection to close'));
        }, timeoutMs);
        const on = (r: Recorded): void => {
          if (r === rec) {
            clearTimeout(t);
            events.off('abort', on);
            resolve();
          }
        };
        events.on('abort', on);
      });
    },
    close() {
      server.closeAllConnections();
      return new Promise<void>((r) => server.close(() => r()));
    },
  };
}
