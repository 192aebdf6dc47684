/**
 * Closed-loop load generator (child process of proxy.bench.ts): `concurrency` virtual users send the same
 * request back to back for `durationMs` and report req/s, latency percentiles and (for streams) the gaps
 * between chunks. Mode `direct` calls producer then consumer itself (the no-proxy baseline).
 * Usage: node --import tsx loadgen.ts '<json args>'  → prints one JSON line.
 */
import { Pool } from 'undici';
import hdr from 'hdr-histogram-js';

interface Args {
  target: string;
  /** direct mode: producer and consumer base URLs */
  producer?: string;
  consumer?: string;
  mode: 'proxy' | 'direct';
  concurrency: number;
  durationMs: number;
  warmupMs: number;
  stream: boolean;
  maxTokens: number;
  /** record inter-chunk gaps (µs) */
  itl?: boolean;
  /** each user sends exactly one request (the 2,000-stream test) */
  once?: boolean;
  /** also run this many streams straight to `directTarget` at the same time (ITL baseline under equal load) */
  directTarget?: string;
  directConcurrency?: number;
}

const args = JSON.parse(process.argv[2]!) as Args;
const body = JSON.stringify({
  model: 'bench',
  messages: [{ role: 'user', content: 'Hello there, how are you today? Tell me a story.' }],
  max_tokens: args.maxTokens,
  stream: args.stream,
  ignore_eos: true,
});
const prefill = JSON.stringify({ ...JSON.parse(body), max_tokens: 1, stream: false });
const headers = { 'content-type': 'application/json' };
const path = '/v1/chat/completions';

const mkPool = (u: string): Pool => new Pool(u, { connections: args.concurrency, pipelining: 1, headersTimeout: 0, bodyTimeout: 0 });
const target = mkPool(args.target);
const prod = args.producer ? mkPool(args.producer) : undefined;
const cons = args.consumer ? mkPool(args.consumer) : undefined;
const side = args.directTarget ? new Pool(args.directTarget, { connections: args.directConcurrency ?? 1, headersTimeout: 0, bodyTimeout: 0 }) : undefined;

const lat = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
const gaps = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
const sideGaps = hdr.build({ lowestDiscernibleValue: 1, highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: 3 });
let sideDone = 0;
const errorSamples: string[] = [];
const noteError = (e: unknown): void => {
  if (errorSamples.length < 3) errorSamples.push(String((e as Error)?.message ?? e) + ((e as { code?: string })?.code ? ` (${(e as { code?: string }).code})` : ''));
};
let done = 0;
let errors = 0;
let measuring = false;
const statusCounts: Record<string, number> = {};

/** Per-event stretch samples (ms): (arrival gap) − (write gap) between consecutive chunks of one stream. */
const stretch: number[] = [];
const sideStretch: number[] = [];

async function consume(p: Pool, b: string, stream: boolean, h = gaps, st = stretch): Promise<number> {
  if (!stream || !args.itl) {
    const r = await p.request({ method: 'POST', path, headers, body: b });
    await r.body.dump({ limit: Infinity }).catch(() => undefined);
    return r.statusCode;
  }
  // Streams through undici's handler API (no Readable per response) so that the client, which shares the
  // machine with the backend and the proxy, spends as little CPU per chunk as it can.
  return new Promise<number>((resolve, reject) => {
    let status = 0;
    let last = 0;
    let lastWrite = 0;
    let lastArrive = 0;
    p.dispatch(
      { method: 'POST', path, headers, body: b },
      {
        onRequestStart() {
          /* marks this as a new-style (controller) handler for undici */
        },
        onResponseStart(_c, code) {
          status = code;
        },
        onResponseData(_c, chunk: Buffer) {
          const now = performance.now();
          const arrive = performance.timeOrigin + now;
          if (last !== 0 && measuring) h.recordValue(Math.max(1, Math.round((now - last) * 1000)));
          last = now;
          // every event in this read arrived now; pair each with the time the backend wrote it
          const text = chunk.toString('latin1');
          for (let i = text.indexOf('"pd_t":'); i !== -1; i = text.indexOf('"pd_t":', i + 7)) {
            const w = Number.parseFloat(text.slice(i + 7, text.indexOf(',', i + 7)));
            if (lastWrite !== 0 && measuring) st.push(arrive - lastArrive - (w - lastWrite));
            lastWrite = w;
            lastArrive = arrive;
          }
        },
        onResponseEnd() {
          resolve(status);
        },
        onResponseError(_c, err) {
          reject(err);
        },
      },
    );
  });
}

async function one(): Promise<void> {
  const t = performance.now();
  let status: number;
  if (args.mode === 'direct') {
    const s1 = await consume(prod!, prefill, false);
    status = s1 >= 300 ? s1 : await consume(cons!, body, args.stream);
  } else {
    status = await consume(target, body, args.stream);
  }
  if (measuring) {
    lat.recordValue(Math.max(1, Math.round((performance.now() - t) * 1000)));
    done++;
    statusCounts[status] = (statusCounts[status] ?? 0) + 1;
    if (status !== 200) errors++;
  }
}

async function user(deadline: number): Promise<void> {
  if (args.once) {
    try {
      await one();
    } catch (e) {
      errors++;
      noteError(e);
    }
    return;
  }
  while (performance.now() < deadline) {
    try {
      await one();
    } catch (e) {
      if (measuring) errors++;
      noteError(e);
    }
  }
}

const start = performance.now();
if (args.warmupMs > 0) {
  const wEnd = start + args.warmupMs;
  await Promise.all(Array.from({ length: args.concurrency }, () => user(wEnd)));
}
measuring = true;
const t0 = performance.now();
const sideUsers = side
  ? Array.from({ length: args.directConcurrency ?? 1 }, async () => {
      try {
        if ((await consume(side, body, args.stream, sideGaps, sideStretch)) === 200) sideDone++;
      } catch {
        /* counted as not done */
      }
    })
  : [];
await Promise.all([...Array.from({ length: args.concurrency }, () => user(t0 + args.durationMs)), ...sideUsers]);
const elapsed = (performance.now() - t0) / 1000;
const pct = (h: typeof lat, p: number): number => h.getValueAtPercentile(p) / 1000;
const exact = (xs: number[], p: number): number | null => {
  if (xs.length === 0) return null;
  const s = Float64Array.from(xs).sort();
  const r = (p / 100) * (s.length - 1);
  const lo = Math.floor(r);
  return s[lo]! + (s[Math.min(lo + 1, s.length - 1)]! - s[lo]!) * (r - lo);
};
process.stdout.write(
  JSON.stringify({
    requests: done,
    errors,
    statusCounts,
    seconds: elapsed,
    rps: done / elapsed,
    p50ms: pct(lat, 50),
    p90ms: pct(lat, 90),
    p99ms: pct(lat, 99),
    gapP50ms: gaps.totalCount ? pct(gaps, 50) : null,
    gapP99ms: gaps.totalCount ? pct(gaps, 99) : null,
    gapCount: gaps.totalCount,
    directDone: sideDone,
    errorSamples,
    directGapP50ms: sideGaps.totalCount ? pct(sideGaps, 50) : null,
    directGapP99ms: sideGaps.totalCount ? pct(sideGaps, 99) : null,
    stretchP50ms: exact(stretch, 50),
    stretchP99ms: exact(stretch, 99),
    stretchCount: stretch.length,
    directStretchP50ms: exact(sideStretch, 50),
    directStretchP99ms: exact(sideStretch, 99),
    directStretchCount: sideStretch.length,
  }) + '\n',
);
await Promise.all([target.close(), prod?.close(), cons?.close(), side?.close()]);
process.exit(0);
