/** Axis scales and tick choices for the report's charts (log y when values span orders of magnitude). */

export interface Scale {
  kind: 'linear' | 'log';
  /** Domain value → pixel (y grows downward, so range is [bottom, top]). */
  map(v: number): number;
  ticks: number[];
}

/** Whether a y axis should be logarithmic: every value positive and max/min above `ratio` (default 20x). */
export function wantsLog(values: number[], ratio = 20): boolean {
  const pos = values.filter((v) => Number.isFinite(v));
  if (pos.length < 2 || pos.some((v) => v <= 0)) return false;
  return Math.max(...pos) / Math.min(...pos) > ratio;
}

/** 1-2-5 "nice" step for about `count` intervals over `span`. */
function niceStep(span: number, count: number): number {
  const raw = span / Math.max(1, count);
  const mag = 10 ** Math.floor(Math.log10(raw));
  const norm = raw / mag;
  return (norm <= 1 ? 1 : norm <= 2 ? 2 : norm <= 5 ? 5 : 10) * mag;
}

export function linearScale(values: number[], px: [number, number], opts: { zero?: boolean } = {}): Scale {
  const finite = values.filter((v) => Number.isFinite(v));
  let lo = Math.min(...finite, opts.zero === false ? Infinity : 0);
  let hi = Math.max(...finite, 0);
  if (!Number.isFinite(lo)) lo = 0;
  if (hi <= lo) hi = lo + 1;
  const step = niceStep(hi - lo, 5);
  lo = Math.floor(lo / step) * step;
  hi = Math.ceil(hi / step) * step;
  const ticks: number[] = [];
  for (let t = lo; t <= hi + step / 2; t += step) ticks.push(Number(t.toPrecision(12)));
  const [b, t] = px;
  return { kind: 'linear', ticks, map: (v) => b + ((v - lo) / (hi - lo)) * (t - b) };
}

export function logScale(values: number[], px: [number, number]): Scale {
  const pos = values.filter((v) => Number.isFinite(v) && v > 0);
  const lo = 10 ** Math.floor(Math.log10(Math.min(...pos)));
  const hi = 10 ** Math.ceil(Math.log10(Math.max(...pos)));
  const decades = Math.round(Math.log10(hi / lo));
  const mults = decades <= 2 ? [1, 2, 5] : [1];
  const ticks: number[] = [];
  for (let d = lo; d <= hi * 1.0001; d *= 10) for (const m of mults) if (d * m <= hi * 1.0001) ticks.push(Number((d * m).toPrecision(12)));
  const [b, t] = px;
  const l0 = Math.log10(lo);
  const l1 = Math.log10(hi);
  return { kind: 'log', ticks, map: (v) => b + ((Math.log10(Math.max(v, lo)) - l0) / (l1 - l0)) * (t - b) };
}

/** Compact tick label: 0.5, 43, 1.2k, 64k, 1.5M. */
export function tickLabel(v: number): string {
  const a = Math.abs(v);
  const trim = (x: number) => String(Number(x.toPrecision(3)));
  if (a >= 1e6) return `${trim(v / 1e6)}M`;
  if (a >= 1e3) return `${trim(v / 1e3)}k`;
  return trim(v);
}
