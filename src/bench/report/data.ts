/** What the HTML report draws: per set, one point per steady rate plus flood, from run results or a sheet. */
import { UsageError } from '../../util/errors.js';
import { type RunResult, loadRunResults } from '../result.js';
import { readSheet } from '../sheet.js';
import { type PointKey, comparePoints, latestPerPoint, numberField, pointId } from '../sheet-runs.js';

export const SERIES_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'] as const;
/** Stage colours of the prefill/decode split (distinct from every series colour). */
export const PREFILL_COLOR = '#c9a227';
export const DECODE_COLOR = '#4b3f72';

export type ReportMetric = 'ttft' | 'tpot' | 'itl';
export const REPORT_METRICS: readonly ReportMetric[] = ['ttft', 'tpot', 'itl'];

export interface ReportPoint extends PointKey {
  /** The run behind the point (null for sheet points). */
  run: RunResult | null;
  p50: Record<ReportMetric, number | null>;
  p99: Record<ReportMetric, number | null>;
  requestThroughput: number | null;
  outputThroughput: number | null;
  /** Median prefill and decode TTFB (ms) from the proxy's Server-Timing, when the run has them. */
  split: { prefill: number; decode: number } | null;
}

export interface ReportSet {
  set: string;
  source: 'results' | 'sheet';
  color: string;
  points: ReportPoint[];
}

export interface ReportData {
  resultsDir: string;
  sheetPath: string | null;
  sets: ReportSet[];
  /** Every run shown in the per-run table (all runs of the reported sets, not only the latest per point). */
  runs: RunResult[];
  /** x categories: steady rates ascending as text, then "flood" when any set has a flood point. */
  categories: string[];
}

export function categoryOf(p: PointKey): string {
  return p.kind === 'flood' ? 'flood' : String(p.rate);
}

function pointFromRun(point: PointKey, run: RunResult): ReportPoint {
  const m = (stat: 'median' | 'p99') =>
    Object.fromEntries(REPORT_METRICS.map((k) => [k, numberField(run, `${stat}_${k}_ms`)])) as Record<ReportMetric, number | null>;
  const s = run.pd_stage_split;
  return {
    ...point,
    run,
    p50: m('median'),
    p99: m('p99'),
    requestThroughput: numberField(run, 'request_throughput'),
    outputThroughput: numberField(run, 'output_throughput'),
    split: s && s.samples > 0 ? { prefill: s.prefill_ms.median, decode: s.decode_ttfb_ms.median } : null,
  };
}

/** Collect the report's data; `sets` filters and orders (each must exist in the results or the sheet). */
export async function collectReportData(opts: { resultsDir: string; sets?: string[]; sheetPath?: string }): Promise<ReportData> {
  const allRuns = await loadRunResults(opts.resultsDir);
  const sheet = opts.sheetPath === undefined ? null : await readSheet(opts.sheetPath);
  const resultSets = [...new Set(allRuns.map((r) => r.pd_set))];
  const sheetSets = (sheet?.sets ?? []).filter((s) => s.points.some((p) => p.ttft.median !== null || p.ttft.p99 !== null)).map((s) => s.set);
  let names: string[];
  if (opts.sets && opts.sets.length > 0) {
    const unknown = opts.sets.filter((s) => !resultSets.includes(s) && !sheetSets.includes(s));
    if (unknown.length > 0)
      throw new UsageError(`no results${sheet ? ' or sheet values' : ''} for set${unknown.length > 1 ? 's' : ''} ${unknown.map((u) => `"${u}"`).join(', ')}`, {
        hint: `Available: ${[...new Set([...resultSets, ...sheetSets])].join(', ') || `nothing yet in ${opts.resultsDir}`}.`,
      });
    names = [...new Set(opts.sets)];
  } else names = [...new Set([...resultSets, ...sheetSets])];
  if (names.length === 0)
    throw new UsageError(`nothing to report: ${opts.resultsDir} has no pd bench results`, {
      hint: 'Run `pd bench` first, or pass a sprint sheet CSV to report on.',
    });
  const sets: ReportSet[] = names.map((set, i) => {
    const color = SERIES_COLORS[i % SERIES_COLORS.length]!;
    if (resultSets.includes(set)) {
      const points = [...latestPerPoint(allRuns.filter((r) => r.pd_set === set)).values()].map(({ point, run }) => pointFromRun(point, run));
      return { set, source: 'results', color, points };
    }
    const block = sheet!.sets.find((s) => s.set === set)!;
    const points = block.points
      .filter((p) => REPORT_METRICS.some((m) => p[m].median !== null || p[m].p99 !== null))
      .map((p): ReportPoint => ({
        kind: p.kind,
        rate: p.rate,
        run: null,
        p50: { ttft: p.ttft.median, tpot: p.tpot.median, itl: p.itl.median },
        p99: { ttft: p.ttft.p99, tpot: p.tpot.p99, itl: p.itl.p99 },
        requestThroughput: null,
        outputThroughput: null,
        split: null,
      }));
    return { set, source: 'sheet', color, points };
  });
  const keys = new Map<string, PointKey>();
  for (const s of sets) for (const p of s.points) keys.set(pointId(p), { kind: p.kind, rate: p.rate });
  const categories = [...keys.values()].sort(comparePoints).map(categoryOf);
  const runs = allRuns.filter((r) => names.includes(r.pd_set));
  return { resultsDir: opts.resultsDir, sheetPath: opts.sheetPath ?? null, sets, runs, categories };
}
