/**
 * How run results map onto the sheet's, the comparison's and the report's points: one point per steady rate
 * plus one flood point per set, and the metric/stat cells the reference sheet has.
 */
import type { RunResult } from './result.js';

export type PointKind = 'steady' | 'flood';

export interface PointKey {
  kind: PointKind;
  /** Offered rate in req/s for steady points; null for flood. */
  rate: number | null;
}

/** The sheet's metrics (rows TTFT, TPOT, ITL) and stats (Mean, Median, P99), in sheet order. */
export const SHEET_METRICS = [
  { metric: 'ttft', label: 'TTFT' },
  { metric: 'tpot', label: 'TPOT' },
  { metric: 'itl', label: 'ITL' },
] as const;
export type SheetMetric = (typeof SHEET_METRICS)[number]['metric'];

export const SHEET_STATS = [
  { stat: 'mean', label: 'Mean' },
  { stat: 'median', label: 'Median' },
  { stat: 'p99', label: 'P99' },
] as const;
export type SheetStat = (typeof SHEET_STATS)[number]['stat'];

/** The vLLM result key of a sheet cell, e.g. mean_ttft_ms, median_itl_ms, p99_tpot_ms. */
export function resultKey(metric: SheetMetric, stat: SheetStat): string {
  return `${stat}_${metric}_ms`;
}

/** A finite number stored under `key`, or null (always null for a failed run: its zeros are not measurements). */
export function numberField(r: RunResult, key: string): number | null {
  if (r.pd_failed === true) return null;
  const v = (r as Record<string, unknown>)[key];
  return typeof v === 'number' && Number.isFinite(v) ? v : null;
}

/** Offered rate of a run (req/s), null for inf. */
export function offeredRate(r: RunResult): number | null {
  if (typeof r.pd_offered_rate === 'number' && Number.isFinite(r.pd_offered_rate)) return r.pd_offered_rate;
  if (typeof r.request_rate === 'number' && Number.isFinite(r.request_rate)) return r.request_rate;
  return null;
}

/**
 * Which point a run fills: flood runs (and single runs at rate inf) fill the flood point; steady runs (and
 * single runs at a finite rate) fill the steady point at their offered rate.
 */
export function pointOf(r: RunResult): PointKey {
  const rate = offeredRate(r);
  if (r.pd_run_kind === 'flood' || rate === null) return { kind: 'flood', rate: null };
  return { kind: 'steady', rate };
}

export function pointId(p: PointKey): string {
  return p.kind === 'flood' ? 'flood' : `steady:${p.rate}`;
}

export function pointLabel(p: PointKey): string {
  return p.kind === 'flood' ? 'flood' : `${formatRate(p.rate!)} req/s`;
}

/** Steady points by rate, then flood. */
export function comparePoints(a: PointKey, b: PointKey): number {
  if (a.kind !== b.kind) return a.kind === 'steady' ? -1 : 1;
  return (a.rate ?? 0) - (b.rate ?? 0);
}

/**
 * The run that represents each point: sprint runs (steady/flood) win over `pd bench run` single runs, and
 * among equals the one that started last.
 */
export function latestPerPoint(results: readonly RunResult[]): Map<string, { point: PointKey; run: RunResult }> {
  const out = new Map<string, { point: PointKey; run: RunResult }>();
  for (const run of results) {
    const point = pointOf(run);
    const id = pointId(point);
    const prev = out.get(id);
    if (prev === undefined || outranks(run, prev.run)) out.set(id, { point, run });
  }
  return new Map([...out.entries()].sort((a, b) => comparePoints(a[1].point, b[1].point)));
}

function outranks(a: RunResult, b: RunResult): boolean {
  const sa = a.pd_run_kind === 'single' ? 0 : 1;
  const sb = b.pd_run_kind === 'single' ? 0 : 1;
  if (sa !== sb) return sa > sb;
  return (a.pd_started_at ?? a.date ?? '') >= (b.pd_started_at ?? b.date ?? '');
}

/** A rate as the template writes it: 2, 4, 0.5. */
export function formatRate(rate: number): string {
  return String(rate);
}

/**
 * A sheet value the way the reference sheet was produced (Python `str(round(x, 2))`): 44.08, 24101.9, 10.0.
 * Rounds half to even on exact binary ties, as Python does.
 */
export function formatSheetNumber(x: number): string {
  if (!Number.isFinite(x)) return '';
  let r = Number(x.toFixed(2));
  const scaled = x * 100;
  if (Number.isInteger(x * 8) && !Number.isInteger(x * 4) && Math.abs(scaled) < 2 ** 52) {
    const lo = Math.floor(scaled);
    r = (lo % 2 === 0 ? lo : lo + 1) / 100;
  }
  if (Object.is(r, -0)) r = 0;
  const s = String(r);
  return Number.isInteger(r) && !s.includes('e') ? `${s}.0` : s;
}
