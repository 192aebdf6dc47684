/**
 * A purpose-built OpenAI-compatible upstream with a known, fixed timeline: the first output chunk is written
 * `ttftMs` after the request arrives and each further chunk `itlMs` after the previous one (absolute
 * deadlines, timer + setImmediate for sub-ms accuracy). Knobs to produce the awkward cases a benchmark
 * client must survive: SSE comments, `data:` without a space, huge lines, in-band errors, no usage, HTTP errors.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { performance } from 'node:perf_hooks';
import type { AddressInfo } from 'node:net';

export interface FixedUpstreamOptions {
  ttftMs?: number;
  itlMs?: number;
  /** Output tokens per request (default: max_tokens / max_completion_tokens of the request, else 8). */
  tokens?: number;
  /** Tokens carried per chunk (default 1). */
  tokensPerChunk?: number;
  /** Prompt tokens reported in usage (default: length of the prompt in words or ids). */
  promptTokens?: number;
  includeUsage?: boolean;
  /** Write `: ping` comment lines between chunks. */
  comments?: boolean;
  /** Use `data:{…}` without the space. */
  noSpace?: boolean;
  /** Pad the first content chunk so its line exceeds this many bytes. */
  bigLineBytes?: number;
  /** After this many content chunks, send `data: {"error": …}` and end the stream (status stays 200). */
  inBandErrorAfter?: number;
  /** Answer every request with this HTTP status (JSON error body). */
  status?: number;
  /** Every Nth request (1-based) fails with HTTP 503. */
  failEvery?: number;
  /** Server-Timing header to send. */
  serverTiming?: string;
  /** Send the role-only chat chunk at once (default true). */
  roleChunk?: boolean;
  model?: string;
  host?: string;
  /**
   * Plain timers only (ms-granular, no setImmediate spin before each deadline). For capacity runs, where the
   * schedule's sub-ms accuracy does not matter and a spinning upstream would take a whole core from the client.
   */
  coarseTimers?: boolean;
  /** Keep every request body for bodies() (default true; capacity runs turn it off to keep the heap small). */
  recordBodies?: boolean;
  /**
   * Serve at most this many streams at once; later requests wait in a FIFO queue (their TTFT includes the wait).
   * Gives the upstream a known capacity: maxConcurrent / (ttft + (tokens − 1) x itl) requests per second.
   */
  maxConcurrent?: number;
  /** Serve /tokenize and /detokenize like vLLM: words split on spaces, then into pieces of at most 6 characters. */
  tokenizer?: boolean;
}

/** What the upstream really did for one streamed request (ms, its own clock): the truth a client is judged by. */
export interface TruthRecord {
  /** Request fully received → first content chunk written. */
  ttftMs: number;
  /** Gaps between consecutive content chunk writes. */
  itlsMs: number[];
  /** Request headers parsed (the handler starts) → body fully read: the upstream's own intake time. */
  readMs: number;
}

export interface FixedUpstream {
  url: string;
  port: number;
  requests: () => number;
  bodies: () => unknown[];
  /** Request headers of every generation request, in arrival order. */
  headers: () => Array<Record<string, string | string[] | undefined>>;
  /** Per-request truth since the last reset (also served as GET /truth; DELETE /truth resets). */
  truth: () => TruthRecord[];
  close: () => Promise<void>;
}

/**
 * Resolve at `deadline` (performance.now() ms). Precise: a timer until ~1.5 ms before, then setImmediate
 * until due (sub-ms, but spins). Coarse: ms timers only.
 */
function waitUntil(deadline: number, precise: boolean): Promise<void> {
  return new Promise((resolve) => {
    const tick = (): void => {
      const left = deadline - performance.now();
      if (left <= 0) return resolve();
      if (!precise) setTimeout(tick, Math.max(1, Math.floor(left)));
      else if (left > 2) setTimeout(tick, Math.max(0, left - 1.5));
      else setImmediate(tick);
    };
    tick();
  });
}

