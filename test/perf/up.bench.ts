/**
 * `npm run bench:up`: how long after the slowest engine becomes healthy is `pd up --simulate` ready?
 * Target (issue 5): within 1 s. The bench polls every engine's /health itself every 5 ms to timestamp the
 * moment the last one turns healthy, and timestamps the moment the proxy answers /health 200. Default
 * health.intervalMs (100 ms) is used, as a user would have it.
 */
import { makeStackDir } from '../helpers/stack.js';

const RUNS = Number(process.env.RUNS ?? 5);
const STARTUP_DELAY_S = process.env.STARTUP_DELAY ?? '2';

async function healthy(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/health`);
    await r.arrayBuffer();
    return r.status === 200;
  } catch {
    return false;
  }
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
}

const gaps: number[] = [];
const totals: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const s = await makeStackDir({ health: { timeoutSeconds: 60 } }, { PD_SIM_STARTUP_DELAY: STARTUP_DELAY_S });
  try {
    const t0 = performance.now();
    const engineReady = new Map<number, number>();
    let proxyReady = 0;
    let done = false;
    const poller = (async () => {
      while (!done) {
        for (const port of [s.ports.producer, s.ports.consumer]) {
          if (!engineReady.has(port) && (await healthy(port))) engineReady.set(port, performance.now());
        }
        if (!proxyReady && engineReady.size === 2 && (await healthy(s.ports.proxy))) proxyReady = performance.now();
        await new Promise((r) => setTimeout(r, 5));
      }
    })();
    const up = s.spawnPd(['up', '--simulate']);
    while (!proxyReady && up.exitCode === null) await new Promise((r) => setTimeout(r, 5));
    done = true;
    await poller;
    if (!proxyReady) throw new Error(`pd up failed: ${up.stderrText()}`);
    const slowest = Math.max(...engineReady.values());
    gaps.push(proxyReady - slowest);
    totals.push(proxyReady - t0);
    up.kill('SIGTERM');
    await new Promise((r) => up.once('exit', r));
  } finally {
    await s.cleanup();
  }
}

console.log(`pd up --simulate readiness (engines start in ${STARTUP_DELAY_S} s, health.intervalMs 100 (default), ${RUNS} runs)`);
console.log('| figure | median | max |');
console.log('| --- | --- | --- |');
console.log(`| ready after the slowest engine is healthy | ${median(gaps).toFixed(0)} ms | ${Math.max(...gaps).toFixed(0)} ms |`);
console.log(`| pd up start → proxy ready | ${median(totals).toFixed(0)} ms | ${Math.max(...totals).toFixed(0)} ms |`);
console.log(Math.max(...gaps) <= 1000 ? 'target (<= 1 s) met' : 'target (<= 1 s) MISSED');
