/**
 * `pd bench compare`: sets side by side, per rate (steady) and flood. For every metric cell — TTFT/TPOT/ITL
 * mean, median and p99 (lower wins) and, from run results, request and output throughput (higher wins) — the
 * value of each set, its delta against the first set (the baseline) in absolute terms and in %, whether that
 * delta is significant (significance.ts: a bootstrap interval on per-request samples, else a stated threshold),
 * and the winner: the best set, when it is significantly better than every other; otherwise the cell has "no
 * significant difference". Input is either archived run results (`compareSets`) or a sprint sheet CSV
 * (`compareSheets`, e.g. the reference real-GPU sheet). The `Comparison` object is what `--json` prints.
 */
import { Chalk } from 'chalk';
import { UsageError } from '../util/errors.js';
import { loadRunResults, type RunResult } from './result.js';
import { judge, LATENCY_THRESHOLD, samplesOf, THROUGHPUT_THRESHOLD, type SampleMetric, type SampleStat, type Significance } from './significance.js';
import { readSheet } from './sheet.js';
import {
  type PointKey,
  SHEET_METRICS,
  SHEET_STATS,
  comparePoints,
  latestPerPoint,
  numberField,
  pointId,
  pointLabel,
  resultKey,
} from './sheet-runs.js';

export interface CompareMetric {
  /** Result field the value comes from (vLLM name), e.g. "p99_ttft_ms", "output_throughput". */
  key: string;
  /** Human label, e.g. "TTFT p99". */
  label: string;
  unit: 'ms' | 'req/s' | 'tok/s';
  better: 'lower' | 'higher';
  /** Group used by the summary: TTFT, TPOT, ITL, throughput. */
  group: string;
}

export interface CompareDelta {
  /** value − baseline value (in the metric's unit). */
  abs: number;
  /** abs / baseline × 100; null when the baseline is 0. */
  pct: number | null;
  /** Whether the difference is real (significance.ts): a bootstrap interval excluding 0, or a stated threshold. */
  significant: boolean;
  method: Significance['method'];
  /** 95% bootstrap interval of the difference (bootstrap only). */
  ci: [number, number] | null;
}

export interface CompareCell extends CompareMetric {
  /** Value per set (null = that set has no value here). */
  values: Record<string, number | null>;
  /** Per non-baseline set: its delta against the baseline (null when either value is missing). */
  deltas: Record<string, CompareDelta | null>;
  /**
   * The set with the best value, when it is significantly better than every other set with a value; null when
   * fewer than two sets have a value or no difference is significant.
   */
  winner: string | null;
  /** Two or more values and no significant winner: "no significant difference". */
  tie: boolean;
}

export interface ComparePoint extends PointKey {
  /** "2 req/s" or "flood". */
  label: string;
  cells: CompareCell[];
}

export interface CompareSummary {
  /** Cells where at least two sets have a value. */
  compared: number;
  /** Cells with no significant difference (no winner). */
  ties: number;
  /** Wins per set over all cells. */
  wins: Record<string, number>;
  /** Wins per group (TTFT, TPOT, ITL, throughput) per set, and how many cells the group has. */
  groups: { group: string; cells: number; wins: Record<string, number> }[];
  /** The set with the most wins (null on a tie). */
  leader: string | null;
}

export interface Comparison {
  source: 'results' | 'sheet';
  /** The results dir or the sheet path. */
  from: string;
  sets: string[];
  /** The first set: deltas are relative to it. */
  baseline: string;
  points: ComparePoint[];
  summary: CompareSummary;
}

const LATENCY_COMPARE_METRICS: CompareMetric[] = SHEET_METRICS.flatMap((m) =>
  SHEET_STATS.map((s) => ({
    key: resultKey(m.metric, s.stat),
    label: `${m.label} ${s.stat}`,
    unit: 'ms' as const,
    better: 'lower' as const,
    group: m.label,
  })),
);

const THROUGHPUT_COMPARE_METRICS: CompareMetric[] = [
  { key: 'request_throughput', label: 'Request throughput', unit: 'req/s', better: 'higher', group: 'throughput' },
  { key: 'output_throughput', label: 'Output throughput', unit: 'tok/s', better: 'higher', group: 'throughput' },
];

