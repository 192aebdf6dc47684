/**
 * `pd bench report`: one self-contained HTML file (inline CSS and SVG, no network, no fonts to fetch): the
 * workload and where each series comes from at the top (provenance, SLO capacity), TTFT/TPOT/ITL p50 and p99
 * against request rate per series, throughput against offered rate, the prefill/decode split from the proxy's
 * Server-Timing, the throughput/latency chart of sweeps, a baseline view (every series against the first, with
 * significant differences marked), and a per-run table that shows failed runs as failures.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import { DECODE_COLOR, PREFILL_COLOR, REPORT_METRICS, type ReportData, type ReportMetric, type ReportSet, categoryOf, collectReportData } from './data.js';
import { esc, lineChart, marker, stackedBarChart } from './svg.js';
import { paretoChart } from './pareto.js';
import { baselineTable, RUNS_HEAD, runRow, setsTable, workloadText } from './tables.js';

const METRIC_TITLES: Record<ReportMetric, string> = {
  ttft: 'TTFT (time to first token)',
  tpot: 'TPOT (time per output token)',
  itl: 'ITL (inter-token latency)',
};

const X_LABEL = 'offered request rate (req/s); flood = all prompts at once';

function valuesFor(s: ReportSet, categories: string[], pick: (p: ReportSet['points'][number]) => number | null): (number | null)[] {
  return categories.map((c) => {
    const p = s.points.find((q) => categoryOf(q) === c);
    return p === undefined ? null : pick(p);
  });
}

function latencyChart(data: ReportData, metric: ReportMetric): string {
  return lineChart({
    id: metric,
    title: `${METRIC_TITLES[metric]}: p50 and p99`,
    yLabel: 'ms',
    xLabel: X_LABEL,
    categories: data.categories,
    series: data.sets.flatMap((s) => [
      { id: `${s.id}/p50`, name: `${s.label} p50`, color: s.color, marker: s.marker, values: valuesFor(s, data.categories, (p) => p.p50[metric]) },
      { id: `${s.id}/p99`, name: `${s.label} p99`, color: s.color, marker: s.marker, dashed: true, values: valuesFor(s, data.categories, (p) => p.p99[metric]) },
    ]),
    legend: [
      ...data.sets.map((s) => ({ name: s.label, color: s.color, kind: 'line' as const, marker: s.marker })),
      { name: 'p50', color: '#666', kind: 'line' },
      { name: 'p99', color: '#666', dashed: true, kind: 'line' },
    ],
  });
}

/** Series on throughput charts are shifted a few px apart: sets that all keep up draw the same line. */
const spread = (i: number, n: number): number => (n <= 1 ? 0 : (i - (n - 1) / 2) * 4);

function throughputCharts(data: ReportData): string[] {
  const sets = data.sets.filter((s) => s.points.some((p) => p.requestThroughput !== null));
  if (sets.length === 0) return [];
  const guide = data.categories.map((c) => (c === 'flood' ? null : Number(c)));
  const series = (key: 'requestThroughput' | 'outputThroughput', suffix: string) =>
    sets.map((s, i) => ({ id: `${s.id}/${suffix}`, name: s.label, color: s.color, marker: s.marker, offset: spread(i, sets.length), values: valuesFor(s, data.categories, (p) => p[key]) }));
  return [
    lineChart({
      id: 'request-throughput',
      title: 'Request throughput vs offered rate',
      yLabel: 'req/s',
      xLabel: X_LABEL,
      categories: data.categories,
      series: series('requestThroughput', 'request_throughput'),
      guide: { name: 'offered rate', values: guide },
    }),
    lineChart({
      id: 'output-throughput',
      title: 'Output token throughput vs offered rate',
      yLabel: 'tok/s',
      xLabel: X_LABEL,
      categories: data.categories,
      series: series('outputThroughput', 'output_throughput'),
    }),
  ];
}

