import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, type SimHandle } from '../helpers/sim.js';

let sim: SimHandle | undefined;
after(async () => {
  await sim?.stop();
});

test('the built simulator starts, answers /health and a completion, and exits 0 on SIGTERM', async () => {
  sim = await startSim();
  const h = await fetch(`${sim.url}/health`);
  assert.equal(h.status, 200);
  assert.equal(await h.text(), '');
  const r = await fetch(`${sim.url}/v1/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: 'sim-model', prompt: 'hello world', max_tokens: 4 }),
  });
  const body = (await r.json()) as { object: string; usage: { completion_tokens: number } };
  assert.equal(r.status, 200);
  assert.equal(body.object, 'text_completion');
  assert.equal(body.usage.completion_tokens, 4);
  const code = await sim.stop();
  assert.equal(code, 0);
  assert.match(sim.output(), /Application shutdown complete\./);
});