/** Every metric a comparison of run results covers (sheets cover the latency ones only). */
export const COMPARE_METRICS: readonly CompareMetric[] = [...LATENCY_COMPARE_METRICS, ...THROUGHPUT_COMPARE_METRICS];

/** One set's values per point: pointId → { point, values by metric key, the run behind them (per-request samples) }. */
type SetSeries = Map<string, { point: PointKey; values: Record<string, number | null>; run?: RunResult }>;

function checkSets(sets: string[]): void {
  if (sets.length < 2)
    throw new UsageError('compare needs at least two sets', { hint: 'e.g. pd bench compare pd-disaggregation tensor-parallelism' });
  const dup = sets.find((s, i) => sets.indexOf(s) !== i);
  if (dup !== undefined) throw new UsageError(`set "${dup}" is given twice`);
}

/** Compare archived run results (`<resultsDir>/<set>/*.json`) of two or more sets; the first is the baseline. */
export async function compareSets(opts: { resultsDir: string; sets: string[] }): Promise<Comparison> {
  checkSets(opts.sets);
  const series = new Map<string, SetSeries>();
  const missing: string[] = [];
  for (const set of opts.sets) {
    const runs = await loadRunResults(opts.resultsDir, set);
    if (runs.length === 0) {
      missing.push(set);
      continue;
    }
    const s: SetSeries = new Map();
    for (const [id, { point, run }] of latestPerPoint(runs)) {
      const values: Record<string, number | null> = {};
      for (const m of COMPARE_METRICS) values[m.key] = numberField(run, m.key);
      s.set(id, { point, values, run });
    }
    series.set(set, s);
  }
  if (missing.length > 0) {
    const available = [...new Set((await loadRunResults(opts.resultsDir)).map((r) => r.pd_set))];
    throw new UsageError(`no results for set${missing.length > 1 ? 's' : ''} ${missing.map((m) => `"${m}"`).join(', ')} in ${opts.resultsDir}`, {
      hint: available.length > 0 ? `Sets with results: ${available.join(', ')}.` : `${opts.resultsDir} holds no pd bench results yet; run \`pd bench --set NAME\` first.`,
    });
  }
  return buildComparison('results', opts.resultsDir, opts.sets, series, COMPARE_METRICS);
}

/** Compare sets of a sprint sheet CSV (e.g. the reference real-GPU sheet); latency metrics only. */
export async function compareSheets(sheetPath: string, sets: string[]): Promise<Comparison> {
  checkSets(sets);
  const sheet = await readSheet(sheetPath);
  const series = new Map<string, SetSeries>();
  for (const set of sets) {
    const block = sheet.sets.find((s) => s.set === set || s.title === set);
    if (block === undefined)
      throw new UsageError(`set "${set}" is not in the sheet ${sheetPath}`, { hint: `Its sets: ${sheet.sets.map((s) => s.set).join(', ')}.` });
    const s: SetSeries = new Map();
    for (const p of block.points) {
      const values: Record<string, number | null> = {};
      for (const m of SHEET_METRICS) for (const st of SHEET_STATS) values[resultKey(m.metric, st.stat)] = p[m.metric][st.stat];
      if (Object.values(values).some((v) => v !== null)) s.set(pointId(p), { point: { kind: p.kind, rate: p.rate }, values });
    }
    if (s.size === 0)
      throw new UsageError(`set "${set}" has no values in the sheet ${sheetPath}`, { hint: 'Pick sets whose columns are filled in.' });
    series.set(set, s);
  }
  return buildComparison('sheet', sheetPath, sets, series, LATENCY_COMPARE_METRICS);
}

