import { test, describe, beforeEach, afterEach } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { planEvictions } from '../../src/cache/evict-plan.js';
import { startJanitor } from '../../src/cache/janitor.js';
import type { CacheEntry } from '../../src/cache/scan.js';
import type { KvCacheBudget } from '../../src/config/schema.js';
import { ConfigError } from '../../src/util/errors.js';
import { tempDir } from '../helpers/tmp.js';
import { writeEntry } from './tree.js';

const NOW = 1_700_000_000_000;
const budget = (b: Partial<KvCacheBudget>): KvCacheBudget => ({ graceSeconds: 30, intervalSeconds: 10, ...b });
const entry = (name: string, bytes: number, usedSecondsAgo: number, writtenSecondsAgo = usedSecondsAgo): CacheEntry => ({
  name,
  path: `/kv/${name}`,
  kind: 'dir',
  bytes,
  files: 1,
  mtimeMs: NOW - writtenSecondsAgo * 1000,
  lastUsedMs: NOW - usedSecondsAgo * 1000,
});

describe('planEvictions', () => {
  test('evicts least-recently-used first until the total fits maxBytes', () => {
    const entries = [entry('new', 100, 60), entry('oldest', 100, 500), entry('old', 100, 400), entry('mid', 100, 200)];
    const plan = planEvictions(entries, budget({ maxBytes: 250 }), NOW);
    assert.deepEqual(plan.evict.map((e) => [e.name, e.reason]), [
      ['oldest', 'size'],
      ['old', 'size'],
    ]);
    assert.equal(plan.totalBytes, 400);
    assert.equal(plan.bytesAfter, 200);
    assert.equal(plan.overBudget, false);
  });

  test('a recent read counts as use even for an entry written long ago', () => {
    const entries = [entry('written-old-read-now', 100, 40, 9000), entry('written-mid', 100, 300)];
    const plan = planEvictions(entries, budget({ maxBytes: 150 }), NOW);
    assert.deepEqual(plan.evict.map((e) => e.name), ['written-mid']);
  });

  test('never evicts inside the grace period, and says the budget is still exceeded', () => {
    const entries = [entry('a', 100, 5), entry('b', 100, 29), entry('c', 100, 31)];
    const plan = planEvictions(entries, budget({ maxBytes: 50, graceSeconds: 30 }), NOW);
    assert.deepEqual(plan.evict.map((e) => e.name), ['c']);
    assert.equal(plan.protectedEntries, 2);
    assert.equal(plan.overBudget, true);
    assert.equal(plan.bytesAfter, 200);
  });

  test('maxAgeSeconds evicts every entry unused for longer, then size applies to the rest', () => {
    const entries = [entry('ancient', 10, 7200), entry('stale', 10, 3700), entry('ok1', 100, 100), entry('ok2', 100, 50)];
    const plan = planEvictions(entries, budget({ maxAgeSeconds: 3600, maxBytes: 150 }), NOW);
    assert.deepEqual(plan.evict.map((e) => [e.name, e.reason]), [
      ['ancient', 'age'],
      ['stale', 'age'],
      ['ok1', 'size'],
    ]);
  });

  test('grace wins over a shorter maxAge; no budget means nothing to do', () => {
    const entries = [entry('young', 10, 20)];
    assert.equal(planEvictions(entries, budget({ maxAgeSeconds: 10, graceSeconds: 30 }), NOW).evict.length, 0);
    assert.equal(planEvictions([entry('x', 1e9, 1e6)], budget({}), NOW).evict.length, 0);
  });
});

