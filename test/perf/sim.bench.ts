/**
 * npm run bench:sim — throughput of the simulator (built dist/sim/main.js, one process = one core):
 *  1. zero-latency non-streaming completions/s, driven by wrk (C, one thread, 64 connections) when installed
 *     (`apt-get install -y wrk`) and by undici (64 keep-alive connections, same process as this script);
 *  2. 2,000 concurrent streams (ITL 50 ms, 200 tokens each; BENCH_ONLY=streams|requests runs one part): completion count, peak running, client-side ITL.
 * Prints figures; asserts nothing (the README quotes them).
 */
import { Pool } from 'undici';
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { startSim } from '../helpers/sim.js';
import { tempDir } from '../helpers/tmp.js';

const N = Number(process.env.BENCH_N ?? 40_000);
const CONNS = Number(process.env.BENCH_CONNS ?? 64);
const STREAMS = Number(process.env.BENCH_STREAMS ?? 2000);
const STREAM_TOKENS = Number(process.env.BENCH_STREAM_TOKENS ?? 200);
// Note: on a shared 2-core machine the load generator competes with the simulator; the CPU-second figure is the
// simulator's own cost, independent of that contention.

/** CPU seconds (user + system) used so far by a process (Linux /proc; clock ticks are 100 Hz). */
function cpuSeconds(pid: number): number {
  try {
    const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (Number(f[11]) + Number(f[12])) / 100;
  } catch {
    return NaN;
  }
}

function pct(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

async function nonStreaming(): Promise<void> {
  const sim = await startSim({ env: { PD_SIM_ZERO_LATENCY: '1' } });
  let hasWrk = true;
  try {
    execFileSync('wrk', ['--version'], { stdio: 'ignore' });
  } catch (e) {
    hasWrk = (e as { code?: string }).code !== 'ENOENT'; // wrk --version exits 1 but exists
  }
  if (hasWrk) {
    const { dir, cleanup } = await tempDir('pd-sim-bench-');
    const lua = join(dir, 'post.lua');
    writeFileSync(lua, `wrk.method = "POST"\nwrk.body = '{"model":"sim-model","prompt":"The quick brown fox jumps over the lazy dog","max_tokens":16}'\nwrk.headers["Content-Type"] = "application/json"\n`);
    const url = `${sim.url}/v1/completions`;
    execFileSync('wrk', ['-t1', '-c64', '-d3s', '-s', lua, url], { stdio: 'ignore' }); // warm-up
    const cpu0 = cpuSeconds(sim.pid);
    const out = execFileSync('wrk', ['-t1', '-c64', '-d10s', '-s', lua, url], { encoding: 'utf8' });
    const cpu = cpuSeconds(sim.pid) - cpu0;
    const rps = /Requests\/sec:\s+(\S+)/.exec(out)?.[1];
    const total = Number(/(\d+) requests in/.exec(out)?.[1] ?? NaN);
    const non2xx = /Non-2xx or 3xx responses: (\d+)/.exec(out)?.[1] ?? '0';
    console.log(`non-streaming completions via wrk (zero latency, max_tokens 16, 1 thread, 64 connections, 10 s): ${rps} req/s, non-2xx ${non2xx}`);
    console.log(`  simulator CPU: ${cpu.toFixed(2)} s for ${total} requests = ${Math.round(total / cpu)} requests per CPU-second (capacity of one dedicated core)`);
    await cleanup();
  } else console.log('wrk not installed: skipping the wrk figure (apt-get install -y wrk)');
  const pool = new Pool(sim.url, { connections: CONNS, pipelining: 1 });
  const body = JSON.stringify({ model: 'sim-model', prompt: 'The quick brown fox jumps over the lazy dog', max_tokens: 16 });
  const one = async (): Promise<void> => {
    const r = await pool.request({ path: '/v1/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body });
    await r.body.text();
    if (r.statusCode !== 200) throw new Error(`status ${r.statusCode}`);
  };
  for (let i = 0; i < 2000; i++) await one(); // warm-up
  let next = 0;
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: CONNS }, async () => {
      while (next++ < N) await one();
    }),
  );
  const s = (performance.now() - t0) / 1000;
  console.log(`non-streaming completions via undici (zero latency, max_tokens 16, ${CONNS} connections): ${N} in ${s.toFixed(2)} s = ${Math.round(N / s)} req/s`);
  await pool.close();
  await sim.stop();
}

async function streams(): Promise<void> {
  const sim = await startSim({ env: { PD_SIM_ZERO_LATENCY: '1', PD_SIM_ITL_MS: '50' }, args: ['--max-num-seqs', String(STREAMS), '--sim-time-factor-under-load', '1', '--sim-hbm-gbps', '0'] });
  const pool = new Pool(sim.url, { connections: STREAMS });
  const gaps: number[] = [];
  let ok = 0;
  const body = JSON.stringify({ model: 'sim-model', prompt: 'hello stream', max_tokens: STREAM_TOKENS, ignore_eos: true, stream: true });
  const t0 = performance.now();
  let peak = 0;
  const poll = setInterval(async () => {
    const m = await (await fetch(`${sim.url}/metrics`)).text();
    const v = Number(/^vllm:num_requests_running\{[^}]*\} (\S+)$/m.exec(m)?.[1] ?? 0);
    peak = Math.max(peak, v);
  }, 200);
  const cpu0 = cpuSeconds(sim.pid);
  await Promise.all(
    Array.from({ length: STREAMS }, async () => {
      const r = await pool.request({ path: '/v1/completions', method: 'POST', headers: { 'content-type': 'application/json' }, body });
      let last = 0;
      let chunks = 0;
      for await (const c of r.body) {
        const now = performance.now();
        const n = (Buffer.from(c).toString().match(/^data: \{/gm) ?? []).length;
        if (n > 0) {
          if (last) gaps.push(now - last);
          last = now;
          chunks += n;
        }
      }
      if (chunks >= STREAM_TOKENS) ok++;
    }),
  );
  clearInterval(poll);
  const s = (performance.now() - t0) / 1000;
  gaps.sort((a, b) => a - b);
  const mean = gaps.reduce((a, b) => a + b, 0) / gaps.length;
  console.log(
    `concurrent streams: ${ok}/${STREAMS} complete (${STREAM_TOKENS} tokens each, ITL 50 ms), peak running ${peak}, wall ${s.toFixed(2)} s, ` +
      `client ITL mean ${mean.toFixed(1)} ms p50 ${pct(gaps, 50).toFixed(1)} ms p99 ${pct(gaps, 99).toFixed(1)} ms, ` +
      `simulator CPU ${(cpuSeconds(sim.pid) - cpu0).toFixed(2)} s for ${STREAMS * STREAM_TOKENS} streamed tokens`,
  );
  await pool.close();
  await sim.stop();
}

if (process.env.BENCH_ONLY !== 'streams') await nonStreaming();
if (process.env.BENCH_ONLY !== 'requests') await streams();