function splitCharts(data: ReportData): string[] {
  return data.sets
    .filter((s) => s.points.some((p) => p.split !== null))
    .map((s) => {
      const cats = data.categories;
      const split = (c: string) => s.points.find((p) => categoryOf(p) === c)?.split ?? null;
      return stackedBarChart({
        id: `split-${s.id}`,
        title: `Prefill / decode split (median): ${s.label}`,
        yLabel: 'ms',
        xLabel: X_LABEL,
        categories: cats,
        layers: [
          { id: `${s.id}/prefill`, name: 'prefill (stage 1, producer)', color: PREFILL_COLOR, values: cats.map((c) => split(c)?.prefill ?? null) },
          { id: `${s.id}/decode`, name: 'decode TTFB (stage 2, consumer)', color: DECODE_COLOR, values: cats.map((c) => split(c)?.decode ?? null) },
        ],
        notes: cats.map((c) => {
          const sp = split(c);
          const total = sp ? sp.prefill + sp.decode : 0;
          return sp && total > 0 ? `${Math.round((sp.prefill / total) * 100)}% prefill` : null;
        }),
      });
    });
}

const CSS = `
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",sans-serif;margin:16px 20px;color:#222;background:#fff}
h1{font-size:22px;margin:0 0 4px}h2{font-size:17px;margin:18px 0 8px}
.meta{color:#555;font-size:13px;margin:0 0 6px}
.sets{display:flex;flex-wrap:wrap;gap:14px;font-size:13px;margin:6px 0 10px}
.sets span{display:inline-flex;align-items:center;gap:6px}.sets i{display:inline-block;width:22px;height:4px}
.charts{display:grid;grid-template-columns:repeat(2,660px);gap:12px 20px;align-items:start}
.chart{background:#fff;border:1px solid #e3e3e3;border-radius:4px}
.chart-title{font-size:14px;font-weight:600;fill:#222}.tick{font-size:11px;fill:#555}.axis-label{font-size:11px;fill:#444}
.legend{font-size:11px;fill:#333}.note{font-size:10px;fill:#444}.empty{font-size:13px;fill:#999}
.plot-area{fill:#fff;stroke:#ccc}.grid{stroke:#eee;stroke-width:1}.divider{stroke:#bbb;stroke-dasharray:3 3}
.guide{fill:none;stroke:#999;stroke-width:1.5;stroke-dasharray:4 4}
table{border-collapse:collapse;font-size:12px;margin-top:6px}th,td{border:1px solid #ddd;padding:3px 6px}
td{white-space:nowrap}th{background:#f4f4f4;text-align:left;white-space:normal;vertical-align:bottom;min-width:3.5em}
td.num{text-align:right;font-variant-numeric:tabular-nums}.warn{color:#b00}.dim{color:#888}
tr.failed td{background:#fff4f4}.sw i{display:inline-block;width:14px;height:4px;margin-right:6px;vertical-align:middle}
.table-wrap{overflow-x:auto;max-width:100%;border:1px solid #eee}
.notes{font-size:13px;color:#444;max-width:1340px}.workload{font-size:14px;max-width:1340px;margin:6px 0 10px}
`;

/**
 * Records each plot area's position on the root element (data-plot-rects, page pixels) after layout, so
 * automated checks (`chromium --dump-dom` + a screenshot) can look inside each chart. Changes nothing visible.
 */
const RECT_SCRIPT = `(function(){function m(){var o=[];document.querySelectorAll('[data-plot]').forEach(function(e){var r=e.getBoundingClientRect();o.push({id:e.getAttribute('data-plot'),x:Math.round(r.left+window.scrollX),y:Math.round(r.top+window.scrollY),w:Math.round(r.width),h:Math.round(r.height)})});document.documentElement.setAttribute('data-plot-rects',JSON.stringify(o))}if(document.readyState==='loading')document.addEventListener('DOMContentLoaded',m);else m()})();`;