export async function startFixedUpstream(opts: FixedUpstreamOptions = {}): Promise<FixedUpstream> {
  const o = { ttftMs: 20, itlMs: 5, includeUsage: true, roleChunk: true, model: 'fixed-model', ...opts };
  let count = 0;
  const bodies: unknown[] = [];
  let truth: TruthRecord[] = [];
  const sockets = new Set<import('node:net').Socket>();

  // The /tokenize stand-in: words split on spaces, then into pieces of at most 6 characters (so long words are
  // several tokens, like a real BPE); ids are pieces in order of first use (the first piece of a word keeps its
  // leading space).
  const pieces: string[] = [];
  const ids = new Map<string, number>();
  const encode = (text: string): number[] =>
    text
      .split(/\s+/)
      .filter(Boolean)
      .flatMap((w) => (w.match(/.{1,6}/g) ?? []).map((piece, i) => (i === 0 ? ' ' + piece : piece)))
      .map((piece) => {
        let id = ids.get(piece);
        if (id === undefined) {
          id = pieces.length;
          pieces.push(piece);
          ids.set(piece, id);
        }
        return id;
      });
  let active = 0;
  const queue: Array<() => void> = [];
  const acquire = (): Promise<void> | null => {
    if (o.maxConcurrent === undefined || active < o.maxConcurrent) {
      active++;
      return null;
    }
    return new Promise((resolve) => queue.push(resolve));
  };
  const release = (): void => {
    if (o.maxConcurrent === undefined) return;
    const next = queue.shift();
    if (next) next();
    else active--;
  };
  const headersSeen: Array<Record<string, string | string[] | undefined>> = [];

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    let t0 = performance.now();
    if (req.url === '/truth') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify(truth));
      if (req.method === 'DELETE') truth = [];
      return;
    }
    if (req.method === 'GET' && req.url === '/v1/models') {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ object: 'list', data: [{ id: o.model, object: 'model', root: `/models/${o.model}` }] }));
      return;
    }
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    if (o.tokenizer && req.method === 'POST' && (req.url === '/tokenize' || req.url === '/detokenize')) {
      const b = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as { prompt?: string; tokens?: number[]; messages?: Array<{ content: string }> };
      res.writeHead(200, { 'content-type': 'application/json' });
      if (req.url === '/detokenize') return void res.end(JSON.stringify({ prompt: (b.tokens ?? []).map((t) => pieces[t] ?? '').join('').trimStart() }));
      const text = b.messages ? b.messages.map((m) => `<s> ${m.content} </s>`).join(' ') : (b.prompt ?? '');
      const tokens = encode(text);
      return void res.end(JSON.stringify({ count: tokens.length, tokens, max_model_len: 4096 }));
    }
    const chat = req.url === '/v1/chat/completions';
    if (!chat && req.url !== '/v1/completions') {
      res.writeHead(404).end();
      return;
    }
    headersSeen.push(req.headers);
    const wait = acquire();
    if (wait) await wait;
    if (wait) t0 = performance.now(); // the schedule starts when a slot frees: the wait shows in the client's TTFT
    res.on('close', release);
    const arrived = performance.now();
    const writes: number[] = [];
    const body = JSON.parse(Buffer.concat(chunks).toString('utf8') || '{}') as Record<string, unknown>;
    if (o.recordBodies !== false) bodies.push(body);
    const n = ++count;
    const status = o.status ?? (o.failEvery && n % o.failEvery === 0 ? 503 : 200);
    if (status !== 200) {
      res.writeHead(status, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ error: { message: 'unavailable', type: 'ServiceUnavailable', code: status } }));
      return;
    }
    const maxTokens = Number(body.max_completion_tokens ?? body.max_tokens ?? 8);
    const tokens = o.tokens ?? maxTokens;
    const prompt = body.prompt ?? (body.messages as Array<{ content: string }> | undefined)?.[0]?.content ?? '';
    const promptTokens = o.promptTokens ?? (Array.isArray(prompt) ? prompt.length : JSON.stringify(prompt ?? '').split(/\s+/).filter(Boolean).length);
    const headers: Record<string, string> = { 'content-type': 'text/event-stream', 'cache-control': 'no-cache' };
    if (o.serverTiming) headers['server-timing'] = o.serverTiming;
    res.writeHead(200, headers);
    const prefix = o.noSpace ? 'data:' : 'data: ';
    const send = (obj: unknown): void => {
      if (o.comments) res.write(': ping\n\n');
      res.write(`${prefix}${JSON.stringify(obj)}\n\n`);
    };
    const id = `cmpl-${n}`;
    if (chat && o.roleChunk) send({ id, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { role: 'assistant', content: '' } }] });
    const per = Math.max(1, o.tokensPerChunk ?? 1);
    const nChunks = Math.ceil(tokens / per);
    let sent = 0;
    for (let k = 0; k < nChunks; k++) {
      await waitUntil(t0 + o.ttftMs + k * o.itlMs, !o.coarseTimers);
      if (res.destroyed) return;
      if (o.inBandErrorAfter !== undefined && k >= o.inBandErrorAfter) {
        send({ error: { message: 'engine died', type: 'InternalServerError', code: 500 } });
        res.end();
        return;
      }
      const take = Math.min(per, tokens - sent);
      sent += take;
      let text = Array.from({ length: take }, (_, j) => ` w${sent - take + j}`).join('');
      if (k === 0 && o.bigLineBytes) text += ' ' + 'x'.repeat(o.bigLineBytes);
      send(
        chat
          ? { id, object: 'chat.completion.chunk', choices: [{ index: 0, delta: { content: text }, finish_reason: null }] }
          : { id, object: 'text_completion', choices: [{ index: 0, text, finish_reason: null }] },
      );
      writes.push(performance.now());
    }
    if (writes.length > 0) truth.push({ ttftMs: writes[0]! - arrived, itlsMs: writes.slice(1).map((w, i) => w - writes[i]!), readMs: arrived - t0 });
    if (o.includeUsage) send({ id, choices: [], usage: { prompt_tokens: promptTokens, completion_tokens: tokens, total_tokens: promptTokens + tokens } });
    res.write(`${prefix}[DONE]\n\n`);
    res.end();
  };

  const server = createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent) res.writeHead(500);
      res.end(String(e));
    });
  });
  server.keepAliveTimeout = 60_000;
  server.on('connection', (s) => {
    s.setNoDelay(true);
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  const host = o.host ?? '127.0.0.1';
  await new Promise<void>((resolve) => server.listen(0, host, resolve));
  const port = (server.address() as AddressInfo).port;
  return {
    url: `http://${host}:${port}`,
    port,
    requests: () => count,
    bodies: () => bodies,
    headers: () => headersSeen,
    truth: () => truth,
    close: () =>
      new Promise<void>((resolve) => {
        for (const s of sockets) s.destroy();
        server.close(() => resolve());
      }),
  };
}

// Run as a separate process: `node --import tsx test/bench/fixed-upstream.ts '{"ttftMs":20}'` prints the URL.
if (process.argv[1] && import.meta.url === new URL(`file://${process.argv[1]}`).href) {
  const up = await startFixedUpstream(JSON.parse(process.argv[2] ?? '{}') as FixedUpstreamOptions);
  process.stdout.write(`${up.url}\n`);
  const stop = (): void => void up.close().then(() => process.exit(0));
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}
