/** The bench's flag schema and run-shape rules (pure: no process, no socket). */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseFlags, runFlagsSchema, searchFlagsSchema, matrixFlagsSchema } from '../../src/bench/flags.ts';
import { planRun, planSprint, requestOptions, resolveWorkload, runName, runSeed } from '../../src/bench/run-plan.ts';
import { defaultConfig } from '../../src/config/schema.ts';
import { UsageError } from '../../src/util/errors.ts';

const config = defaultConfig();
const sprint = config.bench.sprint;

function usage(values: Record<string, unknown>, schema: Parameters<typeof parseFlags>[0] = runFlagsSchema): UsageError {
  try {
    parseFlags(schema, values);
  } catch (e) {
    assert.ok(e instanceof UsageError, String(e));
    return e;
  }
  assert.fail(`expected a UsageError for ${JSON.stringify(values)}`);
}

test('bad flag values: the flag, what was wrong, a hint (like config errors)', () => {
  const cases: Array<[Record<string, unknown>, RegExp, RegExp]> = [
    [{ rate: 'fast' }, /^--rate must be a positive number or inf, got "fast"$/, /--rate 8/],
    [{ seed: '1.5' }, /^--seed must be a whole number/, /--seed 42/],
    [{ maxConcurrency: '4,x' }, /^--max-concurrency .*"x"/, /1,4,16/],
    [{ randomRangeRatio: '1' }, /^--random-range-ratio must be a number at least 0 and below 1/, /0\.25/],
    [{ header: ['novalue'] }, /^--header takes KEY=VALUE pairs, got "novalue"/, /x-tenant=bench/],
    [{ extraBody: '[1]' }, /^--extra-body must be a JSON object/, /chat_template_kwargs/],
    [{ extraBody: '{' }, /^--extra-body is not valid JSON/, /chat_template_kwargs/],
    [{ goodput: ['latency:5'] }, /^--goodput has an unknown metric "latency"/, /ttft:500/],
    [{ dataset: 'nope' }, /^--dataset must be one of random, sharegpt, jsonl, prefix-sharing, multi-turn, got "nope"/, /prefix-sharing/],
    [{ endpoint: 'x' }, /^--endpoint must be one of chat, completions, got "x"/, /chat or completions/],
    [{ lengths: '128:128,3' }, /^--lengths takes INPUT:OUTPUT pairs/, /128:128,1024:256/],
    [{ numPrompts: '0' }, /^-n\/--num-prompts must be a positive whole number/, /-n 200/],
  ];
  for (const [values, message, hint] of cases) {
    const e = usage(values);
    assert.match(e.message, message);
    assert.match(e.hint ?? '', hint);
    assert.equal(e.exitCode, 2);
  }
  // Every problem is listed, the first in the message.
  const two = usage({ rate: 'x', seed: 'y' });
  const all = [two.message, ...two.details].join('\n');
  assert.match(all, /--rate must be/);
  assert.match(all, /--seed must be/);
  assert.equal(two.details.length, 1);
  assert.match(usage({ attainment: '1.5' }, searchFlagsSchema).message, /^--attainment must be/);
  assert.match(usage({ rates: '2,x' }, matrixFlagsSchema).message, /^--rates /);
});

test('types come out converted: numbers, lists, pairs, KEY=VALUE maps, JSON', () => {
  const f = parseFlags(runFlagsSchema, {
    rate: 'inf',
    maxConcurrency: '1, 4,16',
    lengths: '128:64,1024:256',
    header: ['x-a=1', 'X-B = two=2'],
    metadata: ['gpu=H100'],
    extraBody: '{"chat_template_kwargs":{"enable_thinking":false}}',
    topK: '20',
    temperature: '0',
    goodput: ['ttft:500', 'tpot:50'],
  });
  assert.equal(f.rate, Infinity);
  assert.deepEqual(f.maxConcurrency, [1, 4, 16]);
  assert.deepEqual(f.lengths, [{ input: 128, output: 64 }, { input: 1024, output: 256 }]);
  assert.deepEqual(f.header, { 'x-a': '1', 'X-B': 'two=2' });
  assert.deepEqual(f.goodput, { ttft: 500, tpot: 50 });
  const r = requestOptions(f);
  // vLLM: extra_body = {**sampling_params, **extra_body}
  assert.deepEqual(r.extraBody, { top_k: 20, temperature: 0, chat_template_kwargs: { enable_thinking: false } });
  assert.deepEqual(r.metadata, { gpu: 'H100' });
  assert.match(r.requestIdPrefix, /^bench-[0-9a-f]{8}-$/, "vLLM's default request id prefix");
  assert.notEqual(requestOptions({}).requestIdPrefix, requestOptions({}).requestIdPrefix, 'a fresh prefix per invocation');
});