describe('startJanitor on a real tree', () => {
  let dir: string;
  let kv: string;
  let cleanup: () => Promise<void>;
  beforeEach(async () => {
    ({ dir, cleanup } = await tempDir('pd-cache-janitor-'));
    kv = join(dir, 'kv');
    await mkdir(kv);
  });
  afterEach(() => cleanup());

  test('runOnce evicts LRU entries over maxBytes, logs and reports each, keeps entries in grace', async () => {
    const now = Date.now();
    const oldest = await writeEntry(kv, { layers: 2, layerBytes: 1000, ageSeconds: 900 }, now);
    const readRecently = await writeEntry(kv, { layers: 2, layerBytes: 1000, ageSeconds: 1000, readSecondsAgo: 120 }, now);
    const older = await writeEntry(kv, { layers: 2, layerBytes: 1000, ageSeconds: 600 }, now);
    const inGrace = await writeEntry(kv, { layers: 2, layerBytes: 1000, ageSeconds: 1 }, now);
    const lines: string[] = [];
    const evicted: { name: string; bytes: number; reason: string }[] = [];
    const j = startJanitor({
      path: kv,
      budget: { maxBytes: 4500, graceSeconds: 30, intervalSeconds: 3600 },
      log: (l) => lines.push(l),
      onEvict: (e) => evicted.push(e),
      now: () => now,
    });
    try {
      const r = await j.runOnce();
      assert.deepEqual(r.evicted.map((e) => e.name), [oldest.name, older.name]);
      assert.deepEqual(evicted, [
        { name: oldest.name, bytes: 2000, reason: 'size' },
        { name: older.name, bytes: 2000, reason: 'size' },
      ]);
      assert.equal(r.totalBytes, 8000);
      assert.equal(r.bytesAfter, 4000);
      assert.equal(r.overBudget, false);
      assert.deepEqual((await readdir(kv)).sort(), [readRecently.name, inGrace.name].sort());
      assert.equal(lines.filter((l) => l.includes('evicted')).length, 2);
      assert.match(lines[0]!, new RegExp(`evicted ${oldest.name} .*reason=size`));
    } finally {
      await j.stop();
    }
  });

  test('maxAgeSeconds evicts stale entries; a grace period protects even an over-budget folder', async () => {
    const now = Date.now();
    const stale = await writeEntry(kv, { ageSeconds: 7200 }, now);
    const fresh = await writeEntry(kv, { ageSeconds: 2 }, now);
    const j = startJanitor({ path: kv, budget: { maxAgeSeconds: 3600, maxBytes: 1, graceSeconds: 60, intervalSeconds: 3600 }, now: () => now });
    try {
      const r = await j.runOnce();
      assert.deepEqual(r.evicted.map((e) => [e.name, e.reason]), [[stale.name, 'age']]);
      assert.equal(r.protectedEntries, 1);
      assert.equal(r.overBudget, true);
      assert.deepEqual(await readdir(kv), [fresh.name]);
    } finally {
      await j.stop();
    }
  });

  test('the timer runs by itself and stop() ends it', async () => {
    const now = Date.now();
    await writeEntry(kv, { ageSeconds: 7200 }, now);
    let resolveEvict!: () => void;
    const evictedOnce = new Promise<void>((r) => (resolveEvict = r));
    // The janitor's timer is unref'd (it must not keep the stack alive): hold the loop open meanwhile.
    const keepAlive = setInterval(() => {}, 1000);
    const j = startJanitor({ path: kv, budget: { maxAgeSeconds: 60, graceSeconds: 0, intervalSeconds: 0.05 }, onEvict: () => resolveEvict() });
    try {
      await evictedOnce;
    } finally {
      await j.stop();
      clearInterval(keepAlive);
    }
    assert.deepEqual(await readdir(kv), []);
  });

  test('a missing folder is fine, and dangerous paths are refused up front', async () => {
    const j = startJanitor({ path: join(dir, 'missing'), budget: { maxBytes: 1, graceSeconds: 0, intervalSeconds: 3600 } });
    const r = await j.runOnce();
    await j.stop();
    assert.equal(r.entries, 0);
    assert.throws(() => startJanitor({ path: '/mnt', budget: { maxBytes: 1, graceSeconds: 0, intervalSeconds: 1 } }), ConfigError);
  });
});
