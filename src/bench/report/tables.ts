/**
 * The report's tables: where each series comes from (provenance and workload), the baseline view (every other
 * series against the first, with difference columns that say whether a difference is significant), and the
 * per-run table (failed runs shown as failures, never as zeros).
 */
import type { RunResult } from '../result.js';
import { numberField, offeredRate } from '../sheet-runs.js';
import { judge, samplesOf, type SampleStat } from '../significance.js';
import { categoryOf, type ReportData, type ReportPoint, type ReportSet } from './data.js';
import { esc } from './svg.js';

const n2 = (v: number | null | undefined): string => (v === null || v === undefined || !Number.isFinite(v) ? '—' : v.toFixed(2));
const td = (c: string, num = false): string => `<td${num ? ' class="num"' : ''}>${c}</td>`;
const swatch = (s: ReportSet): string => `<i style="background:${s.color}"></i>`;

export function setsTable(data: ReportData): string {
  const head = ['series', 'source', 'engines', 'model', 'endpoint', 'lengths (tokens)', 'dataset', 'seeds', 'ignore_eos', 'warm-ups', 'pd version', 'runs', 'SLO capacity'];
  const rows = data.sets.map((s) => {
    const p = s.provenance;
    const cap = s.capacity;
    const capText = cap
      ? `${cap.max_rate} req/s <span class="dim">(${(cap.attainment * 100).toFixed(0)}% within ${Object.entries(cap.slos).map(([k, v]) => `${k} ${v} ms`).join(', ')})</span>`
      : '—';
    const failed = s.runs.filter((r) => r.pd_failed).length;
    const cells = p
      ? [p.engines, p.model, p.endpoint, p.lengths, p.dataset, p.seeds, p.ignoreEos, p.warmups, p.version].map(esc)
      : ['from the sheet', '—', '—', '—', '—', '—', '—', '—', '—'];
    return `<tr>${td(`<span class="sw">${swatch(s)}</span>${esc(s.label)}`)}${td(s.source)}${cells.map((c) => td(c)).join('')}${td(`${s.runs.length}${failed ? ` <span class="warn">(${failed} failed)</span>` : ''}`, true)}${td(capText)}</tr>`;
  });
  return `<div class="table-wrap"><table class="sets"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

/** The workload in one sentence (what every set was asked to do), for the top of the page. */
export function workloadText(data: ReportData): string {
  const runs = data.runs.filter((r) => !r.pd_failed);
  if (runs.length === 0) return data.sets.some((s) => s.source === 'sheet') ? `Sets from the sheet ${esc(data.sheetPath ?? '')} (no run results: workload unknown).` : 'No run results.';
  const uniq = (xs: string[]): string => [...new Set(xs)].join(', ');
  const rates = [...new Set(runs.map((r) => offeredRate(r)).filter((x): x is number => x !== null))].sort((a, b) => a - b);
  const floods = runs.filter((r) => offeredRate(r) === null).map((r) => r.num_prompts);
  const durations = runs.filter((r) => r.pd_run_kind === 'steady' && r.pd_offered_rate).map((r) => r.num_prompts / r.pd_offered_rate!);
  return [
    `Workload: ${esc(uniq(runs.map((r) => r.pd_dataset)))} prompts of ${esc(uniq(runs.map((r) => (r.pd_input_len !== null ? String(r.pd_input_len) : 'file-defined'))))} input tokens`,
    `${esc(uniq(runs.map((r) => String(r.pd_output_len ?? 'file-defined'))))} output tokens (ignore_eos ${esc(uniq(runs.map((r) => String(r.pd_ignore_eos ?? 'unknown'))))})`,
    `to the ${esc(uniq(runs.map((r) => r.pd_endpoint)))} endpoint`,
    rates.length ? `steady runs at ${rates.join(', ')} req/s${durations.length ? ` (~${Math.round(Math.max(...durations))} s each)` : ''}` : '',
    floods.length ? `flood runs of ${uniq(floods.map(String))} prompts at once` : '',
    `arrivals ${esc(uniq(runs.map((r) => (r.burstiness === 1 ? 'Poisson' : `gamma(${r.burstiness})`))))}`,
  ]
    .filter(Boolean)
    .join(', ') + '.';
}

const BASELINE_METRICS: Array<{ label: string; pick: (p: ReportPoint) => number | null; kind: 'latency' | 'throughput'; sample?: { metric: 'ttft' | 'tpot' | 'itl'; stat: SampleStat } }> = [
  { label: 'TTFT p50 (ms)', pick: (p) => p.p50.ttft, kind: 'latency', sample: { metric: 'ttft', stat: 'median' } },
  { label: 'TTFT p99 (ms)', pick: (p) => p.p99.ttft, kind: 'latency', sample: { metric: 'ttft', stat: 'p99' } },
  { label: 'TPOT p50 (ms)', pick: (p) => p.p50.tpot, kind: 'latency', sample: { metric: 'tpot', stat: 'median' } },
  { label: 'ITL p50 (ms)', pick: (p) => p.p50.itl, kind: 'latency', sample: { metric: 'itl', stat: 'median' } },
  { label: 'req/s', pick: (p) => p.requestThroughput, kind: 'throughput' },
  { label: 'output tok/s', pick: (p) => p.outputThroughput, kind: 'throughput' },
];

/** Every other series against the first (the baseline): values and significant differences, per rate. */
export function baselineTable(data: ReportData): string | null {
  if (data.sets.length < 2) return null;
  const [base, ...others] = data.sets as [ReportSet, ...ReportSet[]];
  const head = ['rate', 'metric', base.label, ...others.flatMap((o) => [o.label, `Δ vs ${base.label}`])];
  const rows: string[] = [];
  for (const cat of data.categories) {
    const bp = base.points.find((p) => categoryOf(p) === cat);
    for (const m of BASELINE_METRICS) {
      const bv = bp ? m.pick(bp) : null;
      const cells: string[] = [];
      let any = bv !== null;
      for (const o of others) {
        const op = o.points.find((p) => categoryOf(p) === cat);
        const ov = op ? m.pick(op) : null;
        any ||= ov !== null;
        cells.push(td(n2(ov), true));
        if (bv === null || ov === null) {
          cells.push(td('—', true));
          continue;
        }
        const samples = m.sample && bp?.run && op?.run ? { base: samplesOf(bp.run, m.sample.metric), other: samplesOf(op.run, m.sample.metric), stat: m.sample.stat } : null;
        const sig = bv === ov ? null : judge(bv, ov, m.kind, samples);
        const pct = bv === 0 ? '' : ` (${ov >= bv ? '+' : ''}${(((ov - bv) / bv) * 100).toFixed(1)}%)`;
        const text = `${ov - bv >= 0 ? '+' : ''}${n2(ov - bv)}${pct}`;
        cells.push(td(sig?.significant ? text : `<span class="dim" title="no significant difference">≈ ${text}</span>`, true));
      }
      if (any) rows.push(`<tr>${td(esc(cat === 'flood' ? 'flood' : `${cat} req/s`))}${td(esc(m.label))}${td(n2(bv), true)}${cells.join('')}</tr>`);
    }
  }
  return `<div class="table-wrap"><table class="baseline"><thead><tr>${head.map((h) => `<th>${esc(h)}</th>`).join('')}</tr></thead><tbody>${rows.join('')}</tbody></table></div>`;
}

export const RUNS_HEAD = [
  'set', 'run', 'kind', 'rate (req/s)', 'prompts', 'completed', 'failed', 'good', 'req/s', 'out tok/s',
  'TTFT p50', 'TTFT p99', 'TPOT p50', 'TPOT p99', 'ITL p50', 'ITL p99', 'prefill p50', 'decode TTFB p50', 'KV hits / misses', 'send late p99',
];

export function runRow(r: RunResult): string {
  const rate = offeredRate(r);
  const lead = [esc(r.pd_set), esc(r.pd_run_name), esc(r.pd_run_kind) + (r.pd_partial ? ' <span class="warn">(partial)</span>' : ''), rate === null ? 'inf' : esc(String(rate))];
  if (r.pd_failed) {
    const note = `<span class="warn">FAILED</span>: ${esc(r.pd_error ?? 'no result')}`;
    return `<tr class="failed">${lead.map((c, i) => td(c, i >= 3)).join('')}<td colspan="${RUNS_HEAD.length - lead.length}">${note}</td></tr>`;
  }
  const f = (k: string): string => n2(numberField(r, k));
  const split = r.pd_stage_split;
  const kv = r.pd_kv_cache;
  const cells = [
    ...lead,
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
  return `<tr>${cells.map((c, i) => td(c, i >= 3)).join('')}</tr>`;
}
