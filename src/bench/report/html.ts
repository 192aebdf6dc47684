/**
 * `pd bench report`: one self-contained HTML file (inline CSS and SVG, no network, no fonts to fetch) with
 * TTFT/TPOT/ITL p50 and p99 against request rate per set, throughput against offered rate, the prefill/decode
 * split from the proxy's Server-Timing, and a per-run table.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname, resolve } from 'node:path';
import type { RunResult } from '../result.js';
import { numberField, offeredRate } from '../sheet-runs.js';
import { DECODE_COLOR, PREFILL_COLOR, REPORT_METRICS, type ReportData, type ReportMetric, type ReportSet, categoryOf, collectReportData } from './data.js';
import { esc, lineChart, stackedBarChart } from './svg.js';

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

function setLabel(s: ReportSet): string {
  return s.source === 'sheet' ? `${s.set} (sheet)` : s.set;
}

function latencyChart(data: ReportData, metric: ReportMetric): string {
  return lineChart({
    id: metric,
    title: `${METRIC_TITLES[metric]}: p50 and p99`,
    yLabel: 'ms',
    xLabel: X_LABEL,
    categories: data.categories,
    series: data.sets.flatMap((s) => [
      { id: `${s.set}/p50`, name: `${setLabel(s)} p50`, color: s.color, values: valuesFor(s, data.categories, (p) => p.p50[metric]) },
      { id: `${s.set}/p99`, name: `${setLabel(s)} p99`, color: s.color, dashed: true, values: valuesFor(s, data.categories, (p) => p.p99[metric]) },
    ]),
    legend: [
      ...data.sets.map((s) => ({ name: setLabel(s), color: s.color, kind: 'line' as const })),
      { name: 'p50', color: '#666', kind: 'line' },
      { name: 'p99', color: '#666', dashed: true, kind: 'line' },
    ],
  });
}

function throughputCharts(data: ReportData): string[] {
  const sets = data.sets.filter((s) => s.points.some((p) => p.requestThroughput !== null));
  if (sets.length === 0) return [];
  const guide = data.categories.map((c) => (c === 'flood' ? null : Number(c)));
  return [
    lineChart({
      id: 'request-throughput',
      title: 'Request throughput vs offered rate',
      yLabel: 'req/s',
      xLabel: X_LABEL,
      categories: data.categories,
      series: sets.map((s) => ({ id: `${s.set}/request_throughput`, name: s.set, color: s.color, values: valuesFor(s, data.categories, (p) => p.requestThroughput) })),
      guide: { name: 'offered rate', values: guide },
    }),
    lineChart({
      id: 'output-throughput',
      title: 'Output token throughput vs offered rate',
      yLabel: 'tok/s',
      xLabel: X_LABEL,
      categories: data.categories,
      series: sets.map((s) => ({ id: `${s.set}/output_throughput`, name: s.set, color: s.color, values: valuesFor(s, data.categories, (p) => p.outputThroughput) })),
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
        id: `split-${s.set}`,
        title: `Prefill / decode split (median): ${s.set}`,
        yLabel: 'ms',
        xLabel: X_LABEL,
        categories: cats,
        layers: [
          { id: `${s.set}/prefill`, name: 'prefill (stage 1, producer)', color: PREFILL_COLOR, values: cats.map((c) => split(c)?.prefill ?? null) },
          { id: `${s.set}/decode`, name: 'decode TTFB (stage 2, consumer)', color: DECODE_COLOR, values: cats.map((c) => split(c)?.decode ?? null) },
        ],
        notes: cats.map((c) => {
          const sp = split(c);
          const total = sp ? sp.prefill + sp.decode : 0;
          return sp && total > 0 ? `${Math.round((sp.prefill / total) * 100)}% prefill` : null;
        }),
      });
    });
}

const n2 = (v: number | null | undefined) => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(2));

function runRow(r: RunResult): string {
  const rate = offeredRate(r);
  const f = (k: string) => n2(numberField(r, k));
  const split = r.pd_stage_split;
  const kv = r.pd_kv_cache;
  const cells = [
    esc(r.pd_set),
    esc(r.pd_run_name),
    esc(r.pd_run_kind) + (r.pd_partial ? ' <span class="warn">(partial)</span>' : ''),
    rate === null ? 'inf' : esc(String(rate)),
    String(r.num_prompts),
    String(r.completed),
    r.failed > 0 ? `<span class="warn">${r.failed}</span>` : '0',
    `${(r.pd_good_request_fraction * 100).toFixed(1)}%`,
    f('request_throughput'),
    f('output_throughput'),
    f('median_ttft_ms'),
    f('p99_ttft_ms'),
    f('median_tpot_ms'),
    f('p99_tpot_ms'),
    f('median_itl_ms'),
    f('p99_itl_ms'),
    split ? n2(split.prefill_ms.median) : '—',
    split ? n2(split.decode_ttfb_ms.median) : '—',
    kv ? `${kv.hits}${kv.misses === null ? '' : ` / ${kv.misses}`}` : '—',
    n2(r.pd_send_lateness_ms?.p99),
  ];
  return `<tr>${cells.map((c, i) => `<td${i >= 3 ? ' class="num"' : ''}>${c}</td>`).join('')}</tr>`;
}

const TABLE_HEAD = [
  'set', 'run', 'kind', 'rate (req/s)', 'prompts', 'completed', 'failed', 'good', 'req/s', 'out tok/s',
  'TTFT p50', 'TTFT p99', 'TPOT p50', 'TPOT p99', 'ITL p50', 'ITL p99', 'prefill p50', 'decode TTFB p50', 'KV hits / misses', 'send late p99',
];

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
table{border-collapse:collapse;font-size:12px;margin-top:6px}th,td{border:1px solid #ddd;padding:3px 6px;white-space:nowrap}
th{background:#f4f4f4;text-align:left}td.num{text-align:right;font-variant-numeric:tabular-nums}.warn{color:#b00}
.table-wrap{overflow-x:auto;max-width:100%}
.notes{font-size:13px;color:#444;max-width:1340px}
`;

/**
 * Records each plot area's position on the root element (data-plot-rects, page pixels) after layout, so
 * automated checks (`chromium --dump-dom` + a screenshot) can look inside each chart. Changes nothing visible.
 */
