/**
 * `npm run bench:bench`: accuracy and capacity of pd's load generator. PRINTS figures (no assertions):
 *  0. the accuracy table at 1, 10, 50 and 200 req/s (TTFT/ITL p50 against the truth; target at 200 req/s:
 *     TTFT p50 within 2 ms);
 *  1. accuracy — upstream with a fixed TTFT and ITL schedule (in its own process) that also records what it
 *     really did (timers fire a little late, more so under load): the truth is the upstream's own measured
 *     TTFT (request received → first chunk written) and ITL (gaps between chunk writes); pd's p50/p99 TTFT and
 *     ITL must be within 1 ms + 3% of the truth's p50/p99. The nominal schedule is printed beside it;
 *  2. a steady run at 500 req/s must achieve its offered rate within 2%;
 *  3. one process driving 2,000 req/s of 16-token streams must keep p99 send lateness under 5 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { setPriority, tmpdir } from 'node:os';
import { runBenchmark } from '../../src/bench/run.ts';
import type { RunResult } from '../../src/bench/result.ts';
import { percentile } from '../../src/bench/stats.ts';
import type { TruthRecord } from '../bench/fixed-upstream.ts';

const UPSTREAM = fileURLToPath(new URL('../bench/fixed-upstream.ts', import.meta.url));

/**
 * The upstream runs at the lowest CPU priority (nice 19, PD_BENCH_UPSTREAM_NICE to change): it stands in for
 * a server on other machines, and on a 2-core box at normal priority it takes time slices from the client
 * under test (measured: ~500 involuntary context switches per capacity run, p99 lateness 3.8–5.1 ms at nice 0
 * vs 3.6 ms at nice 19).
 */
const UPSTREAM_NICE = Number(process.env.PD_BENCH_UPSTREAM_NICE ?? 19);

async function upstream(opts: Record<string, unknown>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', UPSTREAM, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
  try {
    if (child.pid !== undefined) setPriority(child.pid, UPSTREAM_NICE);
  } catch {
    /* not allowed here: runs at normal priority */
  }
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout.on('data', (b) => {
      buf += b;
      if (buf.includes('\n')) resolve(buf.trim());
    });
    child.on('exit', (c) => reject(new Error(`upstream exited ${c}`)));
  });
  return { url, child };
}

async function run(url: string, rate: number, count: number, outputLen: number, endpoint: 'chat' | 'completions' = 'completions'): Promise<RunResult> {
  const { result } = await runBenchmark({
    target: url,
    set: 'perf',
    resultsDir: tmpdir(),
    kind: 'single',
    endpoint,
    model: 'fixed-model',
    dataset: { kind: 'random', inputLen: 32, outputLen },
    count,
    rate,
    seed: 1,
    percentiles: [50, 99],
    write: false,
    keepText: false,
  });
  return result;
}

/**
 * The floor for accuracy: a bare undici client (no generator, no SSE parser, no metrics) sending the same
 * number of chat requests at a fixed interval; TTFT/ITL from the raw reads of content chunks. What it shows
 * beyond the upstream's truth is the transport and OS wake-up cost on this machine, which any client pays.
 */
