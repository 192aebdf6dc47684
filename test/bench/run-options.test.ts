/** A run against engines with known behaviour: warm-ups, request options, failures archived as failed. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { startFixedUpstream, type FixedUpstream } from './fixed-upstream.ts';
import { archiveFailedRun, runBenchmark, type RunOptions } from '../../src/bench/run.ts';
import { requestRecordSchema } from '../../src/bench/result.ts';
import { longCsv, mergeIntoSheet } from '../../src/bench/sheet.ts';
import { tempDir } from '../helpers/tmp.ts';

const ups: FixedUpstream[] = [];
const dirs: Array<() => Promise<void>> = [];
after(async () => {
  await Promise.all(ups.map((u) => u.close()));
  await Promise.all(dirs.map((c) => c()));
});

async function setup(o: Parameters<typeof startFixedUpstream>[0] = {}): Promise<{ up: FixedUpstream; base: RunOptions }> {
  const up = await startFixedUpstream({ ttftMs: 3, itlMs: 1, ...o });
  ups.push(up);
  const { dir, cleanup } = await tempDir('pd-run-opts-');
  dirs.push(cleanup);
  const base: RunOptions = {
    target: up.url,
    set: 'opts',
    resultsDir: dir,
    kind: 'single',
    endpoint: 'chat',
    dataset: { kind: 'random', inputLen: 8, outputLen: 3 },
    count: 6,
    rate: 200,
    seed: 1,
  };
  return { up, base };
}

test('warm-ups are sent first and kept out of the results; request options reach every request', async () => {
  const { up, base } = await setup();
  const out = await runBenchmark({
    ...base,
    numWarmups: 3,
    request: {
      headers: { 'x-tenant': 'bench' },
      extraBody: { temperature: 0, top_p: 0.5, chat_template_kwargs: { enable_thinking: false } },
      label: 'night-run',
      metadata: { gpu: 'H100', tp: '1' },
      requestIdPrefix: 'bench-cafe0123-',
    },
  });
  const r = out.result;
  assert.equal(up.requests(), 9, '3 warm-ups + 6 measured requests reached the upstream');
  assert.equal(r.num_prompts, 6);
  assert.equal(r.completed, 6);
  assert.equal(r.pd_num_warmups, 3);
  assert.equal(r.label, 'night-run');
  assert.equal((r as Record<string, unknown>).gpu, 'H100', '--metadata is written top-level, as vLLM does');
  assert.deepEqual(r.pd_metadata, { gpu: 'H100', tp: '1' });
  assert.deepEqual(r.pd_header_names, ['x-tenant']);
  const headers = up.headers();
  assert.ok(headers.every((h) => h['x-tenant'] === 'bench'));
  const ids = headers.map((h) => h['x-request-id']);
  assert.deepEqual(ids.slice(0, 3), ['bench-cafe0123-warmup-0', 'bench-cafe0123-warmup-1', 'bench-cafe0123-warmup-2']);
  assert.deepEqual(new Set(ids.slice(3)), new Set([0, 1, 2, 3, 4, 5].map((i) => `bench-cafe0123-${i}`)), 'a unique x-request-id per request');
  for (const body of up.bodies() as Array<Record<string, unknown>>) {
    assert.equal(body.temperature, 0);
    assert.equal(body.top_p, 0.5);
    assert.deepEqual(body.chat_template_kwargs, { enable_thinking: false });
    assert.equal(body.ignore_eos, true);
  }
  // The warm-up prompts have the run's shape but not its content (no cache hit on the measured prompts).
  const contents = (up.bodies() as Array<{ messages: Array<{ content: string }> }>).map((b) => b.messages[0]!.content);
  assert.ok(contents.slice(0, 3).every((c) => !contents.slice(3).includes(c)));
  // Each request's id is in the per-request file, so a slow request can be found in the proxy's and engines' logs.
  const lines = (await readFile(out.files!.requests, 'utf8')).trim().split('\n').map((l) => requestRecordSchema.parse(JSON.parse(l)));
  assert.deepEqual(lines.map((l) => l.request_id), [0, 1, 2, 3, 4, 5].map((i) => `bench-cafe0123-${i}`));
});

test('a run where every request fails is archived as failed: no zeros in the sheet or the long CSV', async () => {
  const { base } = await setup({ status: 503 });
  const out = await runBenchmark({ ...base, kind: 'steady', rate: 20, runName: 'steady-rate20', count: 2 });
  const r = out.result;
  assert.equal(r.pd_failed, true);
  assert.match(r.pd_error ?? '', /every request failed: HTTP 503/);
  assert.equal(r.mean_ttft_ms, 0, "vLLM's keys keep vLLM's zeros in the JSON");
  const sheet = mergeIntoSheet(null, 'sheet.csv', 'opts', [r]);
  const row = sheet.split('\n').find((l) => l.startsWith('TTFT,Mean'))!;
  assert.doesNotMatch(row, /,0\.0(,|$)/, 'the failed run gives the sheet no zeros');
  const csv = longCsv([r]).trim().split('\n');
  assert.deepEqual(csv.slice(1), ['opts,steady-rate20,steady,20,run_failed,error,,,'], 'one failure row, no numbers');
  // A run that could not run at all (the target is gone) is archived the same way.
  const gone = await archiveFailedRun({ ...base, kind: 'steady', rate: 4, runName: 'steady-rate4' }, 'connect ECONNREFUSED');
  assert.equal(gone.result.pd_failed, true);
  assert.equal(gone.result.pd_error, 'connect ECONNREFUSED');
  assert.ok(JSON.parse(await readFile(gone.files!.json, 'utf8')).pd_failed);
});

test('saturation: a queue that grows without bound is recognised, a stable run is not', async () => {
  // 2 streams at a time, 35 ms each: about 57 req/s of capacity.
  const { base } = await setup({ ttftMs: 20, itlMs: 5, maxConcurrent: 2, coarseTimers: true });
  const ok = await runBenchmark({ ...base, kind: 'steady', dataset: { kind: 'random', inputLen: 4, outputLen: 4 }, rate: 20, count: 16, write: false });
  assert.deepEqual(ok.result.pd_saturation, { saturated: false, reason: null });
  const over = await runBenchmark({ ...base, kind: 'steady', dataset: { kind: 'random', inputLen: 4, outputLen: 4 }, rate: 300, count: 60, write: false });
  assert.equal(over.result.pd_saturation?.saturated, true, JSON.stringify(over.result.pd_saturation));
  assert.match(over.result.pd_saturation?.reason ?? '', /queue growing: TTFT p50/);
});

test('the KV cache is cleared only for a target on this machine (a cluster gateway does not use it)', async () => {
  const { isLocalTarget } = await import('../../src/bench/cache-policy.js');
  assert.equal(isLocalTarget('http://127.0.0.1:8000'), true);
  assert.equal(isLocalTarget('http://localhost:8000/v1'), true);
  assert.equal(isLocalTarget('http://[::1]:8000'), true);
  assert.equal(isLocalTarget('http://gateway.example.com'), false);
  assert.equal(isLocalTarget('http://10.255.255.1:80'), false);
});
