import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { startFixedUpstream, type FixedUpstream } from './fixed-upstream.ts';
import { runLoad } from '../../src/bench/generator.ts';
import { warmConnections, warmConnectionCount } from '../../src/bench/warm-up.ts';
import type { RequestSettings } from '../../src/bench/request.ts';

const ups: FixedUpstream[] = [];
const pools: Pool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await Promise.all(ups.map((u) => u.close()));
});

const settings: RequestSettings = { endpoint: 'completions', model: 'm', ignoreEos: true, basePath: '', keepText: true };
const prompts = (n: number, outputLen: (i: number) => number) =>
  Array.from({ length: n }, (_, i) => ({ prompt: `p${i}`, promptLen: 1, outputLen: outputLen(i) }));

async function upstream(opts: Parameters<typeof startFixedUpstream>[0]): Promise<{ up: FixedUpstream; pool: Pool }> {
  const up = await startFixedUpstream(opts);
  ups.push(up);
  const pool = new Pool(up.url);
  pools.push(pool);
  return { up, pool };
}

test('every request comes back whole and in index order (per-request ITLs, texts, errors, timings)', async () => {
  const { pool } = await upstream({ ttftMs: 5, itlMs: 2, failEvery: 5 });
  const n = 25;
  const offsetsMs = Array.from({ length: n }, (_, i) => i * 4);
  const r = await runLoad({ dispatcher: pool, settings, prompts: prompts(n, (i) => 2 + (i % 4)), offsetsMs });
  assert.equal(r.partial, false);
  assert.equal(r.outcomes.length, n);
  // The upstream counts requests in arrival order; every 5th one it receives fails with 503.
  assert.equal(r.outcomes.filter((o) => !o.success).length, 5);
  for (const [k, o] of r.outcomes.entries()) {
    assert.equal(o.index, k);
    assert.equal(o.scheduledMs, offsetsMs[k]);
    assert.ok(o.sentMs >= o.scheduledMs - 0.05, `request ${k} sent before its time`);
    assert.ok(o.latenessMs >= 0 && o.latenessMs < 50);
    if (!o.success) {
      assert.equal(o.errorKind, 'http_503');
      assert.match(o.error, /HTTP 503/);
      assert.equal(o.ttftMs, null);
      assert.deepEqual(o.itlMs, []);
      continue;
    }
    const tokens = 2 + (k % 4);
    assert.equal(o.outputTokens, tokens);
    assert.equal(o.usageSource, 'server');
    assert.equal(o.itlMs.length, tokens - 1, `request ${k}: one gap per chunk after the first`);
    assert.deepEqual(o.chunkTokens, new Array(tokens - 1).fill(1));
    for (const g of o.itlMs) assert.ok(g >= 0 && g < 100, `gap ${g}`);
    assert.equal(o.generatedText, Array.from({ length: tokens }, (_, j) => ` w${j}`).join(''));
    assert.ok(o.ttftMs! >= 4.5);
    assert.ok(Math.abs(o.e2elMs! - (o.ttftMs! + o.itlMs.reduce((a, b) => a + b, 0))) < 1e-6);
    assert.equal(o.status, 200);
    assert.equal(o.serverTiming, null);
  }
});

test('--max-concurrency: never more in flight than the cap, the wait is queue time (not lateness)', async () => {
  const { pool } = await upstream({ ttftMs: 20, itlMs: 5 });
  const n = 12;
  let inFlight = 0;
  let peak = 0;
  const r = await runLoad({
    dispatcher: pool,
    settings,
    prompts: prompts(n, () => 3),
    offsetsMs: new Array(n).fill(0),
    maxConcurrency: 3,
    onEvent: (ev) => {
      inFlight += ev.type === 'sent' ? 1 : -1;
      peak = Math.max(peak, inFlight);
    },
  });
  assert.equal(r.outcomes.length, n);
  assert.equal(peak, 3);
  const queued = r.outcomes.filter((o) => o.queueMs > 15);
  assert.ok(queued.length >= n - 3 - 1, `requests beyond the cap waited for a slot (${queued.length})`);
  for (const o of r.outcomes) assert.ok(o.latenessMs < 15, `lateness ${o.latenessMs} must not include queue time`);
});

test('stopping sends no more requests and returns the finished ones as partial', async () => {
  const { pool } = await upstream({ ttftMs: 5, itlMs: 2 });
  const n = 200;
  const stop = new AbortController();
  setTimeout(() => stop.abort(), 150);
  const r = await runLoad({ dispatcher: pool, settings, prompts: prompts(n, () => 3), offsetsMs: Array.from({ length: n }, (_, i) => i * 5), stopSignal: stop.signal });
  assert.equal(r.partial, true);
  assert.ok(r.outcomes.length > 10 && r.outcomes.length < 60, `sent ${r.outcomes.length} in ~150 ms at 200 req/s`);
  assert.ok(r.outcomes.every((o) => o.success), 'in-flight requests finished');
  assert.deepEqual(
    r.outcomes.map((o) => o.index),
    r.outcomes.map((_, i) => i),
  );
});

test('warm-up opens the connections before the run (GET /v1/models), capped by count and --max-concurrency', async () => {
  assert.equal(warmConnectionCount(10, null), 10);
  assert.equal(warmConnectionCount(1000, null), 64);
  assert.equal(warmConnectionCount(1000, 8), 8);
  let connections = 0;
  const paths: string[] = [];
  const auth: Array<string | undefined> = [];
  const server = createServer((req, res) => {
    paths.push(`${req.method} ${req.url}`);
    auth.push(req.headers.authorization);
    setTimeout(() => res.end('{"object":"list","data":[]}'), 20);
  });
  server.on('connection', () => connections++);
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const pool = new Pool(`http://127.0.0.1:${(server.address() as AddressInfo).port}`);
  try {
    await warmConnections(pool, '/base', 6, 'k');
    assert.equal(connections, 6);
    assert.deepEqual(new Set(paths), new Set(['GET /base/v1/models']));
    assert.deepEqual(new Set(auth), new Set(['Bearer k']));
    // A target that refuses is not an error here (the run reports it).
    const dead = new Pool('http://127.0.0.1:1');
    await warmConnections(dead, '', 3);
    await dead.close();
  } finally {
    await pool.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('warm-up is bounded: a target that never answers costs the timeout, a stop ends it at once', async () => {
  const { createServer: netServer } = await import('node:net');
  const held: import('node:net').Socket[] = [];
  const silent = netServer((s) => held.push(s)); // accepts, never answers
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const pool = new Pool(`http://127.0.0.1:${(silent.address() as AddressInfo).port}`);
  try {
    let t = performance.now();
    await warmConnections(pool, '', 4, undefined, 300);
    const waited = performance.now() - t;
    assert.ok(waited >= 250 && waited < 2000, `waited ${waited.toFixed(0)} ms for a 300 ms timeout`);
    const stop = new AbortController();
    setTimeout(() => stop.abort(), 100);
    t = performance.now();
    await warmConnections(pool, '', 4, undefined, 10_000, stop.signal);
    const stopped = performance.now() - t;
    assert.ok(stopped < 1000, `stopped after ${stopped.toFixed(0)} ms`);
  } finally {
    for (const s of held) s.destroy();
    await pool.destroy();
    await new Promise<void>((r) => silent.close(() => r()));
  }
});
