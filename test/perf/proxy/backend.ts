/**
 * Zero-latency fake engines for the proxy bench (child process): one producer and one consumer port.
 * Non-streaming requests are answered at once; streams get one chunk per stream on each engine "step"
 * (every `stepMs`, like vLLM's batched decode; 0 = all chunks at once) for `tokens` steps.
 * Usage: node --import tsx backend.ts '<json args>'; prints {"producer":port,"consumer":port} when ready.
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

const args = JSON.parse(process.argv[2] ?? '{}') as { stepMs?: number; tokens?: number; startAfter?: number; drainOnly?: boolean };
const stepMs = args.stepMs ?? 0;
// Streams opened while others are still being opened wait (headers sent, no tokens) until `startAfter` of them
// wait or none has arrived for 2 s; then they all stream together. Without this, a client that needs
// seconds to open 2,000 streams never has 2,000 open at once (the first ones end before the last ones begin).
const startAfter = args.startAfter ?? 0;
const QUIET_MS = 2000;

// Each chunk carries the time it was written (`pd_t`, ms on the shared wall clock: timeOrigin + now), so the
// client can tell how much a gap was stretched on the way rather than how late this process's step timer was,
// and a unique key (`pd_k`: stream-index) by which wire-timing.ts finds the same event on both sides of the proxy.
let streamSeq = 0;
const chunk = (stream: number, i: number): string =>
  `data: {"id":"chatcmpl-b","pd_t":${(performance.timeOrigin + performance.now()).toFixed(3)},"pd_k":"${stream}-${i}","object":"chat.completion.chunk","created":1,"model":"bench","choices":[{"index":0,"delta":{"content":"tok${i} "},"finish_reason":null}]}\n\n`;
const done = 'data: [DONE]\n\n';
const full = JSON.stringify({
  id: 'chatcmpl-b',
  object: 'chat.completion',
  created: 1,
  model: 'bench',
  choices: [{ index: 0, message: { role: 'assistant', content: 'tok' }, finish_reason: 'length' }],
  usage: { prompt_tokens: 12, completion_tokens: 1, total_tokens: 13 },
});

interface Live {
  res: ServerResponse;
  stream: number;
  left: number;
  i: number;
}
const live = new Set<Live>();
const waiting: Live[] = [];
let lastArrival = 0;
if (stepMs > 0) {
  setInterval(() => {
    if (waiting.length > 0 && (waiting.length >= startAfter || performance.now() - lastArrival >= QUIET_MS)) {
      for (const w of waiting) live.add(w);
      waiting.length = 0;
    }
    for (const s of live) {
      if (s.res.destroyed) {
        live.delete(s);
        continue;
      }
      s.res.write(chunk(s.stream, s.i++));
      if (--s.left === 0) {
        s.res.end(done);
        live.delete(s);
      }
    }
  }, stepMs);
}

function handler(req: IncomingMessage, res: ServerResponse): void {
  if (req.method === 'GET') {
    res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    return;
  }
  if (args.drainOnly) {
    // Read and drop the body, answer a non-streaming completion: huge bodies cost this process nothing.
    req.resume();
    req.on('end', () => res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full) }).end(full));
    return;
  }
  const parts: Buffer[] = [];
  req.on('data', (c: Buffer) => parts.push(c));
  req.on('end', () => {
    const j = JSON.parse(Buffer.concat(parts).toString()) as { stream?: boolean; max_tokens?: number };
    if (!j.stream) {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(full) }).end(full);
      return;
    }
    res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
    const n = args.tokens ?? j.max_tokens ?? 8;
    if (stepMs === 0) {
      let s = '';
      const stream = streamSeq++;
      for (let i = 0; i < n; i++) s += chunk(stream, i);
      res.end(s + done);
    } else {
      waiting.push({ res, stream: streamSeq++, left: n, i: 0 });
      lastArrival = performance.now();
    }
  });
}

const listen = (): Promise<number> =>
  new Promise((resolve) => {
    const s = createServer({ keepAliveTimeout: 60_000 }, handler);
    s.listen(0, '127.0.0.1', () => resolve((s.address() as AddressInfo).port));
  });
const producer = await listen();
const consumer = await listen();
process.stdout.write(JSON.stringify({ producer, consumer }) + '\n');
