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

async function consume(p: Pool, b: string, stream: boolean, h = gaps): Promise<number> {
  const r = await p.request({ method: 'POST', path, headers, body: b });
  if (!stream || !args.itl) {
    await r.body.dump({ limit: Infinity } as never).catch(async () => undefined);
    return r.statusCode;
  }
  let last = 0;
  for await (const _chunk of r.body) {
    const t = performance.now();
    if (last !== 0 && measuring) h.recordValue(Math.max(1, Math.round((t - last) * 1000)));
    last = t;
  }
  return r.statusCode;
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
        if ((await consume(side, body, args.stream, sideGaps)) === 200) sideDone++;
      } catch {
        /* counted as not done */
      }
    })
  : [];
await Promise.all([...Array.from({ length: args.concurrency }, () => user(t0 + args.durationMs)), ...sideUsers]);
const elapsed = (performance.now() - t0) / 1000;
const pct = (h: typeof lat, p: number): number => h.getValueAtPercentile(p) / 1000;
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
  }) + '\n',
);
await Promise.all([target.close(), prod?.close(), cons?.close(), side?.close()]);
process.exit(0);