test('run shapes: steady, flood, defaults from the config, aliases, sweeps', () => {
  const run = (v: Record<string, unknown>) => planRun(parseFlags(runFlagsSchema, v), config);
  assert.deepEqual(run({ rate: '8', duration: '30' }).runs.map((r) => [r.kind, r.rate, r.count]), [['single', 8, 240]]);
  assert.deepEqual(run({ flood: true }).runs.map((r) => [r.rate, r.count]), [[Infinity, sprint.floodPrompts]]);
  assert.throws(() => run({ flood: true, rate: '4' }), /--flood sends everything at once/);
  assert.throws(() => run({ rate: '4' }), /--rate needs --duration/);
  assert.throws(() => run({}), /say how to send/);
  // The old names are aliases; both given must agree.
  const w = run({ rate: '1', numPrompts: '3', inputLen: '100', randomOutputLen: '7' }).workload;
  assert.deepEqual([w.dataset.kind, (w.dataset as { inputLen: number }).inputLen, (w.dataset as { outputLen: number }).outputLen], ['random', 100, 7]);
  assert.throws(() => run({ rate: '1', numPrompts: '3', inputLen: '100', randomInputLen: '50' }), /disagree/);
  // A sweep: every (lengths x concurrency) pair, each with its own seed and name.
  const sweep = run({ rate: '4', numPrompts: '8', maxConcurrency: '1,4', lengths: '16:8,64:4' }).runs;
  assert.equal(sweep.length, 4);
  assert.deepEqual(sweep.map((r) => [r.maxConcurrency, r.sweep?.inputLen, r.sweep?.outputLen]), [[1, 16, 8], [4, 16, 8], [1, 64, 4], [4, 64, 4]]);
  assert.equal(new Set(sweep.map((r) => runSeed(0, r))).size, 4);
  assert.match(runName('single', 4, 8, '20250101-000000', sweep[1]!.sweep), /^single-rate4-n8-mc4-in16-out8-20250101-000000$/);
});

test('ignore_eos only for the random dataset unless asked (as vLLM); dataset options are checked', () => {
  const wl = (v: Record<string, unknown>) => resolveWorkload(parseFlags(runFlagsSchema, v), sprint);
  assert.equal(wl({}).ignoreEos, true);
  assert.equal(wl({ dataset: 'prefix-sharing' }).ignoreEos, false);
  assert.equal(wl({ dataset: 'multi-turn', ignoreEos: true }).ignoreEos, true);
  assert.equal(wl({ ignoreEos: false }).ignoreEos, false);
  assert.deepEqual(wl({ dataset: 'prefix_repetition', numPrefixes: '3' }).dataset, { kind: 'prefix-sharing', inputLen: sprint.inputLen, outputLen: sprint.outputLen, rangeRatio: 0, prefixLen: 256, numPrefixes: 3 });
  assert.throws(() => wl({ turns: '3' }), /--turns is an option of --dataset multi-turn/);
  assert.throws(() => wl({ dataset: 'sharegpt' }), /needs --dataset-path/);
  assert.throws(() => wl({ dataset: 'sharegpt', datasetPath: '/nonexistent/x.json' }), /does not exist/);
});

test('the sprint plan: steady rates then flood, each run its own seed', () => {
  const plan = planSprint({ ...sprint, rates: [2, 4], durationSeconds: 10, floodPrompts: 16 });
  assert.deepEqual(plan.map((r) => r.name), ['steady-rate2', 'steady-rate4', 'flood-n16']);
  assert.deepEqual(plan.map((r) => r.count), [20, 40, 16]);
  assert.equal(new Set(plan.map((r) => runSeed(7, r))).size, 3);
});
