import { test } from 'node:test';
import assert from 'node:assert/strict';
import { arrivalOffsetsMs } from '../../src/bench/arrivals.ts';
import { mean, std } from '../../src/bench/stats.ts';

const gaps = (xs: number[]): number[] => xs.map((x, i) => x - (i === 0 ? 0 : xs[i - 1]!));

test('Poisson arrivals: last arrival at n/rate, exponential gaps (CV ≈ 1), reproducible by seed', () => {
  const n = 20000;
  const xs = arrivalOffsetsMs({ count: n, rate: 100, burstiness: 1, seed: 3 });
  assert.equal(xs.length, n);
  assert.ok(Math.abs(xs[n - 1]! - (n / 100) * 1000) < 1e-6, 'rescaled so the schedule spans exactly n/rate');
  for (let i = 1; i < n; i++) assert.ok(xs[i]! >= xs[i - 1]!);
  const g = gaps(xs);
  const cv = std(g) / mean(g);
  assert.ok(Math.abs(mean(g) - 10) < 0.01, `mean gap ${mean(g)}`);
  assert.ok(Math.abs(cv - 1) < 0.05, `CV ${cv}`);
  // Exponential: P(gap > mean) = e^-1
  const above = g.filter((x) => x > 10).length / n;
  assert.ok(Math.abs(above - Math.exp(-1)) < 0.02, `tail ${above}`);
  assert.deepEqual(arrivalOffsetsMs({ count: 50, rate: 100, seed: 3 }), arrivalOffsetsMs({ count: 50, rate: 100, seed: 3 }));
  assert.notDeepEqual(arrivalOffsetsMs({ count: 50, rate: 100, seed: 3 }), arrivalOffsetsMs({ count: 50, rate: 100, seed: 4 }));
});

test('gamma burstiness: CV = 1/sqrt(burstiness)', () => {
  for (const b of [0.25, 4]) {
    const g = gaps(arrivalOffsetsMs({ count: 20000, rate: 50, burstiness: b, seed: 1 }));
    const cv = std(g) / mean(g);
    assert.ok(Math.abs(cv - 1 / Math.sqrt(b)) < 0.08 / Math.sqrt(b), `b=${b} CV ${cv}`);
  }
});

test('rate inf sends everything at t=0; burstiness inf gives constant gaps', () => {
  assert.deepEqual(arrivalOffsetsMs({ count: 4, rate: Infinity }), [0, 0, 0, 0]);
  const xs = arrivalOffsetsMs({ count: 4, rate: 2, burstiness: Infinity });
  assert.deepEqual(xs.map((x) => Math.round(x)), [500, 1000, 1500, 2000]);
  assert.throws(() => arrivalOffsetsMs({ count: 4, rate: 0 }), /rate must be positive/);
});