const RECT_SCRIPT = `(function(){function m(){var o=[];document.querySelectorAll('[data-plot]').forEach(function(e){var r=e.getBoundingClientRect();o.push({id:e.getAttribute('data-plot'),x:Math.round(r.left+window.scrollX),y:Math.round(r.top+window.scrollY),w:Math.round(r.width),h:Math.round(r.height)})});document.documentElement.setAttribute('data-plot-rects',JSON.stringify(o))}if(document.readyState==='loading')document.addEventListener('DOMContentLoaded',m);else m()})();`;

/** The report page for already collected data. */
export function renderReport(data: ReportData, generatedAt = new Date()): string {
  const charts = [...REPORT_METRICS.map((m) => latencyChart(data, m)), ...throughputCharts(data), ...splitCharts(data)];
  const notes: string[] = [];
  if (!data.sets.some((s) => s.points.some((p) => p.requestThroughput !== null)))
    notes.push('No throughput charts: the reported sets come from a sheet, which holds latencies only.');
  if (!data.sets.some((s) => s.points.some((p) => p.split !== null)))
    notes.push('No prefill/decode split: no run carried the proxy\'s Server-Timing header (only `pd` proxies send it).');
  const sheetSets = data.sets.filter((s) => s.source === 'sheet');
  if (sheetSets.length > 0)
    notes.push(`Sets marked (sheet) come from ${esc(data.sheetPath ?? '')}; their p50 is the sheet's Median row.`);
  notes.push('Lines join steady runs; the flood run (all prompts at once) is the diamond right of the divider. Solid = p50, dashed = p99. A y axis is logarithmic when its values span more than 20x.');
  const models = [...new Set(data.runs.map((r) => r.model_id))];
  const legend = data.sets.map((s) => `<span><i style="background:${s.color}"></i>${esc(setLabel(s))}</span>`).join('');
  return `<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>pd bench report</title><style>${CSS}</style></head>
<body>
<h1>pd bench report</h1>
<p class="meta">Generated ${esc(generatedAt.toISOString())} from ${esc(data.resultsDir)}${data.sheetPath ? ` and ${esc(data.sheetPath)}` : ''}${models.length ? ` · model ${models.map(esc).join(', ')}` : ''} · ${data.runs.length} run${data.runs.length === 1 ? '' : 's'}</p>
<div class="sets">${legend}</div>
<div class="charts">
${charts.join('\n')}
</div>
<div class="notes">${notes.map((n) => `<p>${n}</p>`).join('')}</div>
<h2>Runs</h2>
${data.runs.length === 0 ? '<p class="meta">No run results.</p>' : `<div class="table-wrap"><table><thead><tr>${TABLE_HEAD.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>
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
