/**
 * `pd bench` end to end against a fixed-timeline upstream (real sockets and files). The built binary runs a sprint
 * and is interrupted with Ctrl+C; the other command lines (usage errors, bad input, --engine vllm, compare) run
 * in-process through pd's commander program (test/cli/in-process.ts): about half a CPU second less each.
 */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmod, mkdir, readFile, readdir, writeFile } from 'node:fs/promises';
import { rm as rmKv } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { startFixedUpstream, type FixedUpstream } from './fixed-upstream.ts';
import { PD_BIN, runPd } from '../helpers/cli.ts';
import { tempDir } from '../helpers/tmp.ts';
import { runPdInProcess as pdIn } from '../cli/in-process.ts';
import { runResultSchema } from '../../src/bench/result.ts';

let up: FixedUpstream;
let dir: string;
let cleanup: () => Promise<void>;

before(async () => {
  up = await startFixedUpstream({ ttftMs: 30, itlMs: 5, serverTiming: 'queue;dur=0.010, prefill;dur=20.000, decode;dur=5.000' });
  ({ dir, cleanup } = await tempDir('pd-bench-cli-'));
  await mkdir(join(`${dir}-kv`, 'kv'), { recursive: true });
  await writeFile(
    join(dir, 'pd.config.json'),
    JSON.stringify({
      kv: { sharedStoragePath: join(`${dir}-kv`, 'kv') },
      stateDir: join(dir, '.pd'),
      bench: {
        resultsDir: join(dir, 'results'),
        sheet: join(dir, 'results', 'sheet.csv'),
        sprint: { rates: [2, 4], durationSeconds: 1, floodPrompts: 6, inputLen: 8, outputLen: 4 },
      },
    }),
  );
});
after(async () => {
  await up.close();
  await cleanup();
  // The KV folder sits beside the config's folder (pd refuses a cache path inside it).
  await rmKv(`${dir}-kv`, { recursive: true, force: true });
});

test('usage errors exit 2 with a message and no stack', async () => {
  const r = await pdIn(['bench', 'run', '--target', up.url], { cwd: dir });
  const g = await pdIn(['bench', 'run', '--rate', '2', '-n', '2', '--goodput', 'latency:5', '--target', up.url], { cwd: dir });
  const t = await pdIn(['bench', 'run', '--rate', 'fast', '-n', '2', '--target', up.url], { cwd: dir });
  assert.equal(r.code, 2);
  assert.match(r.stderr, /--rate R --duration S/);
  assert.doesNotMatch(r.stderr, /at .*\.js:\d+/);
  assert.equal(g.code, 2);
  assert.match(g.stderr, /unknown metric "latency"/);
  assert.equal(t.code, 2);
});

test('a short sprint: steady runs + flood archived, KV cache cleared, sheet and long CSV written', async () => {
  await mkdir(join(`${dir}-kv`, 'kv', 'stale-entry'));
  await writeFile(join(`${dir}-kv`, 'kv', 'stale-entry', 'kv.safetensors'), 'x');
  const r = await runPd(['bench', '--target', up.url, '--set', 'pd-disaggregation', '--no-progress'], { cwd: dir, timeoutMs: 60_000 });
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stdout, /Serving Benchmark Result/);
  assert.match(r.stdout, /Mean TTFT \(ms\):/);
  assert.equal(existsSync(join(`${dir}-kv`, 'kv', 'stale-entry')), false, 'the KV cache is cleared before runs');
  const files = (await readdir(join(dir, 'results', 'pd-disaggregation'))).sort();
  assert.deepEqual(files, ['flood-n6.json', 'flood-n6.requests.jsonl', 'steady-rate2.json', 'steady-rate2.requests.jsonl', 'steady-rate4.json', 'steady-rate4.requests.jsonl']);
  const steady = runResultSchema.parse(JSON.parse(await readFile(join(dir, 'results', 'pd-disaggregation', 'steady-rate4.json'), 'utf8')));
  assert.equal(steady.num_prompts, 4);
  assert.equal(steady.completed, 4);
  assert.equal(steady.request_rate, 4);
  assert.equal(steady.pd_run_kind, 'steady');
  assert.equal(steady.endpoint_type, 'openai-chat');
  assert.equal(steady.model_id, '/models/fixed-model');
  assert.ok(steady.mean_ttft_ms >= 29, `ttft ${steady.mean_ttft_ms}`);
  assert.equal(steady.pd_stage_split?.prefill_ms.mean, 20);
  const flood = runResultSchema.parse(JSON.parse(await readFile(join(dir, 'results', 'pd-disaggregation', 'flood-n6.json'), 'utf8')));
  assert.equal(flood.request_rate, 'inf');
  assert.equal(flood.pd_offered_rate, null);
  const lines = (await readFile(join(dir, 'results', 'pd-disaggregation', 'flood-n6.requests.jsonl'), 'utf8')).trim().split('\n');
  assert.equal(lines.length, 6);
  assert.equal(JSON.parse(lines[0]!).success, true);
  const sheet = await readFile(join(dir, 'results', 'sheet.csv'), 'utf8');
  assert.match(sheet, /TTFT,Mean/);
  assert.doesNotMatch(r.stderr, /sheet not updated/);
  assert.ok(existsSync(join(dir, 'results', 'results-long.csv')));
});

