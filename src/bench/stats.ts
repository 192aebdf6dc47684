/**
 * Summary statistics defined exactly as `vllm bench serve` computes them with numpy:
 * mean, median, population standard deviation (np.std, ddof=0) and percentiles with numpy's default
 * 'linear' interpolation. Like vLLM (`np.mean(values or 0)`), an empty list yields 0 everywhere.
 */

export function mean(values: readonly number[]): number {
  if (values.length === 0) return 0;
  let s = 0;
  for (const v of values) s += v;
  return s / values.length;
}

/** Population standard deviation (numpy's default ddof=0). */
export function std(values: readonly number[]): number {
  if (values.length === 0) return 0;
  const m = mean(values);
  let s = 0;
  for (const v of values) s += (v - m) * (v - m);
  return Math.sqrt(s / values.length);
}

/** Percentile of already-sorted values, numpy 'linear' method: a[lo] + (h - lo) * (a[lo+1] - a[lo]), h=(n-1)p/100. */
export function percentileSorted(sorted: readonly number[], p: number): number {
  const n = sorted.length;
  if (n === 0) return 0;
  if (n === 1) return sorted[0]!;
  const h = ((n - 1) * p) / 100;
  const lo = Math.floor(h);
  if (lo >= n - 1) return sorted[n - 1]!;
  const a = sorted[lo]!;
  const b = sorted[lo + 1]!;
  return a + (h - lo) * (b - a);
}

export function sortedCopy(values: readonly number[]): number[] {
  return Float64Array.from(values).sort() as unknown as number[];
}

export function percentile(values: readonly number[], p: number): number {
  return percentileSorted(Array.from(sortedCopy(values)), p);
}

export function median(values: readonly number[]): number {
  return percentile(values, 50);
}

export interface Summary {
  mean: number;
  median: number;
  std: number;
  /** [percentile, value] in the order requested. */
  percentiles: Array<[number, number]>;
}

export function summarize(values: readonly number[], percentiles: readonly number[]): Summary {
  const sorted = Array.from(sortedCopy(values));
  return {
    mean: mean(values),
    median: percentileSorted(sorted, 50),
    std: std(values),
    percentiles: percentiles.map((p) => [p, percentileSorted(sorted, p)] as [number, number]),
  };
}

/** The configured percentiles plus 99 (the sheet needs P99), de-duplicated and sorted. */
export function withP99(percentiles: readonly number[]): number[] {
  return [...new Set([...percentiles, 99])].sort((a, b) => a - b);
}
