/** The report's views: provenance, sources kept apart, the baseline view, failed runs, markers, the sweep chart. */
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { cp, readFile, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { tempDir } from '../../helpers/tmp.js';
import { writeReport } from '../../../src/bench/report/html.js';
import { collectReportData } from '../../../src/bench/report/data.js';
import { paretoFront, type ParetoPoint } from '../../../src/bench/report/pareto.js';

const FIX = fileURLToPath(new URL('../fixtures-report/', import.meta.url));
const REAL = join(FIX, 'sprint-sheet-results-real-gpus.csv');
let dir: string;
let cleanup: () => Promise<void>;

async function edit(path: string, change: (r: Record<string, unknown>) => void): Promise<void> {
  const r = JSON.parse(await readFile(path, 'utf8')) as Record<string, unknown>;
  change(r);
  await writeFile(path, JSON.stringify(r));
}

before(async () => {
  ({ dir, cleanup } = await tempDir('pd-report-views-'));
  const res = join(dir, 'results');
  await cp(join(FIX, 'results'), res, { recursive: true });
  // tensor-parallelism: simulated engines; two of its runs come from real engines (same set name).
  for (const f of await readdir(join(res, 'tensor-parallelism')))
    await edit(join(res, 'tensor-parallelism', f), (r) => {
      r.pd_engines = f.startsWith('steady-rate2') || f.startsWith('steady-rate4') ? 'real' : 'simulated';
      r.pd_ignore_eos = true;
      r.pd_seed = 3;
    });
  // pd-disaggregation: its 8 req/s run failed.
  await edit(join(res, 'pd-disaggregation', 'steady-rate8.json'), (r) => {
    r.pd_failed = true;
    r.pd_error = 'every request failed: HTTP 503';
  });
  // A sweep in set "sweep": three runs at one rate with different --max-concurrency.
  await cp(join(res, 'tensor-parallelism'), join(res, 'sweep'), { recursive: true });
  const sweepFiles = (await readdir(join(res, 'sweep'))).filter((f) => f.endsWith('.json')).sort();
  for (const [i, f] of sweepFiles.entries())
    await edit(join(res, 'sweep', f), (r) => {
      r.pd_set = 'sweep';
      r.pd_run_kind = 'single';
      r.pd_sweep = { maxConcurrency: [1, 4, 16, 64, 128, 256][i] ?? 1, inputLen: null, outputLen: null };
      r.pd_engines = 'simulated';
    });
});
after(async () => cleanup());

test('series: sources never replace each other; provenance and workload at the top; failed runs shown as failed', async () => {
  const data = await collectReportData({ resultsDir: join(dir, 'results'), sheetPath: REAL, sets: ['pd-disaggregation', 'tensor-parallelism', 'sweep'] });
  const labels = data.sets.map((s) => s.label);
  assert.ok(labels.includes('tensor-parallelism [simulated, Qwen/Qwen3-4B-Instruct-2507]'), labels.join(' | '));
  assert.ok(labels.includes('tensor-parallelism [real, Qwen/Qwen3-4B-Instruct-2507]'));
  assert.ok(labels.includes('pd-disaggregation (sheet)'), 'the sheet block with the same name is its own series');
  assert.equal(new Set(data.sets.map((s) => s.id)).size, data.sets.length, 'every series has its own id');
  assert.equal(new Set(data.sets.map((s) => s.marker)).size, Math.min(6, data.sets.length), 'and its own marker');
  assert.ok(data.notes.some((n) => /runs from 2 sources/.test(n)));
  const pd = data.sets.find((s) => s.id === 'pd-disaggregation')!;
  const at8 = pd.points.find((p) => p.rate === 8)!;
  assert.equal(at8.p50.ttft, null, 'a failed run has no numbers');
  assert.equal(at8.requestThroughput, null);

  const out = await writeReport({ resultsDir: join(dir, 'results'), out: join(dir, 'r.html'), sheetPath: REAL, sets: ['pd-disaggregation', 'tensor-parallelism', 'sweep'] });
  const html = await readFile(out, 'utf8');
  assert.match(html, /<p class="workload">Workload: random prompts of 32 input tokens, 512 output tokens/);
  assert.match(html, /<table class="sets">/);
  for (const text of ['simulated', 'real', 'Qwen/Qwen3-4B-Instruct-2507', '32 in / 512 out', 'pd version']) assert.ok(html.includes(text), text);
  assert.match(html, /<tr class="failed">.*steady-rate8.*FAILED<\/span>: every request failed: HTTP 503/);
  assert.match(html, /1 run failed/);
  // Markers: squares and triangles besides circles, on the same chart.
  assert.match(html, /<rect data-point="tensor-parallelism/);
  assert.match(html, /<polygon data-point="/);
  // The baseline view: difference columns against the first series, non-significant differences marked.
  assert.match(html, /<h2>Against the baseline \(pd-disaggregation\)<\/h2>/);
  assert.match(html, /<th>Δ vs pd-disaggregation<\/th>/);
  assert.match(html, /≈ /);
  // The runs table scrolls inside its box instead of running off the page.
  assert.match(html, /\.table-wrap\{overflow-x:auto/);
});

test('sweeps get the throughput/latency chart with the Pareto front joined', async () => {
  const html = await readFile(await writeReport({ resultsDir: join(dir, 'results'), out: join(dir, 's.html'), sets: ['sweep'] }), 'utf8');
  assert.match(html, /data-plot="pareto"/);
  assert.match(html, /<path data-series="sweep\/pareto" d="M/);
  assert.match(html, />mc16</);
  const p = (x: number, y: number): ParetoPoint => ({ x, y, label: `${x}`, run: null as never });
  const front = paretoFront([p(10, 100), p(20, 300), p(15, 90), p(30, 290), p(40, 500)]);
  assert.deepEqual(front.map((q) => q.x), [10, 20, 40]);
});
