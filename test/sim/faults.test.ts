import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { postJson } from './sse.js';

describe('fault injection', () => {
  let sim: SimHandle;
  before(async () => {
    sim = await startSim({ args: ['--sim-error-every', '3', '--sim-error-status', '429'] });
  });
  after(async () => {
    await sim.stop();
  });

  test('X-PD-Sim-Fault: status=<code> answers with that status in vLLM\'s error envelope', async () => {
    for (const status of [400, 404, 429, 500, 503]) {
      const r = await postJson(`${sim.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }] }, { 'x-pd-sim-fault': `status=${status}` });
      assert.equal(r.status, status);
      assert.deepEqual(Object.keys(r.json.error), ['message', 'type', 'param', 'code']);
      assert.equal(r.json.error.code, status);
    }
    // 401 looks like vLLM's API-key middleware answer.
    const auth = await postJson(`${sim.url}/v1/completions`, { prompt: 'x' }, { 'x-pd-sim-fault': 'status=401' });
    assert.equal(auth.status, 401);
    assert.deepEqual(auth.json, { error: 'Unauthorized' });
    const bad = await postJson(`${sim.url}/v1/completions`, { prompt: 'x' }, { 'x-pd-sim-fault': 'explode' });
    assert.equal(bad.status, 400);
    assert.match(bad.json.error.message, /invalid x-pd-sim-fault item 'explode'/);
  });

  test('--sim-error-every 3 --sim-error-status 429: every third generation request fails (deterministic)', async () => {
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 1 })).status);
    assert.equal(statuses.filter((s) => s === 429).length, 2);
    assert.equal(statuses.filter((s) => s === 200).length, 4);
  });

  test('cut=N cuts a stream after N tokens without [DONE]; stall=MS delays the first token', async () => {
    const r = await fetch(`${sim.url}/v1/completions`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', 'x-pd-sim-fault': 'cut=2' },
      body: JSON.stringify({ prompt: 'x', max_tokens: 10, stream: true }),
    });
    let text = '';
    await assert.rejects(async () => {
      for await (const c of r.body!) text += Buffer.from(c).toString();
    });
    assert.equal((text.match(/^data: \{/gm) ?? []).length, 2);
    assert.ok(!text.includes('[DONE]'));

    const t0 = performance.now();
    const s = await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 2 }, { 'x-pd-sim-fault': 'stall=300' });
    assert.equal(s.status, 200);
    assert.ok(performance.now() - t0 >= 250, 'a stalled request cannot finish before its stall');
  });
});

describe('engine crash', () => {
  test('--sim-crash-after-requests 2: /health turns 503 before the process exits 1', async () => {
    const sim = await startSim({ args: ['--sim-crash-after-requests', '2'] });
    try {
      assert.equal((await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 1 })).status, 200);
      assert.equal((await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 1 })).status, 200);
      let saw503 = false;
      while (sim.child.exitCode === null) {
        try {
          const h = await fetch(`${sim.url}/health`);
          if (h.status === 503) saw503 = true;
        } catch {
          break;
        }
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(await sim.exited, 1);
      assert.ok(saw503, '/health answered 503 before exit');
      assert.match(sim.output(), /EngineDeadError: EngineCore encountered an issue/);
    } finally {
      await sim.stop('SIGKILL');
    }
  });

  test('X-PD-Sim-Fault: crash fails that request with 500, ends running streams with data: {error} + [DONE], exits 1', async () => {
    const sim = await startSim({ env: { PD_SIM_ITL_MS: '30' } });
    try {
      const stream = await fetch(`${sim.url}/v1/chat/completions`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ messages: [{ role: 'user', content: 'x' }], max_tokens: 1000, ignore_eos: true, stream: true }),
      });
      const reader = stream.body!.getReader();
      let text = Buffer.from((await reader.read()).value).toString();
      const r = await postJson(`${sim.url}/v1/completions`, { prompt: 'x' }, { 'x-pd-sim-fault': 'crash' });
      assert.equal(r.status, 500);
      assert.equal(r.json.error.message, 'EngineCore encountered an issue. See stack trace (above) for the root cause.');
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        text += Buffer.from(value).toString();
      }
      assert.match(text, /data: \{"error":\{"message":"EngineCore encountered an issue\. See stack trace \(above\) for the root cause\.","type":"InternalServerError","param":null,"code":500\}\}\n\ndata: \[DONE\]\n\n$/);
      assert.equal(await sim.exited, 1);
    } finally {
      await sim.stop('SIGKILL');
    }
  });
});