/** The report page for already collected data. */
export function renderReport(data: ReportData, generatedAt = new Date()): string {
  const pareto = paretoChart(data.sets);
  const charts = [...REPORT_METRICS.map((m) => latencyChart(data, m)), ...throughputCharts(data), ...splitCharts(data), ...(pareto ? [pareto] : [])];
  const notes: string[] = [...data.notes.map(esc)];
  if (!data.sets.some((s) => s.points.some((p) => p.requestThroughput !== null)))
    notes.push('No throughput charts: the reported sets come from a sheet, which holds latencies only.');
  if (!data.sets.some((s) => s.points.some((p) => p.split !== null)))
    notes.push('No prefill/decode split: no run carried the proxy\'s Server-Timing header (only `pd` proxies send it).');
  const sheetSets = data.sets.filter((s) => s.source === 'sheet');
  if (sheetSets.length > 0)
    notes.push(`Sets marked (sheet) come from ${esc(data.sheetPath ?? '')}; their p50 is the sheet's Median row.`);
  const failed = data.runs.filter((r) => r.pd_failed);
  if (failed.length > 0) notes.push(`<span class="warn">${failed.length} run${failed.length === 1 ? '' : 's'} failed</span> (${failed.map((r) => esc(`${r.pd_set}/${r.pd_run_name}`)).join(', ')}): their cells are empty; the runs table says why.`);
  notes.push('Lines join steady runs; the flood run (all prompts at once) is the larger marker right of the divider. Solid = p50, dashed = p99 (hollow markers). Each series has its own marker, and throughput lines are shifted a few pixels apart, so lines on top of each other stay visible. A y axis is logarithmic when its values span more than 20x.');
  const models = [...new Set(data.runs.map((r) => r.model_id))];
  const legend = data.sets.map((s) => `<span><svg width="26" height="12" viewBox="0 0 26 12"><line x1="0" x2="26" y1="6" y2="6" stroke="${s.color}" stroke-width="2.5"/>${marker(s.marker, 13, 6, 3.5, s.color, false, '', '')}</svg>${esc(s.label)}</span>`).join('');
  const baseline = baselineTable(data);
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pd bench report</title><style>${CSS}</style></head>
<body>
<h1>pd bench report</h1>
<p class="meta">Generated ${esc(generatedAt.toISOString())} from ${esc(data.resultsDir)}${data.sheetPath ? ` and ${esc(data.sheetPath)}` : ''}${models.length ? ` · model ${models.map(esc).join(', ')}` : ''} · ${data.runs.length} run${data.runs.length === 1 ? '' : 's'}</p>
<p class="workload">${workloadText(data)}</p>
${setsTable(data)}
<div class="sets">${legend}</div>
<div class="charts">
${charts.join('\n')}
</div>
<div class="notes">${notes.map((n) => `<p>${n}</p>`).join('')}</div>
${baseline ? `<h2>Against the baseline (${esc(data.sets[0]!.label)})</h2>\n${baseline}<p class="meta">Δ = value − baseline. A difference counts when significant: a 95% bootstrap interval on per-request samples that excludes 0, else at least 5% (latency) or 2% (throughput); others are shown grey with ≈.</p>` : ''}
<h2>Runs</h2>
${data.runs.length === 0 ? '<p class="meta">No run results.</p>' : `<div class="table-wrap"><table><thead><tr>${RUNS_HEAD.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>
${data.runs.map(runRow).join('\n')}
</tbody></table></div><p class="meta">Latencies in ms. good = completed within SLOs (if any) / all requests sent.</p>`}
<script>${RECT_SCRIPT}</script>
</body></html>
`;
}

/**
 * Write the report for `sets` (default: every set in `resultsDir`, plus the sheet's filled sets when
 * `sheetPath` is given) to `out`; returns the absolute path written.
 */
export async function writeReport(opts: { resultsDir: string; sets?: string[]; out: string; sheetPath?: string }): Promise<string> {
  const data = await collectReportData(opts);
  const path = resolve(opts.out);
  await mkdir(dirname(path), { recursive: true });
  await writeFile(path, renderReport(data));
  return path;
}
