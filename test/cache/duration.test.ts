import { test } from 'node:test';
import assert from 'node:assert/strict';
import { parseDuration } from '../../src/util/duration.js';
import { UsageError } from '../../src/util/errors.js';
import { formatBytes, formatElapsed } from '../../src/util/format.js';

test('parseDuration reads s, m, h, d, ms and combinations', () => {
  assert.equal(parseDuration('90s'), 90_000);
  assert.equal(parseDuration('30m'), 1_800_000);
  assert.equal(parseDuration('2h'), 7_200_000);
  assert.equal(parseDuration('7d'), 604_800_000);
  assert.equal(parseDuration('500ms'), 500);
  assert.equal(parseDuration('1h30m'), 5_400_000);
  assert.equal(parseDuration('1.5h'), 5_400_000);
  assert.equal(parseDuration(' 2H '), 7_200_000);
});

test('parseDuration refuses bare numbers, unknown units and junk with a hint', () => {
  for (const bad of ['90', '5x', '', 'h', '-1h', '1 h', 'abc', '2h junk']) {
    assert.throws(
      () => parseDuration(bad, '--older-than'),
      (e: unknown) => e instanceof UsageError && e.message.includes('--older-than') && /90s, 30m, 2h, 7d/.test(e.hint ?? ''),
      bad,
    );
  }
});

test('formatBytes and formatElapsed give human units', () => {
  assert.equal(formatBytes(0), '0 B');
  assert.equal(formatBytes(1023), '1023 B');
  assert.equal(formatBytes(1536), '1.50 KiB');
  assert.equal(formatBytes(5 * 1024 ** 3), '5.00 GiB');
  assert.equal(formatElapsed(15), '15 ms');
  assert.equal(formatElapsed(1234), '1.23 s');
  assert.equal(formatElapsed(65_000), '1m05s');
});
