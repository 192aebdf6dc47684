import { test } from 'node:test';
import assert from 'node:assert/strict';
import { RestartBudget, backoffMs } from '../../src/stack/supervisor/restart.js';

test('crashes spread over time only exhaust the budget inside its window', () => {
  // Six crashes 10 s apart: a crash loop, the sixth is refused with 5 restarts per 600 s.
  const loop = new RestartBudget(5, 600_000);
  const taken = [0, 10, 20, 30, 40, 50].map((s) => loop.take(s * 1000));
  assert.deepEqual(taken, [true, true, true, true, true, false]);
  // The same six crashes 200 s apart: never more than three inside any 600 s window, so every one restarts.
  const rare = new RestartBudget(5, 600_000);
  assert.deepEqual([0, 200, 400, 600, 800, 1000, 1200].map((s) => rare.take(s * 1000)), [true, true, true, true, true, true, true]);
  assert.equal(rare.recent(1_200_000), 3);
  // A window that has passed frees the budget again.
  assert.equal(loop.take(50_000 + 600_000), true);
});

test('a zero budget never restarts; back-off doubles from the first delay up to 30 s', () => {
  assert.equal(new RestartBudget(0, 1000).take(0), false);
  assert.deepEqual([1, 2, 3, 4].map((a) => backoffMs(1000, a)), [1000, 2000, 4000, 8000]);
  assert.equal(backoffMs(1000, 20), 30_000);
});
