import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mean, median, percentile, std, summarize, withP99 } from '../../src/bench/stats.ts';

const close = (a: number, b: number, eps = 1e-9): void => assert.ok(Math.abs(a - b) <= eps, `${a} != ${b}`);

test('percentiles use numpy linear interpolation', () => {
  // np.percentile([1,2,3,4], 90) == 3.7 ; 50 -> 2.5 ; 99.9 -> 3.997
  close(percentile([4, 1, 3, 2], 90), 3.7);
  close(percentile([1, 2, 3, 4], 50), 2.5);
  close(percentile([1, 2, 3, 4], 99.9), 3.997);
  close(percentile([10], 99), 10);
  close(percentile([1, 2, 3, 4, 5, 6, 7, 8, 9, 10], 99), 9.91);
  close(percentile([5, 1], 0), 1);
  close(percentile([5, 1], 100), 5);
});

test('std is the population std (ddof=0), median of even counts averages', () => {
  close(std([2, 4, 4, 4, 5, 5, 7, 9]), 2);
  close(mean([2, 4, 4, 4, 5, 5, 7, 9]), 5);
  close(median([3, 1, 4, 2]), 2.5);
});

test('empty lists give 0 like np.mean(values or 0)', () => {
  const s = summarize([], [50, 99]);
  assert.deepEqual(s, { mean: 0, median: 0, std: 0, percentiles: [[50, 0], [99, 0]] });
});

test('P99 is always computed', () => {
  assert.deepEqual(withP99([50, 90]), [50, 90, 99]);
  assert.deepEqual(withP99([99.9, 50, 99]), [50, 99, 99.9]);
});