test('Ctrl+C stops sending, waits for in-flight requests and writes partial results', async () => {
  const child = spawn(process.execPath, [PD_BIN, 'bench', 'run', '--rate', '20', '--duration', '30', '--output-len', '20', '--target', up.url, '--set', 'partial', '--json'], {
    cwd: dir,
    env: { PATH: process.env.PATH ?? '', HOME: dir, NO_COLOR: '1' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b) => (stdout += b));
  child.stderr.on('data', (b) => (stderr += b));
  // Wait until requests are flowing, then interrupt.
  const deadline = Date.now() + 20_000;
  while (!/sent [1-9]/.test(stderr) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 100));
  await new Promise((r) => setTimeout(r, 800));
  child.kill('SIGINT');
  const code = await new Promise<number | null>((resolve) => child.on('exit', (c) => resolve(c)));
  assert.equal(code, 130, stderr);
  assert.match(stderr, /waiting for the ones in flight/);
  const result = runResultSchema.parse(JSON.parse(stdout));
  assert.equal(result.pd_partial, true);
  assert.equal(result.num_prompts, 600);
  assert.ok(result.pd_sent! > 0 && result.pd_sent! < 600, `sent ${result.pd_sent}`);
  assert.equal(result.completed, result.pd_sent, 'in-flight requests were allowed to finish');
  assert.equal(result.failed, 0);
  const saved = (await readdir(join(dir, 'results', 'partial'))).filter((f) => f.endsWith('.json'));
  assert.equal(saved.length, 1);
});

test('--engine vllm runs `vllm bench serve` with the same parameters and parses its saved JSON', async () => {
  const bin = join(dir, 'bin');
  await mkdir(bin, { recursive: true });
  const reference = new URL('./fixtures-report/vllm-bench-serve-result.json', import.meta.url).pathname;
  const script = `#!${process.execPath}
const fs = require('node:fs');
const a = process.argv.slice(2);
fs.writeFileSync(${JSON.stringify(join(dir, 'vllm-argv.json'))}, JSON.stringify(a));
const out = a[a.indexOf('--result-dir') + 1] + '/' + a[a.indexOf('--result-filename') + 1];
fs.writeFileSync(out, fs.readFileSync(${JSON.stringify(reference)}));
console.log('============ Serving Benchmark Result ============');
`;
  await writeFile(join(bin, 'vllm'), script);
  await chmod(join(bin, 'vllm'), 0o755);
  const r = await pdIn(['bench', 'run', '--engine', 'vllm', '--rate', '4', '-n', '8', '--target', up.url, '--set', 'vllm-side', '--json'], {
    cwd: dir,
    env: { PATH: `${bin}:${process.env.PATH ?? ''}` },
  });
  assert.equal(r.code, 0, r.stderr);
  const result = runResultSchema.parse(JSON.parse(r.stdout));
  const ref = JSON.parse(await readFile(reference, 'utf8'));
  assert.equal(result.pd_engine, 'vllm');
  assert.equal(result.completed, ref.completed);
  assert.equal(result.mean_ttft_ms, ref.mean_ttft_ms);
  assert.equal(result.p99_itl_ms, ref.p99_itl_ms);
  assert.equal(result.failed, ref.num_prompts - ref.completed);
  assert.equal(result.pd_send_lateness_ms, null);
  const argv = JSON.parse(await readFile(join(dir, 'vllm-argv.json'), 'utf8')) as string[];
  const arg = (k: string): string | undefined => argv[argv.indexOf(k) + 1];
  assert.deepEqual(argv.slice(0, 2), ['bench', 'serve']);
  assert.equal(arg('--backend'), 'openai-chat');
  assert.equal(arg('--request-rate'), '4');
  assert.equal(arg('--num-prompts'), '8');
  assert.equal(arg('--base-url'), up.url);
  assert.equal(arg('--random-output-len'), '4');
  assert.equal(arg('--random-input-len'), '8');
  assert.ok(argv.includes('--save-result') && argv.includes('--ignore-eos'));
});

