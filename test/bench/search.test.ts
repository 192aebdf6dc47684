/** SLO capacity search: the algorithm against a known capacity, and `pd bench search` against a queueing upstream. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { searchCapacity, type SearchSettings } from '../../src/bench/search.ts';
import type { RunResult } from '../../src/bench/result.ts';
import { bootstrapInterval, judge } from '../../src/bench/significance.ts';
import { LogHistogram } from '../../src/bench/progress.ts';
import { seededRandom } from '../../src/bench/arrivals.ts';
import { startFixedUpstream, type FixedUpstream } from './fixed-upstream.ts';
import { runPdInProcess as runPd } from '../cli/in-process.ts';
import { tempDir } from '../helpers/tmp.ts';

const ups: FixedUpstream[] = [];
after(async () => Promise.all(ups.map((u) => u.close())));

const settings: SearchSettings = { slos: { ttft: 100 }, attainment: 0.9, precision: 0.05, budgetSeconds: 600, probeSeconds: 1, minRate: 1, maxRate: 1024 };
/** A fake probe: the target serves up to `capacity` req/s within the SLOs. */
const fake = (capacity: number, delayMs = 0) => async (rate: number) => {
  if (delayMs) await new Promise((r) => setTimeout(r, delayMs));
  return { result: { pd_good_request_fraction: rate <= capacity ? 1 : 0.5, completed: 10, failed: 0, pd_failed: false, pd_partial: false } as unknown as RunResult };
};

test('bracket by doubling, then bisect to the stated precision', async () => {
  const r = await searchCapacity(settings, fake(37), { set: 's', target: 't' });
  assert.deepEqual(r.probes.map((p) => p.rate), [1, 2, 4, 8, 16, 32, 64, 48, 40, 36, 38, 37]);
  assert.equal(r.max_rate, 37);
  assert.equal(r.failing_rate, 38);
  assert.equal(r.stopped, 'precision');
  assert.ok(r.precision_reached! <= 0.05);
  // From above: the first probe fails, halve until one passes.
  const down = await searchCapacity({ ...settings, minRate: 64, precision: 0.2 }, fake(10), { set: 's', target: 't' });
  assert.deepEqual(down.probes.slice(0, 4).map((p) => [p.rate, p.passed]), [[64, false], [32, false], [16, false], [8, true]]);
  assert.ok(down.max_rate >= 8 && down.max_rate <= 10 && down.failing_rate! <= 12);
  assert.equal((await searchCapacity({ ...settings, maxRate: 8 }, fake(100), { set: 's', target: 't' })).stopped, 'max-rate');
  assert.equal((await searchCapacity({ ...settings, minRate: 1 }, fake(0.001), { set: 's', target: 't' })).stopped, 'min-rate');
  // The time budget: probes that would not fit are not started, and the answer says so.
  const b = await searchCapacity({ ...settings, probeSeconds: 0.05, budgetSeconds: 0.22 }, fake(37, 50), { set: 's', target: 't' });
  assert.equal(b.stopped, 'budget');
  assert.ok(b.probes.length >= 2 && b.probes.length <= 4, `${b.probes.length} probes`);
});

test('pd bench search --json (in-process through pd\'s commander program): every probe, and the answer as max_rate', async () => {
  // Two streams at a time, 35 ms each: the TTFT SLO holds up to a few tens of req/s.
  const up = await startFixedUpstream({ ttftMs: 20, itlMs: 5, maxConcurrent: 2, coarseTimers: true });
  ups.push(up);
  const { dir, cleanup } = await tempDir('pd-search-');
  try {
    const r = await runPd(
      ['bench', 'search', '--target', up.url, '--goodput', 'ttft:100', '--duration', '0.4', '--min-rate', '16', '--precision', '0.5', '--budget', '30', '--random-output-len', '4', '--num-warmups', '0', '--results-dir', dir, '--json', '--no-progress'],
      { cwd: dir },
    );
    assert.equal(r.code, 0, r.stderr);
    const j = JSON.parse(r.stdout);
    assert.ok(j.probes.length >= 2, JSON.stringify(j.probes));
    assert.equal(j.probes[0].rate, 16);
    assert.ok(j.probes.some((p: { passed: boolean }) => !p.passed), 'the search found a failing rate');
    const best = j.probes.filter((p: { passed: boolean }) => p.passed).reduce((m: number, p: { rate: number }) => Math.max(m, p.rate), 0);
    assert.equal(j.max_rate, best);
    assert.ok(j.failing_rate > j.max_rate && (j.failing_rate - j.max_rate) / j.max_rate <= 0.5 + 1e-9, JSON.stringify(j));
    assert.deepEqual(j.slos, { ttft: 100 });
    assert.equal(j.attainment, 0.9);
    for (const p of j.probes) assert.ok(typeof p.good_fraction === 'number' && typeof p.median_ttft_ms === 'number');
    const files = await readdir(join(dir, 'pd-disaggregation'));
    const saved = files.filter((f) => f.startsWith('search-'));
    assert.equal(saved.length, 1, 'the search is archived, its probes are not archived as runs');
    assert.equal(files.length, 1);
    assert.equal(JSON.parse(await readFile(join(dir, 'pd-disaggregation', saved[0]!), 'utf8')).max_rate, j.max_rate);
    const bad = await runPd(['bench', 'search', '--target', up.url, '--results-dir', dir], { cwd: dir });
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /a capacity search needs SLOs: --goodput/);
  } finally {
    await cleanup();
  }
});

test('compare knows noise: a bootstrap interval on per-request samples, else a stated threshold', () => {
  const rand = seededRandom(4);
  const normal = (mu: number) => {
    const u = rand() || 1e-9;
    return mu + 10 * Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * rand());
  };
  const sample = (mu: number, n: number) => Float64Array.from({ length: n }, () => normal(mu)).sort();
  const a = sample(100, 600);
  const same = sample(100, 600);
  const shifted = sample(104, 600);
  for (const stat of ['mean', 'median'] as const) {
    const ci = bootstrapInterval(a, same, stat);
    assert.ok(ci[0] < 0 && ci[1] > 0, `${stat}: the same distribution has 0 in its interval ${ci.join(", ")}`);
    const s = bootstrapInterval(a, shifted, stat);
    assert.ok(s[0] > 0, `${stat}: a shift of 4 (0.4 sd) is found ${s.join(", ")}`);
  }
  assert.equal(judge(100, 101, 'latency', { base: a, other: same, stat: 'median' }).significant, false);
  assert.equal(judge(100, 104, 'latency', { base: a, other: shifted, stat: 'median' }).method, 'bootstrap');
  assert.deepEqual(judge(10.0, 9.99, 'throughput'), { significant: false, method: 'threshold', ci: null, threshold: 0.02 });
  assert.equal(judge(10, 9, 'throughput').significant, true);
});

test('running p50 for the progress line: log buckets within 1%', () => {
  const h = new LogHistogram();
  for (let i = 1; i <= 1001; i++) h.add(i / 10);
  assert.ok(Math.abs(h.percentile(50)! - 50.1) / 50.1 < 0.01, String(h.percentile(50)));
  assert.equal(new LogHistogram().percentile(50), null);
});