function buildComparison(
  source: Comparison['source'],
  from: string,
  sets: string[],
  series: Map<string, SetSeries>,
  metrics: readonly CompareMetric[],
): Comparison {
  const baseline = sets[0]!;
  const allPoints = new Map<string, PointKey>();
  for (const s of series.values()) for (const [id, { point }] of s) allPoints.set(id, point);
  const points = [...allPoints.entries()]
    .sort((a, b) => comparePoints(a[1], b[1]))
    .map(([id, point]): ComparePoint => ({
      ...point,
      label: pointLabel(point),
      cells: metrics.map((m) => {
        const values: Record<string, number | null> = {};
        const runs: Record<string, RunResult | undefined> = {};
        for (const set of sets) {
          values[set] = series.get(set)?.get(id)?.values[m.key] ?? null;
          runs[set] = series.get(set)?.get(id)?.run;
        }
        const sig = significanceOf(m, values, runs);
        return { ...m, values, deltas: deltasOf(values, sets, sig), ...winnerOf(values, m.better, sig) };
      }),
    }));
  return { source, from, sets: [...sets], baseline, points, summary: summarize(points, sets) };
}

/** The sample metric and statistic behind a latency cell key (mean_ttft_ms → ttft/mean), else null. */
function sampleKey(key: string): { metric: SampleMetric; stat: SampleStat } | null {
  const m = /^(mean|median|p99)_(ttft|tpot|itl)_ms$/.exec(key);
  return m ? { stat: m[1] as SampleStat, metric: m[2] as SampleMetric } : null;
}

/** A memoised judge of "is set b's value different from set a's" for one cell. */
function significanceOf(m: CompareMetric, values: Record<string, number | null>, runs: Record<string, RunResult | undefined>) {
  const memo = new Map<string, Significance>();
  const samples = new Map<string, Float64Array | null>();
  const sk = sampleKey(m.key);
  const samplesFor = (set: string): Float64Array | null => {
    if (!sk) return null;
    if (!samples.has(set)) samples.set(set, runs[set] ? samplesOf(runs[set], sk.metric) : null);
    return samples.get(set)!;
  };
  return (a: string, b: string): Significance => {
    const key = `${a}\n${b}`;
    let r = memo.get(key);
    if (!r) {
      r = judge(values[a]!, values[b]!, m.group === 'throughput' ? 'throughput' : 'latency', sk ? { base: samplesFor(a), other: samplesFor(b), stat: sk.stat } : null);
      memo.set(key, r);
    }
    return r;
  };
}

function deltasOf(values: Record<string, number | null>, sets: string[], sig: (a: string, b: string) => Significance): Record<string, CompareDelta | null> {
  const base = values[sets[0]!] ?? null;
  const out: Record<string, CompareDelta | null> = {};
  for (const set of sets.slice(1)) {
    const v = values[set] ?? null;
    if (base === null || v === null) {
      out[set] = null;
      continue;
    }
    const s = v === base ? { significant: false, method: 'threshold' as const, ci: null } : sig(sets[0]!, set);
    out[set] = { abs: v - base, pct: base === 0 ? null : ((v - base) / base) * 100, significant: s.significant, method: s.method, ci: s.ci };
  }
  return out;
}

function winnerOf(values: Record<string, number | null>, better: CompareMetric['better'], sig: (a: string, b: string) => Significance): { winner: string | null; tie: boolean } {
  const present = Object.entries(values).filter((e): e is [string, number] => e[1] !== null);
  if (present.length < 2) return { winner: null, tie: false };
  const best = better === 'lower' ? Math.min(...present.map((e) => e[1])) : Math.max(...present.map((e) => e[1]));
  const top = present.filter((e) => e[1] === best);
  if (top.length > 1) return { winner: null, tie: true };
  const w = top[0]![0];
  // The best set wins only when it is significantly better than every other set.
  const clear = present.every(([set]) => set === w || sig(set, w).significant);
  return clear ? { winner: w, tie: false } : { winner: null, tie: true };
}

function summarize(points: ComparePoint[], sets: string[]): CompareSummary {
  const zero = () => Object.fromEntries(sets.map((s) => [s, 0])) as Record<string, number>;
  const wins = zero();
  const groups = new Map<string, { group: string; cells: number; wins: Record<string, number> }>();
  let compared = 0;
  let ties = 0;
  for (const p of points)
    for (const c of p.cells) {
      if (c.winner === null && !c.tie) continue;
      compared++;
      const g = groups.get(c.group) ?? { group: c.group, cells: 0, wins: zero() };
      groups.set(c.group, g);
      g.cells++;
      if (c.tie) ties++;
      else {
        wins[c.winner!]!++;
        g.wins[c.winner!]!++;
      }
    }
  const most = Math.max(...Object.values(wins));
  const leaders = sets.filter((s) => wins[s] === most);
  return { compared, ties, wins, groups: [...groups.values()], leader: compared > 0 && leaders.length === 1 ? leaders[0]! : null };
}