async function bareClient(url: string, count: number, intervalMs: number): Promise<{ ttfts: number[]; itls: number[] }> {
  const { Pool } = await import('undici');
  const pool = new Pool(url, { connections: 64 });
  const body = JSON.stringify({ model: 'fixed-model', stream: true, messages: [{ role: 'user', content: 'hello there' }], max_completion_tokens: 16 });
  const ttfts: number[] = [];
  const itls: number[] = [];
  const one = async (): Promise<void> => {
    const st = performance.now();
    const res = await pool.request({ path: '/v1/chat/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body });
    let last = -1;
    for await (const b of res.body) {
      const now = performance.now();
      if (!String(b).includes('"content":" w')) continue;
      if (last < 0) ttfts.push(now - st);
      else itls.push(now - last);
      last = now;
    }
  };
  const all: Promise<void>[] = [];
  for (let i = 0; i < count; i++) {
    all.push(one());
    await new Promise((r) => setTimeout(r, intervalMs));
  }
  await Promise.all(all);
  await pool.close();
  return { ttfts, itls };
}

const f = (n: number): string => n.toFixed(2);
const within = (measured: number, truth: number): boolean => Math.abs(measured - truth) <= 1 + 0.03 * truth;

const rows: string[] = [];
const print = (s: string): void => {
  rows.push(s);
  console.log(s);
};

// PD_BENCH_ONLY=rates|accuracy|steady|capacity runs one part (comma-separated list) when iterating on one figure.
const only = new Set((process.env.PD_BENCH_ONLY ?? 'rates,accuracy,steady,capacity').split(','));

// 0. The accuracy table: TTFT and ITL p50 against the upstream's truth at 1, 10, 50 and 200 req/s (chat, 16-token
// streams, schedule TTFT 50 ms / ITL 10 ms; about 10 s of load per rate, 20 requests at 1 req/s). The target at
// 200 req/s: TTFT p50 within 2 ms of the truth.
if (only.has('rates')) {
  const TTFT = 50;
  const ITL = 10;
  const { url, child } = await upstream({ ttftMs: TTFT, itlMs: ITL, coarseTimers: true, recordBodies: false });
  await run(url, 50, 100, 16, 'chat'); // warm-up (JIT, connections)
  print(`accuracy by rate (schedule TTFT ${TTFT} ms, ITL ${ITL} ms; chat, 16 tokens; truth = the upstream's own timestamps):`);
  print('  rate req/s  requests  TTFT p50 pd / truth / error (ms)   ITL p50 pd / truth / error (ms)   send lateness p99');
  for (const rate of [1, 10, 50, 200]) {
    const n = rate === 1 ? 20 : rate * 10;
    await fetch(`${url}/truth`, { method: 'DELETE' }).then((r) => r.arrayBuffer());
    const r = await run(url, rate, n, 16, 'chat');
    const truth = (await (await fetch(`${url}/truth`)).json()) as TruthRecord[];
    const tT = percentile(truth.map((t) => t.ttftMs), 50);
    const tI = percentile(truth.flatMap((t) => t.itlsMs), 50);
    const read = percentile(truth.map((t) => t.readMs), 50);
    const rec = r as Record<string, number>;
    const eT = rec.median_ttft_ms! - tT;
    const eI = rec.median_itl_ms! - tI;
    print(
      `  ${String(rate).padStart(10)}  ${String(n).padStart(8)}  ${f(rec.median_ttft_ms!).padStart(8)} / ${f(tT).padStart(6)} / ${f(eT).padStart(6)}        ` +
        `${f(rec.median_itl_ms!).padStart(7)} / ${f(tI).padStart(6)} / ${f(eI).padStart(6)}        ${f(r.pd_send_lateness_ms!.p99).padStart(6)}` +
        `   (upstream body read p50 ${f(read)} ms)` +
        (rate === 200 ? `   ${Math.abs(eT) <= 2 ? 'PASS' : 'FAIL'} (TTFT p50 within 2 ms)` : ''),
    );
  }
  // The floor at 200 req/s: a bare undici client against the same upstream.
  await fetch(`${url}/truth`, { method: 'DELETE' }).then((r) => r.arrayBuffer());
  const bare = await bareClient(url, 2000, 5);
  const bTruth = (await (await fetch(`${url}/truth`)).json()) as TruthRecord[];
  const bt = percentile(bTruth.map((t) => t.ttftMs), 50);
  print(`  floor at 200 req/s: a bare undici client's TTFT p50 ${f(percentile(bare.ttfts, 50))} / truth ${f(bt)} / error ${f(percentile(bare.ttfts, 50) - bt)} ms`);
  child.kill('SIGTERM');
}

// 1. Accuracy
if (only.has('accuracy')) {
  const TTFT = 50;
  const ITL = 10;
  const { url, child } = await upstream({ ttftMs: TTFT, itlMs: ITL, coarseTimers: true });
  await run(url, 20, 20, 16, 'chat'); // warm-up (JIT, connections)
  await fetch(`${url}/truth`, { method: 'DELETE' }).then((r) => r.arrayBuffer());
  // 1,000 requests: a p99 over 200 is the second-worst sample and swings by milliseconds between runs.
  const N = 1000;
  const RATE = 50;
  const r = await run(url, RATE, N, 16, 'chat');
  const truth = (await (await fetch(`${url}/truth`)).json()) as TruthRecord[];
  const tTtft = truth.map((t) => t.ttftMs);
  const tItl = truth.flatMap((t) => t.itlsMs);
  const rec = r as Record<string, number>;
  print(`accuracy (schedule TTFT ${TTFT} ms, ITL ${ITL} ms; ${N} chat requests at ${RATE} req/s, 16 tokens; truth = upstream's own timestamps):`);
  for (const [name, key, values, p, nominal] of [
    ['TTFT p50', 'p50_ttft_ms', tTtft, 50, TTFT],
    ['TTFT p99', 'p99_ttft_ms', tTtft, 99, TTFT],
    ['ITL p50', 'p50_itl_ms', tItl, 50, ITL],
    ['ITL p99', 'p99_itl_ms', tItl, 99, ITL],
  ] as const) {
    const v = rec[key]!;
    const t = percentile(values, p);
    print(
      `  ${name.padEnd(9)} pd ${f(v).padStart(7)} ms  truth ${f(t).padStart(7)} ms (schedule ${nominal})  error ${f(v - t).padStart(6)} ms  limit ±${f(1 + 0.03 * t)}  ${within(v, t) ? 'PASS' : 'FAIL'}`,
    );
  }
  await fetch(`${url}/truth`, { method: 'DELETE' }).then((r) => r.arrayBuffer());
  const bare = await bareClient(url, N, 1000 / RATE);
  const bTruth = (await (await fetch(`${url}/truth`)).json()) as TruthRecord[];
  const bt = bTruth.map((t) => t.ttftMs);
  const bi = bTruth.flatMap((t) => t.itlsMs);
  print('  floor: a bare undici client against the same upstream (its error is the transport/wake-up cost of this machine):');
  for (const [name, values, truthValues, p] of [
    ['TTFT p50', bare.ttfts, bt, 50],
    ['TTFT p99', bare.ttfts, bt, 99],
    ['ITL p50', bare.itls, bi, 50],
    ['ITL p99', bare.itls, bi, 99],
  ] as const) {
    const v = percentile(values, p);
    const t = percentile(truthValues, p);
    print(`  ${name.padEnd(9)} bare ${f(v).padStart(7)} ms  truth ${f(t).padStart(7)} ms  error ${f(v - t).padStart(6)} ms`);
  }
  child.kill('SIGTERM');
}

// 2. Steady 500 req/s
if (only.has('steady')) {
  const { url, child } = await upstream({ ttftMs: 5, itlMs: 1, recordBodies: false });
  await run(url, 200, 200, 16);
  const r = await run(url, 500, 2500, 16);
  const err = (r.request_throughput - 500) / 500;
  print(`steady 500 req/s x 5 s (16-token streams): achieved ${f(r.request_throughput)} req/s (${f(err * 100)}%), completed ${r.completed}/${r.num_prompts}, lateness p99 ${f(r.pd_send_lateness_ms!.p99)} ms  ${Math.abs(err) <= 0.02 ? 'PASS' : 'FAIL'}`);
  child.kill('SIGTERM');
}

// 3. 2,000 req/s of 16-token streams. The upstream uses plain timers here: its sub-ms spin would take a
// whole core of this machine from the client being measured.
if (only.has('capacity')) {
  const { url, child } = await upstream({ ttftMs: 5, itlMs: 1, coarseTimers: true, recordBodies: false });
  await run(url, 500, 500, 16);
  const r = await run(url, 2000, 10000, 16);
  const l = r.pd_send_lateness_ms!;
  print(`capacity 2000 req/s x 5 s (16-token streams): achieved ${f(r.request_throughput)} req/s, completed ${r.completed}/${r.num_prompts}, send lateness p50 ${f(l.p50)} p99 ${f(l.p99)} max ${f(l.max)} ms  ${l.p99 < 5 ? 'PASS' : 'FAIL'}`);
  child.kill('SIGTERM');
}
console.log(`\n(cpus: ${(await import('node:os')).cpus().length}, load avg ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')})`);
