import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/tmp.js';
import { compareSets, compareSheets, formatComparison, type Comparison } from '../../src/bench/compare.js';
import { UsageError } from '../../src/util/errors.js';

const FIX = fileURLToPath(new URL('./fixtures-report/', import.meta.url));
const REAL = join(FIX, 'sprint-sheet-results-real-gpus.csv');
const RESULTS = join(FIX, 'results');

const cell = (c: Comparison, label: string, key: string) =>
  c.points.find((p) => p.label === label)!.cells.find((x) => x.key === key)!;

describe('bench compare', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  before(async () => (tmp = await tempDir('pd-compare-')));
  after(async () => tmp.cleanup());

  test('reference sheet: pd-disaggregation vs tensor-parallelism, deltas and winners per rate', async () => {
    const c = await compareSheets(REAL, ['pd-disaggregation', 'tensor-parallelism']);
    assert.equal(c.source, 'sheet');
    assert.equal(c.baseline, 'pd-disaggregation');
    assert.deepEqual(c.points.map((p) => p.label), ['2 req/s', '4 req/s', '8 req/s', '16 req/s', '32 req/s', 'flood']);
    const ttft2 = cell(c, '2 req/s', 'mean_ttft_ms');
    assert.deepEqual(ttft2.values, { 'pd-disaggregation': 13118.99, 'tensor-parallelism': 44.08 });
    assert.ok(Math.abs(ttft2.deltas['tensor-parallelism']!.abs - (44.08 - 13118.99)) < 1e-9);
    assert.ok(Math.abs(ttft2.deltas['tensor-parallelism']!.pct! - ((44.08 - 13118.99) / 13118.99) * 100) < 1e-9);
    assert.equal(ttft2.winner, 'tensor-parallelism');
    // At 16 req/s PD decodes faster than TP (TPOT 29.12 vs 47.56): lower latency wins.
    assert.equal(cell(c, '16 req/s', 'mean_tpot_ms').winner, 'pd-disaggregation');
    // The PD flood column is empty in the sheet: no delta, no winner.
    const flood = cell(c, 'flood', 'mean_ttft_ms');
    assert.equal(flood.values['pd-disaggregation'], null);
    assert.equal(flood.deltas['tensor-parallelism'], null);
    assert.equal(flood.winner, null);
    assert.equal(c.summary.compared, 5 * 9);
    assert.equal(c.summary.wins['pd-disaggregation']! + c.summary.wins['tensor-parallelism']! + c.summary.ties, 45);
    assert.deepEqual(c.summary.groups.map((g) => g.group), ['TTFT', 'TPOT', 'ITL']);
    // Sheets hold no per-request samples: a difference under 5% is no significant difference, not a win
    // (TTFT median at 32 req/s: 52468.87 vs 52453.3 ms).
    assert.deepEqual(c.summary.groups[0], { group: 'TTFT', cells: 15, wins: { 'pd-disaggregation': 0, 'tensor-parallelism': 14 } });
    const close = cell(c, '32 req/s', 'median_ttft_ms');
    assert.equal(close.winner, null);
    assert.equal(close.tie, true);
    assert.equal(close.deltas['tensor-parallelism']!.significant, false);
    assert.equal(close.deltas['tensor-parallelism']!.method, 'threshold');
    assert.equal(ttft2.deltas['tensor-parallelism']!.significant, true);
    // JSON-friendly: survives a round trip unchanged.
    assert.deepEqual(JSON.parse(JSON.stringify(c)), c);
  });

  test('results: throughput counts as higher-is-better, three sets, the first is the baseline', async () => {
    const dir = join(tmp.dir, 'results');
    await cp(RESULTS, dir, { recursive: true });
    await mkdir(join(dir, 'empty-set'));
    const c = await compareSets({ resultsDir: dir, sets: ['tensor-parallelism', 'pd-disaggregation'] });
    assert.equal(c.source, 'results');
    const thr = cell(c, '2 req/s', 'output_throughput');
    assert.equal(thr.better, 'higher');
    assert.equal(thr.winner, 'tensor-parallelism');
    assert.ok(thr.deltas['pd-disaggregation']!.abs < 0);
    const ttft = cell(c, '8 req/s', 'p99_ttft_ms');
    assert.equal(ttft.winner, 'tensor-parallelism');
    assert.ok(ttft.deltas['pd-disaggregation']!.pct! > 0);
    assert.equal(c.summary.leader, 'tensor-parallelism');
    assert.equal(c.points.length, 6);
    assert.equal(c.summary.compared, 6 * 11);

    await assert.rejects(compareSets({ resultsDir: dir, sets: ['tensor-parallelism', 'empty-set'] }), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /no results for set "empty-set"/);
      assert.match(e.hint ?? '', /pd-disaggregation, tensor-parallelism/);
      return true;
    });
  });

  test('ties are reported as ties, not wins', async () => {
    const dir = join(tmp.dir, 'ties');
    await cp(join(RESULTS, 'tensor-parallelism'), join(dir, 'a'), { recursive: true });
    await cp(join(RESULTS, 'tensor-parallelism'), join(dir, 'b'), { recursive: true });
    const c = await compareSets({ resultsDir: dir, sets: ['a', 'b'] });
    assert.equal(c.summary.ties, c.summary.compared);
    assert.equal(c.summary.leader, null);
    assert.ok(c.points.every((p) => p.cells.every((x) => x.tie && x.winner === null && x.deltas['b']!.abs === 0)));
  });

  test('formatComparison: a block per rate, deltas, winners and a summary; colour only when asked', async () => {
    const c = await compareSheets(REAL, ['pd-disaggregation', 'tensor-parallelism', 'pd-disaggregation-nixl']);
    const text = formatComparison(c);
    assert.ok(!text.includes('\u001b['), 'no ANSI escapes without colour');
    assert.match(text, /^pd-disaggregation vs tensor-parallelism vs pd-disaggregation-nixl/);
    assert.match(text, /\n2 req\/s\n/);
    // NIXL (43.15 ms) is not significantly better than TP (44.08 ms) at 2 req/s: 2%, under the 5% threshold.
    assert.match(text, /TTFT mean \(ms\)\s+13118\.99\s+44\.08\s+43\.15\s+-13074\.91 \(-99\.7%\)\s+-13075\.84 \(-99\.7%\)\s+no significant difference/);
    assert.match(text, /TTFT mean \(ms\)\s+13720\.29\s+53\.75\s+45\.09\s+-13666\.54 \(-99\.6%\)\s+-13675\.20 \(-99\.7%\)\s+pd-disaggregation-nixl/);
    assert.match(text, /Summary: 54 cells compared, 9 without a significant difference/);
    assert.match(text, /pd-disaggregation-nixl\s+wins 40\/54\s+TTFT 15\/18/);
    assert.ok(formatComparison(c, { color: true }).includes('\u001b[32m'), 'green for the better side');
  });

  test('bad input: one set, unknown set, a set with no values', async () => {
    await assert.rejects(compareSheets(REAL, ['pd-disaggregation']), /at least two sets/);
    await assert.rejects(compareSheets(REAL, ['pd-disaggregation', 'nope']), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /set "nope" is not in the sheet/);
      assert.match(e.hint ?? '', /data-parallelism/);
      return true;
    });
    await assert.rejects(compareSheets(REAL, ['pd-disaggregation', 'pd-disaggregation-p2p']), /has no values in the sheet/);
    const notSheet = join(tmp.dir, 'x.csv');
    await writeFile(notSheet, 'hello\n');
    await assert.rejects(compareSheets(notSheet, ['a', 'b']), /not a sprint sheet/);
  });
});
