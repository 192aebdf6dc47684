/**
 * What the HTML report draws: per series, one point per steady rate plus flood, from run results or a sheet.
 * A series is a set from one source: a set's runs from different sources (simulated vs real engines, another
 * model) and a sheet block with the same name as a results set are separate series, labelled, never one
 * silently replacing the other.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { UsageError } from '../../util/errors.js';
import { type RunResult, loadRunResults } from '../result.js';
import { readSheet } from '../sheet.js';
import { type PointKey, comparePoints, latestPerPoint, numberField, pointId } from '../sheet-runs.js';

export const SERIES_COLORS = ['#1f77b4', '#d62728', '#2ca02c', '#9467bd', '#ff7f0e', '#8c564b', '#e377c2', '#17becf'] as const;
/** One marker shape per series, so lines drawn on top of each other stay visible. */
export const MARKERS = ['circle', 'square', 'triangle', 'diamond', 'triangle-down', 'cross'] as const;
export type Marker = (typeof MARKERS)[number];
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

/** Where a series' numbers come from. */
export interface Provenance {
  engines: string;
  model: string;
  endpoint: string;
  lengths: string;
  dataset: string;
  seeds: string;
  ignoreEos: string;
  version: string;
  warmups: string;
}

/** The latest `pd bench search` of a set. */
export interface Capacity {
  max_rate: number;
  attainment: number;
  slos: Record<string, number>;
  precision_reached: number | null;
  stopped: string;
}

export interface ReportSet {
  /** Unique series id (the set name; "set (sheet)" or "set [tag]" when the name is taken). */
  id: string;
  set: string;
  /** Legend text. */
  label: string;
  source: 'results' | 'sheet';
  color: string;
  marker: Marker;
  points: ReportPoint[];
  /** Every run of this series (results only). */
  runs: RunResult[];
  provenance: Provenance | null;
  capacity: Capacity | null;
}

export interface ReportData {
  resultsDir: string;
  sheetPath: string | null;
  sets: ReportSet[];
  /** Every run shown in the per-run table (all runs of the reported sets, not only the latest per point). */
  runs: RunResult[];
  /** x categories: steady rates ascending as text, then "flood" when any set has a flood point. */
  categories: string[];
  /** Things a reader must know (sets split by source …). */
  notes: string[];
}

export function categoryOf(p: PointKey): string {
  return p.kind === 'flood' ? 'flood' : String(p.rate);
}

function pointFromRun(point: PointKey, run: RunResult): ReportPoint {
  const m = (stat: 'median' | 'p99') =>
    Object.fromEntries(REPORT_METRICS.map((k) => [k, numberField(run, `${stat}_${k}_ms`)])) as Record<ReportMetric, number | null>;
  const s = run.pd_failed ? null : run.pd_stage_split;
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

const list = (values: Iterable<string>): string => [...new Set(values)].join(', ') || '—';

export function provenanceOf(runs: RunResult[]): Provenance {
  const seeds = [...new Set(runs.map((r) => r.pd_seed).filter((s): s is number => s !== null))].sort((a, b) => a - b);
  return {
    engines: list(runs.map((r) => r.pd_engines)),
    model: list(runs.map((r) => r.model_id)),
    endpoint: list(runs.map((r) => r.pd_endpoint)),
    lengths: list(runs.map((r) => (r.pd_input_len !== null ? `${r.pd_input_len} in / ${r.pd_output_len ?? '?'} out` : `file / ${r.pd_output_len ?? 'from file'} out`))),
    dataset: list(runs.map((r) => r.pd_dataset)),
    seeds: seeds.length > 3 ? `${seeds[0]}..${seeds[seeds.length - 1]} (${seeds.length})` : seeds.join(', ') || '—',
    ignoreEos: list(runs.map((r) => (r.pd_ignore_eos === null ? 'unknown' : String(r.pd_ignore_eos)))),
    version: list(runs.map((r) => r.pd_version)),
    warmups: list(runs.map((r) => String(r.pd_num_warmups))),
  };
}

/** The latest search of `set` under resultsDir (search-<date>.json), or null. */
async function capacityOf(resultsDir: string, set: string): Promise<Capacity | null> {
  try {
    const names = (await readdir(join(resultsDir, set))).filter((n) => /^search-.*\.json$/.test(n)).sort();
    const last = names[names.length - 1];
    if (!last) return null;
    const j = JSON.parse(await readFile(join(resultsDir, set, last), 'utf8')) as Partial<Capacity>;
    return typeof j.max_rate === 'number' ? (j as Capacity) : null;
  } catch {
    return null;
  }
}

/** A set's runs grouped by source (engines + model); one group is the usual case. */
function bySource(runs: RunResult[]): Array<{ tag: string; runs: RunResult[] }> {
  const groups = new Map<string, RunResult[]>();
  for (const r of runs) {
    const tag = `${r.pd_engines}, ${r.model_id}`;
    groups.set(tag, [...(groups.get(tag) ?? []), r]);
  }
  return [...groups.entries()].map(([tag, rs]) => ({ tag, runs: rs }));
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

  type Draft = Omit<ReportSet, 'color' | 'marker'>;
  const main: Draft[] = [];
  const extra: Draft[] = [];
  const notes: string[] = [];
  for (const set of names) {
    const fromSheet = (id: string): Draft => {
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
      return { id, set, label: `${set} (sheet)`, source: 'sheet', points, runs: [], provenance: null, capacity: null };
    };
    if (resultSets.includes(set)) {
      const groups = bySource(allRuns.filter((r) => r.pd_set === set));
      if (groups.length > 1) notes.push(`Set ${set} has runs from ${groups.length} sources (${groups.map((g) => g.tag).join('; ')}): each is drawn as its own series.`);
      const capacity = await capacityOf(opts.resultsDir, set);
      groups.forEach((g, i) => {
        // Sweep runs (--max-concurrency / --lengths lists) go to the throughput/latency chart, not the rate axis.
        const points = [...latestPerPoint(g.runs.filter((r) => r.pd_sweep === null)).values()].map(({ point, run }) => pointFromRun(point, run));
        const id = i === 0 ? set : `${set} [${g.tag}]`;
        const label = groups.length > 1 ? `${set} [${g.tag}]` : set;
        (i === 0 ? main : extra).push({ id, set, label, source: 'results', points, runs: g.runs, provenance: provenanceOf(g.runs), capacity });
      });
      if (sheetSets.includes(set)) {
        extra.push(fromSheet(`${set} (sheet)`));
        notes.push(`Set ${set} is both in the results and in the sheet: the sheet's block is drawn as "${set} (sheet)".`);
      }
    } else main.push(fromSheet(set));
  }
  const sets: ReportSet[] = [...main, ...extra].map((d, i) => ({ ...d, color: SERIES_COLORS[i % SERIES_COLORS.length]!, marker: MARKERS[i % MARKERS.length]! }));
  const keys = new Map<string, PointKey>();
  for (const s of sets) for (const p of s.points) keys.set(pointId(p), { kind: p.kind, rate: p.rate });
  const categories = [...keys.values()].sort(comparePoints).map(categoryOf);
  const runs = allRuns.filter((r) => names.includes(r.pd_set));
  return { resultsDir: opts.resultsDir, sheetPath: opts.sheetPath ?? null, sets, runs, categories, notes };
}
