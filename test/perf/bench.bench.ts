/**
 * `npm run bench:bench`: accuracy and capacity of pd's load generator. PRINTS figures (no assertions):
 *  1. accuracy — upstream with a known fixed TTFT and ITL (in its own process): measured p50/p99 TTFT and ITL
 *     must be within 1 ms + 3% of the truth;
 *  2. a steady run at 500 req/s must achieve its offered rate within 2%;
 *  3. one process driving 2,000 req/s of 16-token streams must keep p99 send lateness under 5 ms.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { tmpdir } from 'node:os';
import { runBenchmark } from '../../src/bench/run.ts';
import type { RunResult } from '../../src/bench/result.ts';

const UPSTREAM = fileURLToPath(new URL('../bench/fixed-upstream.ts', import.meta.url));

async function upstream(opts: Record<string, unknown>): Promise<{ url: string; child: ChildProcess }> {
  const child = spawn(process.execPath, ['--import', 'tsx', UPSTREAM, JSON.stringify(opts)], { stdio: ['ignore', 'pipe', 'inherit'] });
  const url = await new Promise<string>((resolve, reject) => {
    let buf = '';
    child.stdout!.on('data', (b) => {
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

const f = (n: number): string => n.toFixed(2);
const within = (measured: number, truth: number): boolean => Math.abs(measured - truth) <= 1 + 0.03 * truth;

const rows: string[] = [];
const print = (s: string): void => {
  rows.push(s);
  console.log(s);
};

// 1. Accuracy
{
  const TTFT = 50;
  const ITL = 10;
  const { url, child } = await upstream({ ttftMs: TTFT, itlMs: ITL });
  await run(url, 20, 20, 16, 'chat'); // warm-up (JIT, connections)
  const r = await run(url, 20, 200, 16, 'chat');
  const rec = r as Record<string, number>;
  print(`accuracy (truth TTFT ${TTFT} ms, ITL ${ITL} ms, 200 chat requests at 20 req/s, 16 tokens):`);
  for (const [name, key, truth] of [
    ['TTFT p50', 'p50_ttft_ms', TTFT],
    ['TTFT p99', 'p99_ttft_ms', TTFT],
    ['ITL p50', 'p50_itl_ms', ITL],
    ['ITL p99', 'p99_itl_ms', ITL],
  ] as const) {
    const v = rec[key]!;
    print(`  ${name.padEnd(9)} ${f(v).padStart(8)} ms  error ${f(v - truth).padStart(6)} ms  limit ±${f(1 + 0.03 * truth)}  ${within(v, truth) ? 'PASS' : 'FAIL'}`);
  }
  child.kill('SIGTERM');
}

// 2. Steady 500 req/s
{
  const { url, child } = await upstream({ ttftMs: 5, itlMs: 1 });
  await run(url, 200, 200, 16);
  const r = await run(url, 500, 2500, 16);
  const err = (r.request_throughput - 500) / 500;
  print(`steady 500 req/s x 5 s (16-token streams): achieved ${f(r.request_throughput)} req/s (${f(err * 100)}%), completed ${r.completed}/${r.num_prompts}, lateness p99 ${f(r.pd_send_lateness_ms!.p99)} ms  ${Math.abs(err) <= 0.02 ? 'PASS' : 'FAIL'}`);
  child.kill('SIGTERM');
}

// 3. 2,000 req/s of 16-token streams
{
  const { url, child } = await upstream({ ttftMs: 5, itlMs: 1 });
  await run(url, 500, 500, 16);
  const r = await run(url, 2000, 10000, 16);
  const l = r.pd_send_lateness_ms!;
  print(`capacity 2000 req/s x 5 s (16-token streams): achieved ${f(r.request_throughput)} req/s, completed ${r.completed}/${r.num_prompts}, send lateness p50 ${f(l.p50)} p99 ${f(l.p99)} max ${f(l.max)} ms  ${l.p99 < 5 ? 'PASS' : 'FAIL'}`);
  child.kill('SIGTERM');
}
console.log(`\n(cpus: ${(await import('node:os')).cpus().length}, load avg ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')})`);
