import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { readFile, writeFile, copyFile, mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../helpers/tmp.js';
import { loadRunResults, type RunResult } from '../../src/bench/result.js';
import { longCsv, mergeIntoSheet, parseSheet, readSheet, writeLongCsv, writeSheet } from '../../src/bench/sheet.js';
import { parseCsv } from '../../src/bench/sheet-csv.js';
import { formatSheetNumber } from '../../src/bench/sheet-runs.js';
import { UsageError } from '../../src/util/errors.js';

const FIX = fileURLToPath(new URL('./fixtures-report/', import.meta.url));
const REAL = join(FIX, 'sprint-sheet-results-real-gpus.csv');
const TEMPLATE = join(FIX, 'sprint-sheet-template.csv');
const RESULTS = join(FIX, 'results');

/** Cells of a CSV text as a grid of strings. */
const grid = (text: string) => parseCsv(text).rows.map((r) => r.map((c) => c.value));

/** A minimal valid run carrying the given sheet numbers (the other fields are irrelevant to the sheet). */
function runFromSheetValues(base: RunResult, set: string, rate: number | null, v: Record<string, number | null>): RunResult {
  const r: Record<string, unknown> = { ...base, pd_set: set, pd_offered_rate: rate, request_rate: rate ?? 'inf', pd_run_kind: rate === null ? 'flood' : 'steady' };
  for (const [k, val] of Object.entries(v)) if (val === null) delete r[k];
  else r[k] = val;
  return r as RunResult;
}

describe('sprint sheet', () => {
  let tmp: { dir: string; cleanup: () => Promise<void> };
  let runs: RunResult[];
  before(async () => {
    tmp = await tempDir('pd-sheet-');
    runs = await loadRunResults(RESULTS);
  });
  after(async () => tmp.cleanup());

  test('formats numbers like the reference sheet (Python str(round(x, 2)))', () => {
    assert.equal(formatSheetNumber(44.0789), '44.08');
    assert.equal(formatSheetNumber(24101.9012), '24101.9');
    assert.equal(formatSheetNumber(10), '10.0');
    assert.equal(formatSheetNumber(9.999), '10.0');
    assert.equal(formatSheetNumber(0.125), '0.12'); // exact tie: half to even, as Python
    assert.equal(formatSheetNumber(0.375), '0.38');
    assert.equal(formatSheetNumber(-0.001), '0.0');
    assert.equal(formatSheetNumber(133750.0712), '133750.07');
  });

  test('reads both reference layouts: real-GPU sheet (Nixl/P2P before Data Parallelism) and template', async () => {
    const real = await readSheet(REAL);
    assert.equal(real.layout, 'real-gpu');
    assert.deepEqual(
      real.sets.map((s) => `${s.set}:${s.firstColumn}..${s.lastColumn}`),
      ['tensor-parallelism:C..H', 'pipeline-parallelism:I..N', 'pd-disaggregation:O..T', 'pd-disaggregation-nixl:U..Z', 'pd-disaggregation-p2p:AA..AF', 'data-parallelism:AG..AL'],
    );
    const pd = real.sets.find((s) => s.set === 'pd-disaggregation')!;
    assert.deepEqual(pd.points.map((p) => p.rate), [2, 4, 8, 16, 32, null]);
    assert.deepEqual(pd.points[0], {
      kind: 'steady', rate: 2, column: 'O',
      ttft: { mean: 13118.99, median: 13153.23, p99: 13339.07 },
      tpot: { mean: 24.61, median: 24.62, p99: 24.89 },
      itl: { mean: 24.59, median: 24.1, p99: 39.03 },
    });
    assert.deepEqual(pd.points[5]!.ttft, { mean: null, median: null, p99: null }); // the flood column T is empty
    const nixl = real.sets.find((s) => s.set === 'pd-disaggregation-nixl')!;
    assert.equal(nixl.points[0]!.ttft.mean, 43.15);
    assert.equal(nixl.points[5]!.column, 'Z');
    const dp = real.sets.find((s) => s.set === 'data-parallelism')!;
    assert.equal(dp.points[4]!.itl.p99, 121.06);
    const p2p = real.sets.find((s) => s.set === 'pd-disaggregation-p2p')!;
    assert.ok(p2p.points.every((p) => p.ttft.mean === null));

    const tpl = await readSheet(TEMPLATE);
    assert.equal(tpl.layout, 'template');
    assert.deepEqual(tpl.sets.map((s) => `${s.set}:${s.firstColumn}..${s.lastColumn}`), [
      'tensor-parallelism:C..H', 'pipeline-parallelism:I..N', 'pd-disaggregation:O..T', 'data-parallelism:U..Z',
    ]);
  });

  test('round trip is byte-identical: no runs, and runs carrying exactly the sheet\'s own values', async () => {
    for (const path of [REAL, TEMPLATE]) {
      const text = await readFile(path, 'utf8');
      assert.equal(mergeIntoSheet(text, path, 'pd-disaggregation', []), text);
    }
    // Rebuild every filled cell of the real-GPU sheet from runs and write them back set by set.
    const text = await readFile(REAL, 'utf8');
    const sheet = parseSheet(text);
    const copy = join(tmp.dir, 'roundtrip.csv');
    await copyFile(REAL, copy);
    for (const s of sheet.sets) {
      const setRuns = s.points
        .filter((p) => p.ttft.mean !== null)
        .map((p) => {
          const v: Record<string, number | null> = {};
          for (const m of ['ttft', 'tpot', 'itl'] as const) {
            v[`mean_${m}_ms`] = p[m].mean;
            v[`median_${m}_ms`] = p[m].median;
            v[`p99_${m}_ms`] = p[m].p99;
          }
          return runFromSheetValues(runs[0]!, s.set, p.rate, v);
        });
      await writeSheet({ sheetPath: copy, set: s.set, results: setRuns });
    }
    assert.equal(await readFile(copy, 'utf8'), text);
  });

  test('merging a set into the real-GPU sheet changes only that set\'s cells (golden file)', async () => {
    const copy = join(tmp.dir, 'real-merged.csv');
    await copyFile(REAL, copy);
    const tp = runs.filter((r) => r.pd_set === 'tensor-parallelism');
    await writeSheet({ sheetPath: copy, set: 'tensor-parallelism', results: tp });
    const got = await readFile(copy, 'utf8');
    assert.equal(got, await readFile(join(FIX, 'expected', 'real-gpu-merged-tensor-parallelism.csv'), 'utf8'));
    const before = grid(await readFile(REAL, 'utf8'));
    const afterGrid = grid(got);
    for (let r = 0; r < before.length; r++)
      for (let c = 0; c < before[r]!.length; c++) {
        const inTp = c >= 2 && c <= 7 && r >= 4;
        if (!inTp) assert.equal(afterGrid[r]![c], before[r]![c], `cell r${r + 1} c${c + 1} must not change`);
      }
    const rate8 = tp.find((r) => r.pd_offered_rate === 8)!;
    assert.equal(afterGrid[4]![4], formatSheetNumber(rate8.mean_ttft_ms)); // TTFT Mean, column E (rate 8)
    assert.equal(afterGrid[12]![7], formatSheetNumber((tp.find((r) => r.pd_run_kind === 'flood') as Record<string, number>)['p99_itl_ms']!));
  });

  test('creates a new sheet in the issue layout (PD O..T, DP U..Z, Nixl AA..AF, P2P AG..AL) (golden file)', async () => {
    const path = join(tmp.dir, 'nested', 'dir', 'sheet.csv');
    await writeSheet({ sheetPath: path, set: 'pd-disaggregation', results: runs.filter((r) => r.pd_set === 'pd-disaggregation') });
    const text = await readFile(path, 'utf8');
    assert.equal(text, await readFile(join(FIX, 'expected', 'new-sheet-pd-disaggregation.csv'), 'utf8'));
    const sheet = parseSheet(text);
    assert.equal(sheet.layout, 'issue');
    assert.deepEqual(sheet.sets.map((s) => `${s.set}:${s.firstColumn}..${s.lastColumn}`), [
      'tensor-parallelism:C..H', 'pipeline-parallelism:I..N', 'pd-disaggregation:O..T', 'data-parallelism:U..Z',
      'pd-disaggregation-nixl:AA..AF', 'pd-disaggregation-p2p:AG..AL',
    ]);
    const pd = sheet.sets[2]!;
    assert.deepEqual(pd.points.map((p) => p.column), ['O', 'P', 'Q', 'R', 'S', 'T']);
    assert.equal(pd.points[5]!.ttft.median, 58000.5);
    assert.ok(sheet.sets[0]!.points.every((p) => p.ttft.mean === null));
    // A second set merges into the same file without touching the first.
    await writeSheet({ sheetPath: path, set: 'tensor-parallelism', results: runs.filter((r) => r.pd_set === 'tensor-parallelism') });
    const both = parseSheet(await readFile(path, 'utf8'));
    assert.deepEqual(both.sets[2], pd);
    assert.equal(both.sets[0]!.points[0]!.ttft.median, 43.25);
  });

  test('the template (CRLF, no final newline) keeps its bytes; a new set is appended as AA..AF', async () => {
    const copy = join(tmp.dir, 'template.csv');
    await copyFile(TEMPLATE, copy);
    const nixl = runs.filter((r) => r.pd_set === 'pd-disaggregation').map((r) => ({ ...r, pd_set: 'pd-disaggregation-nixl' }));
    await writeSheet({ sheetPath: copy, set: 'pd-disaggregation-nixl', results: nixl });
    const text = await readFile(copy, 'utf8');
    assert.ok(text.includes('\r\n') && !text.endsWith('\n'), 'CRLF without final newline is kept');
    const sheet = parseSheet(text);
    assert.equal(sheet.layout, 'issue');
    const block = sheet.sets.find((s) => s.set === 'pd-disaggregation-nixl')!;
    assert.equal(block.title, 'PD Disaggregation Nixl');
    assert.equal(`${block.firstColumn}..${block.lastColumn}`, 'AA..AF');
    assert.equal(block.points[0]!.ttft.median, 13153.23);
    const original = grid(await readFile(TEMPLATE, 'utf8'));
    const now = grid(text);
    for (let r = 0; r < original.length; r++) assert.deepEqual(now[r]!.slice(0, 26), original[r], `row ${r + 1} A..Z unchanged`);
  });

  test('unknown set names get a block appended on the right, titled with the set name', async () => {
    const copy = join(tmp.dir, 'unknown.csv');
    await copyFile(REAL, copy);
    const single = runs.filter((r) => r.pd_set === 'tensor-parallelism').map((r) => ({ ...r, pd_set: 'single-engine' }));
    await writeSheet({ sheetPath: copy, set: 'single-engine', results: single });
    const sheet = await readSheet(copy);
    assert.equal(sheet.layout, 'custom');
    const last = sheet.sets[sheet.sets.length - 1]!;
    assert.equal(last.title, 'single-engine');
    assert.equal(`${last.firstColumn}..${last.lastColumn}`, 'AM..AR');
    assert.equal(last.points[1]!.ttft.median, 53.64);
    assert.deepEqual(sheet.sets.slice(0, 6), (await readSheet(REAL)).sets);
  });

  test('a rate the set\'s block has no column for is a clear error and the file is not touched', async () => {
    const copy = join(tmp.dir, 'badrate.csv');
    await copyFile(REAL, copy);
    const odd = runs.filter((r) => r.pd_set === 'pd-disaggregation' && r.pd_offered_rate === 2).map((r) => ({ ...r, pd_offered_rate: 3, request_rate: 3 }));
    await assert.rejects(writeSheet({ sheetPath: copy, set: 'pd-disaggregation', results: odd }), (e: unknown) => {
      assert.ok(e instanceof UsageError);
      assert.match(e.message, /no column for 3 req\/s in set "pd-disaggregation".*O\.\.T.*2, 4, 8, 16, 32, flood/);
      assert.ok(e.hint && /row 4/.test(e.hint));
      return true;
    });
    assert.equal(await readFile(copy, 'utf8'), await readFile(REAL, 'utf8'));
  });

  test('single runs at a rate the sheet has no column for are left out; sprint runs are not', () => {
    const two = runs.find((r) => r.pd_set === 'pd-disaggregation' && r.pd_offered_rate === 2)!;
    const adhoc = { ...two, pd_run_kind: 'single' as const, pd_offered_rate: 3, request_rate: 3, mean_ttft_ms: 7 };
    const text = mergeIntoSheet(null, 'x', 'pd-disaggregation', [two, adhoc]);
    const pd = parseSheet(text).sets[2]!;
    assert.deepEqual(pd.points.map((p) => p.rate), [2, 4, 8, 16, 32, null], 'no column added for the ad-hoc rate');
    assert.equal(pd.points[0]!.ttft.mean, Number(formatSheetNumber(two.mean_ttft_ms)));
    assert.ok(!text.includes(',7.0'));
  });

  test('sprint runs win over single runs, later runs over earlier ones', () => {
    const two = runs.find((r) => r.pd_set === 'pd-disaggregation' && r.pd_offered_rate === 2)!;
    const later = { ...two, pd_started_at: '2030-01-01T00:00:00.000Z', mean_ttft_ms: 1.234 };
    const single = { ...two, pd_run_kind: 'single' as const, pd_started_at: '2031-01-01T00:00:00.000Z', mean_ttft_ms: 9.99 };
    const sheet = parseSheet(mergeIntoSheet(null, 'x', 'pd-disaggregation', [single, later, two]));
    assert.equal(sheet.sets[2]!.points[0]!.ttft.mean, 1.23);
  });

  test('refuses runs of another set, and files that are not sheets', async () => {
    assert.throws(() => mergeIntoSheet(null, 'x', 'pd-disaggregation', runs), /was given runs of set "tensor-parallelism"/);
    const bad = join(tmp.dir, 'bad.csv');
    await writeFile(bad, 'a,b,c\n1,2,3\n');
    await assert.rejects(readSheet(bad), /bad\.csv is not a sprint sheet: no row for TTFT Mean/);
    await assert.rejects(readSheet(join(tmp.dir, 'missing.csv')), /sheet not found/);
  });

  test('long CSV: one tidy row per run x metric x stat, plus throughput, counts and stage split', async () => {
    const path = join(tmp.dir, 'long', 'runs.csv');
    await writeLongCsv({ path, results: runs });
    const text = await readFile(path, 'utf8');
    assert.equal(text, longCsv(runs));
    const rows = grid(text);
    assert.deepEqual(rows[0], ['set', 'run', 'run_kind', 'rate', 'metric', 'stat', 'value_ms', 'value', 'unit']);
    assert.ok(rows.slice(1).every((r) => r.length === 9));
    const find = (set: string, rate: string, metric: string, stat: string) =>
      rows.find((r) => r[0] === set && r[3] === rate && r[4] === metric && r[5] === stat);
    const pd8 = runs.find((r) => r.pd_set === 'pd-disaggregation' && r.pd_offered_rate === 8)!;
    assert.deepEqual(find('pd-disaggregation', '8', 'ttft', 'p99'), ['pd-disaggregation', 'steady-rate8', 'steady', '8', 'ttft', 'p99', String(pd8.p99_ttft_ms), String(pd8.p99_ttft_ms), 'ms']);
    assert.equal(find('pd-disaggregation', '8', 'prefill', 'median')![6], String(pd8.pd_stage_split!.prefill_ms.median));
    assert.equal(find('tensor-parallelism', 'inf', 'output_throughput', 'value')![8], 'tok/s');
    assert.equal(find('tensor-parallelism', 'inf', 'output_throughput', 'value')![6], '', 'value_ms is only for ms rows');
    assert.equal(find('tensor-parallelism', '2', 'prefill', 'mean'), undefined, 'no split without Server-Timing');
    const stats = rows.filter((r) => r[0] === 'tensor-parallelism' && r[3] === '2' && r[4] === 'itl').map((r) => r[5]);
    assert.deepEqual(stats, ['mean', 'median', 'std', 'p50', 'p90', 'p95', 'p99']);
  });
});

// Used once to (re)generate the golden files after a reviewed change: PD_UPDATE_GOLDEN=1 node test/run.mjs sheet
if (process.env.PD_UPDATE_GOLDEN === '1') {
  const runs = await loadRunResults(RESULTS);
  await mkdir(join(FIX, 'expected'), { recursive: true });
  await writeFile(
    join(FIX, 'expected', 'real-gpu-merged-tensor-parallelism.csv'),
    mergeIntoSheet(await readFile(REAL, 'utf8'), REAL, 'tensor-parallelism', runs.filter((r) => r.pd_set === 'tensor-parallelism')),
  );
  await writeFile(
    join(FIX, 'expected', 'new-sheet-pd-disaggregation.csv'),
    mergeIntoSheet(null, 'new', 'pd-disaggregation', runs.filter((r) => r.pd_set === 'pd-disaggregation')),
  );
}
