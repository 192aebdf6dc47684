import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, writeFile } from 'node:fs/promises';
import { existsSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { makeStackDir, alive, groupAlive, waitFor, chat } from '../helpers/stack.js';

function pidsOf(state: any): { pids: number[]; pgids: number[] } {
  return {
    pids: [state.supervisorPid, ...state.engines.map((e: any) => e.pid)],
    pgids: state.engines.flatMap((e: any) => [e.pgid, ...e.generations.map((g: any) => g.pid)]),
  };
}

test('pd up -d --simulate: ready, requests through the proxy, owner-only files, status, logs, a second pd up refused; an engine left down for good (restart "never") makes pd status exit 3 and says why; pd down leaves no process', async () => {
  const s = await makeStackDir({ supervisor: { restart: 'never', backoffMs: 100, stopGraceSeconds: 5 } });
  try {
    const up = await s.pd(['up', '-d', '--simulate']);
    assert.equal(up.code, 0, up.stderr);
    assert.match(up.stderr, new RegExp(`PD stack ready \\(simulated engines\\): http://127\\.0\\.0\\.1:${s.ports.proxy}`));
    assert.match(up.stderr, /curl http:\/\/127\.0\.0\.1:\d+\/v1\/chat\/completions/);

    const r = await chat(s.ports.proxy);
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.object, 'chat.completion');
    // The producer wrote one KV folder for the prompt into the configured shared storage.
    assert.equal((await readdir(s.kv)).length, 1);

    // The state dir, state file, lock and logs are owner-only.
    const mode = (p: string): number => statSync(join(s.dir, 'state', p)).mode & 0o777;
    assert.equal(mode('.'), 0o700);
    assert.equal(mode('state.json'), 0o600);
    assert.equal(mode('pd.lock'), 0o600);
    assert.equal(mode('logs'), 0o700);
    for (const log of ['producer-0.log', 'consumer-0.log', 'proxy.log', 'supervisor.log']) assert.equal(mode(join('logs', log)), 0o600, log);

    const status = await s.pd(['status', '--json']);
    assert.equal(status.code, 0, status.stderr);
    const st = JSON.parse(status.stdout);
    assert.equal(st.running, true);
    assert.equal(st.phase, 'ready');
    assert.deepEqual(st.engines.map((e: any) => [e.name, e.role, e.port, e.healthy]), [
      ['producer-0', 'producer', s.ports.producer, true],
      ['consumer-0', 'consumer', s.ports.consumer, true],
    ]);
    assert.equal(st.proxy.port, s.ports.proxy);
    const human = await s.pd(['status']);
    assert.equal(human.code, 0, human.stderr);
    assert.match(human.stdout, /producer-0\s+producer\s+0\s+\d+\s+\d+\s+\S+\s+healthy/);

    // The engine saw CUDA_VISIBLE_DEVICES from its gpus and logged its access line.
    const logs = await s.pd(['logs', 'producer-0', '-n', '400']);
    assert.equal(logs.code, 0, logs.stderr);
    assert.match(logs.stdout, /POST \/v1\/chat\/completions HTTP\/1\.1" 200 OK/);
    const proxyLog = await s.pd(['logs', 'proxy']);
    assert.match(proxyLog.stdout, /POST \/v1\/chat\/completions 200/);
    const bad = await s.pd(['logs', 'nope']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /no log named "nope"/);

    // A second pd up on the same state dir is refused, with or without pre-flight, and the first stack is untouched.
    const second = await s.pd(['up', '-d', '--simulate', '--skip-preflight']);
    assert.equal(second.code, 1);
    assert.match(second.stderr, /already running|still running/);
    const pre = await s.pd(['up', '--simulate']);
    assert.equal(pre.code, 1);
    assert.match(pre.stderr, /a stack is already running from/);
    assert.equal((await chat(s.ports.proxy)).status, 200);

    const state = await s.state();
    const { pids, pgids } = pidsOf(state);
    assert.ok(pids.every(alive));

    // supervisor.restart "never": a crashed engine stays down, and pd status says which and why with exit 3.
    const consumer = state.engines.find((e: any) => e.name === 'consumer-0');
    process.kill(-consumer.pgid, 'SIGKILL');
    await waitFor('degraded', async () => (await s.state()).phase === 'degraded');
    const degraded = await s.pd(['status']);
    assert.equal(degraded.code, 3, degraded.stdout + degraded.stderr);
    assert.match(degraded.stdout, /^stack degraded /);
    assert.match(degraded.stdout, /✖ consumer-0 is down for good: supervisor\.restart is "never"/);
    assert.doesNotMatch(degraded.stdout, /✖ producer-0/);

    const down = await s.pd(['down']);
    assert.equal(down.code, 0, down.stderr);
    assert.match(down.stdout, /stack stopped/);
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} still alive`);
    for (const g of pgids) assert.equal(groupAlive(g), false, `group ${g} still alive`);
    assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false);

    const again = await s.pd(['down']);
    assert.equal(again.code, 0);
    assert.match(again.stdout, /nothing to stop/);
    const none = JSON.parse((await s.pd(['status', '--json'])).stdout);
    assert.equal(none.running, false);
  } finally {
    await s.cleanup();
  }
});

// A foreground pd up (prefixed engine output, SIGTERM tears it down) is checked with a benchmark on it in
// bench-on-stack.test.ts.

test('connector events are counted from engine logs and the janitor keeps the cache within budget; an engine killed with SIGKILL is restarted and requests resume; a crash past supervisor.maxRestarts leaves it down for good and the stack degraded', async () => {
  // graceSeconds 1, not 0: with no grace the janitor may (correctly) evict the producer's folder between stage 1
  // writing it and stage 2 reading it on a loaded machine, and the consumer then recomputes instead of hitting.
  const s = await makeStackDir({ supervisor: { maxRestarts: 1, backoffMs: 100, stopGraceSeconds: 5 } });
  const cfg = { ...s.config, kv: { ...(s.config.kv as object), cache: { maxBytes: 1, graceSeconds: 1, intervalSeconds: 0.2 } } };
  await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
  try {
    assert.equal((await s.pd(['up', '-d', '--simulate'])).code, 0);
    const prompt = 'the same prompt of a reasonable length, long enough to fill more than one block of sixteen tokens for sure';
    assert.equal((await chat(s.ports.proxy, prompt)).status, 200);
    // The consumer found the producer's KV folder: vLLM logs "External Cache Hit!" and pd counts it.
    await waitFor('cache hit recorded', async () => (await s.state()).engines.find((e: any) => e.name === 'consumer-0').cacheHits >= 1);
    const metrics = () => fetch(`http://127.0.0.1:${s.ports.proxy}/metrics`).then((r) => r.text());
    assert.match(await metrics(), /pd_engine_kv_cache_hits_total\{engine="consumer-0"\} [1-9]/);
    // maxBytes 1: every entry past its one-second grace period is evicted.
    await waitFor('eviction', async () => /pd_kv_cache_evictions_total\{reason="size"\} [1-9]/.test(await metrics()));
    await waitFor('folder evicted', async () => (await readdir(s.kv)).length === 0);

    const before = await s.state();
    const consumer = before.engines.find((e: any) => e.name === 'consumer-0');
    process.kill(-consumer.pgid, 'SIGKILL');
    // While it is down the proxy answers quickly with an error instead of hanging.
    const during = await chat(s.ports.proxy);
    assert.ok(during.status === 200 || during.status === 503 || during.status === 502, `status ${during.status}`);
    const restarted = await waitFor('restart', async () => {
      const st = await s.state();
      const c = st.engines.find((e: any) => e.name === 'consumer-0');
      return c.restarts === 1 && c.status === 'healthy' && c.pid !== consumer.pid ? c : undefined;
    });
    assert.ok(alive(restarted.pid));
    const after = await waitFor('requests resume', async () => ((await chat(s.ports.proxy)).status === 200 ? true : undefined));
    assert.equal(after, true);
    assert.match(await metrics(), /pd_engine_restarts_total\{engine="consumer-0"\} 1/);

    // maxRestarts 1: the second crash within the window is one too many.
    process.kill(-restarted.pgid, 'SIGKILL');
    await waitFor('degraded', async () => (await s.state()).phase === 'degraded');
    const status = await s.pd(['status', '--json']);
    assert.equal(status.code, 3, status.stderr);
    const deg = JSON.parse(status.stdout);
    assert.equal(deg.degraded, true);
    assert.equal(deg.phase, 'degraded');
    const c = deg.engines.find((e: any) => e.name === 'consumer-0');
    assert.equal(c.restarts, 1);
    assert.ok(c.cacheHits >= 1, 'pd status shows the hit (log counters outlive engine restarts)');
    assert.equal(c.status, 'failed');
    assert.match(c.downReason, /crashed 2 times within 600 s/);

    const down = await s.pd(['down']);
    assert.equal(down.code, 0);
    for (const g of [consumer.pgid, restarted.pgid]) assert.equal(groupAlive(g), false);
  } finally {
    await s.cleanup();
  }
});

test('pd down does not wait out a pending restart back-off', async () => {
  const s = await makeStackDir();
  const cfg = {
    ...s.config,
    supervisor: { backoffMs: 60_000, stopGraceSeconds: 5 },
    consumers: [{ gpus: [1], host: '127.0.0.1', port: s.ports.consumer, env: { PD_SIM_CRASH_AFTER_SECONDS: '1' } }],
  };
  await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
  try {
    assert.equal((await s.pd(['up', '-d', '--simulate'])).code, 0);
    await waitFor('restart pending', async () => (await s.state()).engines.find((e: any) => e.name === 'consumer-0').status === 'restarting');
    const t0 = Date.now();
    const down = await s.pd(['down']);
    assert.equal(down.code, 0, down.stderr);
    assert.ok(Date.now() - t0 < 30_000, `pd down took ${Date.now() - t0} ms against a 60 s back-off`);
    assert.match(down.stdout, /supervisor pid \d+: stopped/);
  } finally {
    await s.cleanup();
  }
});