function fmt(v: number | null): string {
  if (v === null) return '—';
  return v.toFixed(2);
}

function fmtDelta(d: CompareDelta | null): string {
  if (d === null) return '—';
  const sign = (x: number) => (x > 0 ? '+' : '');
  const pct = d.pct === null ? 'n/a' : `${sign(d.pct)}${d.pct.toFixed(1)}%`;
  return `${sign(d.abs)}${d.abs.toFixed(2)} (${pct})`;
}

/** Width in terminal columns, ignoring ANSI colour codes. */
function visible(s: string): number {
  // eslint-disable-next-line no-control-regex
  return s.replace(/\x1b\[[0-9;]*m/g, '').length;
}

function table(rows: string[][], rightAlign: (col: number) => boolean): string[] {
  const widths: number[] = [];
  for (const r of rows) r.forEach((c, i) => (widths[i] = Math.max(widths[i] ?? 0, visible(c))));
  return rows.map((r) =>
    r
      .map((c, i) => {
        const pad = ' '.repeat(widths[i]! - visible(c));
        return rightAlign(i) ? pad + c : c + pad;
      })
      .join('  ')
      .trimEnd(),
  );
}

/** The comparison as a terminal table (one block per rate, then a summary). Colours only when asked. */
export function formatComparison(c: Comparison, opts: { color?: boolean } = {}): string {
  const ch = new Chalk({ level: opts.color ? 1 : 0 });
  const others = c.sets.slice(1);
  const lines: string[] = [];
  lines.push(ch.bold(`${c.sets.join(' vs ')}`) + `  (baseline ${c.baseline}; from ${c.source === 'sheet' ? 'sheet' : 'results'} ${c.from})`);
  for (const p of c.points) {
    lines.push('', ch.bold(p.label));
    const header = ['metric', ...c.sets, ...others.map((s) => `Δ ${s}`), 'winner'];
    const rows: string[][] = [header.map((h) => ch.dim(h))];
    for (const cell of p.cells) {
      if (Object.values(cell.values).every((v) => v === null)) continue;
      const colourDelta = (set: string) => {
        const d = cell.deltas[set] ?? null;
        const text = fmtDelta(d);
        if (d === null || d.abs === 0) return text;
        if (!d.significant) return ch.dim(text);
        const better = cell.better === 'lower' ? d.abs < 0 : d.abs > 0;
        return better ? ch.green(text) : ch.red(text);
      };
      rows.push([
        `${cell.label} (${cell.unit})`,
        ...c.sets.map((s) => (cell.winner === s ? ch.green(fmt(cell.values[s] ?? null)) : fmt(cell.values[s] ?? null))),
        ...others.map(colourDelta),
        cell.tie ? ch.dim('no significant difference') : cell.winner === null ? '—' : ch.green(cell.winner),
      ]);
    }
    lines.push(...table(rows, (i) => i > 0 && i <= c.sets.length + others.length).map((l) => `  ${l}`));
  }
  const s = c.summary;
  lines.push('', ch.bold(`Summary: ${s.compared} cells compared${s.ties > 0 ? `, ${s.ties} without a significant difference` : ''}`));
  const rows = c.sets.map((set) => [
    set,
    `wins ${s.wins[set]}/${s.compared}`,
    s.groups.map((g) => `${g.group} ${g.wins[set]}/${g.cells}`).join(', '),
  ]);
  lines.push(...table(rows, () => false).map((l) => `  ${l}`));
  lines.push(s.leader === null ? '  no overall winner' : `  ${ch.green(s.leader)} wins the most cells`);
  lines.push(
    ch.dim(
      `  a difference counts when significant: a 95% bootstrap interval on per-request samples that excludes 0, ` +
        `else at least ${LATENCY_THRESHOLD * 100}% (latency) or ${THROUGHPUT_THRESHOLD * 100}% (throughput); others are dimmed`,
    ),
  );
  return lines.join('\n') + '\n';
}
