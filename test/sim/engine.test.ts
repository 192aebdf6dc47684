import { test } from 'node:test';
import assert from 'node:assert/strict';
import { Engine, type GenParams, type GenSink, type Seq } from '../../src/sim/engine.js';
import { DEFAULT_KNOBS } from '../../src/sim/options.js';

const params = (over: Partial<GenParams> = {}): GenParams => ({
  promptIds: [1, 2, 3, 4, 5], maxTokens: 3, minTokens: 0, ignoreEos: true, stop: [], stopTokenIds: [],
  includeStopStrInOutput: false, seed: null, temperature: 0, stallMs: 0, slowdown: 1, ...over,
});

function collect(): { sink: GenSink; done: Promise<{ tokens: string[]; reason: string; seq: Seq }> } {
  const tokens: string[] = [];
  let resolve!: (v: { tokens: string[]; reason: string; seq: Seq }) => void;
  const done = new Promise<{ tokens: string[]; reason: string; seq: Seq }>((r) => (resolve = r));
  return {
    sink: { onToken: (_id, text) => tokens.push(text), onFinish: (reason, _s, seq) => resolve({ tokens, reason, seq }) },
    done,
  };
}

test('max-num-seqs caps running requests; the rest wait in FIFO order', async () => {
  const engine = new Engine({ ...DEFAULT_KNOBS, itlMs: 2, prefillBaseMs: 1, prefillMsPerToken: 0, jitter: 0 }, 2);
  const runs = [collect(), collect(), collect(), collect()];
  const order: number[] = [];
  runs.forEach((r, i) => {
    const sink = r.sink;
    engine.submit(params(), { ...sink, onScheduled: () => order.push(i) });
  });
  assert.deepEqual(engine.stats, { running: 0, waiting: 4 });
  await new Promise((r) => setImmediate(r));
  assert.deepEqual(engine.stats, { running: 2, waiting: 2 });
  const results = await Promise.all(runs.map((r) => r.done));
  assert.deepEqual(order, [0, 1, 2, 3]);
  for (const r of results) {
    assert.equal(r.tokens.length, 3);
    assert.equal(r.reason, 'length');
  }
  // Requests 2 and 3 were scheduled only after 0 and 1 finished.
  assert.ok(results[2]!.seq.times.scheduled >= results[0]!.seq.times.lastToken);
  assert.deepEqual(engine.stats, { running: 0, waiting: 0 });
});

test('without ignore_eos the answer ends with a counted EOS token (finish_reason stop); min_tokens is honoured', async () => {
  const engine = new Engine({ ...DEFAULT_KNOBS, itlMs: 0, prefillBaseMs: 0, prefillMsPerToken: 0, eosAfter: 4 }, 8);
  const a = collect();
  engine.submit(params({ ignoreEos: false, maxTokens: 50 }), a.sink);
  const r = await a.done;
  assert.equal(r.reason, 'stop');
  assert.equal(r.tokens.length, 5);
  assert.equal(r.tokens.at(-1), '');
  const b = collect();
  engine.submit(params({ ignoreEos: false, maxTokens: 50, minTokens: 10 }), b.sink);
  assert.equal((await b.done).tokens.length, 11);
});

test('same prompt + temperature 0 gives the same tokens; a seed changes them', async () => {
  const engine = new Engine({ ...DEFAULT_KNOBS, itlMs: 0, prefillBaseMs: 0, prefillMsPerToken: 0 }, 8);
  const run = async (p: Partial<GenParams>): Promise<string> => {
    const c = collect();
    engine.runNow(params({ maxTokens: 8, ...p }), c.sink);
    return (await c.done).tokens.join('');
  };
  assert.equal(await run({}), await run({}));
  assert.notEqual(await run({ seed: 1 }), await run({ seed: 2 }));
  assert.equal(await run({ seed: 7, temperature: 1 }), await run({ seed: 7, temperature: 1 }));
});

test('aborting a waiting request frees its place', async () => {
  const engine = new Engine({ ...DEFAULT_KNOBS, itlMs: 1, prefillBaseMs: 0, prefillMsPerToken: 0, jitter: 0 }, 1);
  const a = collect();
  engine.submit(params(), a.sink);
  const b = collect();
  const s = engine.submit(params(), b.sink);
  engine.abort(s);
  assert.equal(engine.stats.waiting, 1);
  await a.done;
  assert.deepEqual(engine.stats, { running: 0, waiting: 0 });
});