test('pd bench compare --from-sheet compares the sets of the reference real-GPU sheet', async () => {
  const sheet = new URL('./fixtures-report/sprint-sheet-results-real-gpus.csv', import.meta.url).pathname;
  const r = await pdIn(['bench', 'compare', '--from-sheet', sheet, 'pd-disaggregation', 'pd-disaggregation-nixl', '--json'], { cwd: dir });
  assert.equal(r.code, 0, r.stderr);
  const c = JSON.parse(r.stdout);
  const at2 = c.points.find((p: { rate: number | null; kind: string }) => p.kind === 'steady' && p.rate === 2);
  const ttftMean = at2.cells.find((x: { key: string }) => x.key === 'mean_ttft_ms');
  assert.deepEqual(ttftMean.values, { 'pd-disaggregation': 13118.99, 'pd-disaggregation-nixl': 43.15 });
  assert.equal(ttftMean.winner, 'pd-disaggregation-nixl');
  const missing = await pdIn(['bench', 'compare', '--from-sheet', join(dir, 'nope.csv'), 'a', 'b'], { cwd: dir });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.csv does not exist/);
});

test('bad input is rejected before the KV cache is cleared; a run where every request fails exits 1', async () => {
  await mkdir(join(`${dir}-kv`, 'kv', 'keep-me'), { recursive: true });
  const cases: Array<[string[], number, RegExp]> = [
    [['--burstiness', '0'], 2, /--burstiness/],
    [['--max-concurrency', '0'], 2, /--max-concurrency/],
    [['--seed', '1.5'], 2, /--seed must be a whole number/],
    [['--results-dir', join(dir, 'pd.config.json', 'x')], 2, /cannot use .* as the results folder \(ENOTDIR\)/],
    [['--target', 'http://127.0.0.1:1'], 1, /cannot reach http:\/\/127\.0\.0\.1:1/],
  ];
  for (const [extra, code, pattern] of cases) {
    const r = await pdIn(['bench', 'run', '--rate', '2', '-n', '1', '--no-progress', '--target', up.url, ...extra], { cwd: dir });
    assert.equal(r.code, code, `${extra.join(' ')}: ${r.stderr}`);
    assert.match(r.stderr, pattern);
    assert.equal(existsSync(join(`${dir}-kv`, 'kv', 'keep-me')), true, `${extra.join(' ')} cleared the cache`);
  }
  const failing = await startFixedUpstream({ status: 404 });
  try {
    const r = await pdIn(['bench', 'run', '--rate', 'inf', '-n', '2', '--model', 'nosuchmodel', '--no-progress', '--keep-cache', '--target', failing.url], { cwd: dir });
    assert.equal(r.code, 1, r.stderr);
    assert.match(r.stderr, /every request failed: HTTP 404/);
  } finally {
    await failing.close();
  }
});
