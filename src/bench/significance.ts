/**
 * When is a difference between two sets real? `pd bench compare` counts a difference (and a winner) only when
 * it is significant; otherwise the cell says "no significant difference".
 * - Latency statistics (mean, median, p99 of TTFT, TPOT, ITL) of runs that kept their per-request samples (the
 *   result JSON's ttfts/itls/latencies/output_lens, as `vllm bench serve --save-detailed` writes them): a
 *   percentile bootstrap of the difference (B = 500 resamples of each side, each side capped at 4,000 samples
 *   by an even stride), significant when the 95% interval excludes 0.
 * - Anything else (throughputs, which are one number per run; sheets, which hold no samples): significant when
 *   the relative difference is at least the stated threshold (2% for throughput, 5% for latency).
 */
import { seededRandom } from './arrivals.js';
import type { RunResult } from './result.js';
import { percentileSorted } from './stats.js';

export const THROUGHPUT_THRESHOLD = 0.02;
export const LATENCY_THRESHOLD = 0.05;
const RESAMPLES = 500;
const MAX_SAMPLES = 4000;

export interface Significance {
  significant: boolean;
  method: 'bootstrap' | 'threshold';
  /** 95% interval of (other − baseline), in the metric's unit (bootstrap only). */
  ci: [number, number] | null;
  /** The relative threshold used (threshold only). */
  threshold: number | null;
}

export type SampleMetric = 'ttft' | 'tpot' | 'itl';
export type SampleStat = 'mean' | 'median' | 'p99';

/** Per-request samples (ms, sorted) of a metric, or null when the run did not keep them. */
export function samplesOf(r: RunResult, metric: SampleMetric): Float64Array | null {
  if (r.pd_failed || !r.ttfts || !r.errors || r.ttfts.length === 0) return null;
  const ok = (i: number): boolean => (r.errors![i] ?? '') === '';
  const out: number[] = [];
  if (metric === 'ttft') r.ttfts.forEach((t, i) => ok(i) && out.push(t * 1000));
  else if (metric === 'itl') {
    if (!r.itls) return null;
    r.itls.forEach((g, i) => ok(i) && g.forEach((x) => out.push(x * 1000)));
  } else {
    if (!r.latencies || !r.output_lens) return null;
    r.ttfts.forEach((t, i) => {
      const n = r.output_lens![i] ?? 0;
      if (ok(i) && n > 1) out.push(((r.latencies![i]! - t) / (n - 1)) * 1000);
    });
  }
  if (out.length < 2) return null;
  let values = Float64Array.from(out);
  if (values.length > MAX_SAMPLES) {
    const step = values.length / MAX_SAMPLES;
    values = Float64Array.from({ length: MAX_SAMPLES }, (_, i) => values[Math.floor(i * step)]!);
  }
  return values.sort();
}

/** The statistic of one resample of `sorted` (drawn by counting, so no sort per resample). */
function resampleStat(sorted: Float64Array, stat: SampleStat, rand: () => number, counts: Uint32Array): number {
  const n = sorted.length;
  counts.fill(0);
  for (let i = 0; i < n; i++) counts[Math.floor(rand() * n)]!++;
  if (stat === 'mean') {
    let s = 0;
    for (let i = 0; i < n; i++) s += counts[i]! * sorted[i]!;
    return s / n;
  }
  // numpy 'linear' percentile of the resample: ranks lo and lo+1 of its sorted order.
  const h = ((n - 1) * (stat === 'median' ? 50 : 99)) / 100;
  const lo = Math.floor(h);
  let seen = 0;
  let a = NaN;
  for (let i = 0; i < n; i++) {
    seen += counts[i]!;
    if (Number.isNaN(a) && seen > lo) {
      a = sorted[i]!;
      if (lo + 1 >= n) return a;
    }
    if (!Number.isNaN(a) && seen > lo + 1) return a + (h - lo) * (sorted[i]! - a);
  }
  return a;
}

/** 95% bootstrap interval of stat(b) − stat(a). */
export function bootstrapInterval(a: Float64Array, b: Float64Array, stat: SampleStat, seed = 1): [number, number] {
  const rand = seededRandom(seed);
  const ca = new Uint32Array(a.length);
  const cb = new Uint32Array(b.length);
  const diffs = new Float64Array(RESAMPLES);
  for (let k = 0; k < RESAMPLES; k++) diffs[k] = resampleStat(b, stat, rand, cb) - resampleStat(a, stat, rand, ca);
  diffs.sort();
  const d = Array.from(diffs);
  return [percentileSorted(d, 2.5), percentileSorted(d, 97.5)];
}

/** Significance of `other` against `base` for a cell; samples when both sides have them, else the threshold. */
export function judge(
  base: number,
  other: number,
  kind: 'latency' | 'throughput',
  samples?: { base: Float64Array | null; other: Float64Array | null; stat: SampleStat } | null,
): Significance {
  if (samples?.base && samples.other) {
    const ci = bootstrapInterval(samples.base, samples.other, samples.stat);
    return { significant: ci[0] > 0 || ci[1] < 0, method: 'bootstrap', ci, threshold: null };
  }
  const threshold = kind === 'throughput' ? THROUGHPUT_THRESHOLD : LATENCY_THRESHOLD;
  const scale = Math.max(Math.abs(base), Math.abs(other));
  const significant = scale > 0 && Math.abs(other - base) / scale >= threshold;
  return { significant, method: 'threshold', ci: null, threshold };
}
