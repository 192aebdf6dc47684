import { test } from 'node:test';
import assert from 'node:assert/strict';
import { mkdir, readdir, writeFile } from 'node:fs/promises';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { makeStackDir, alive, groupAlive, waitFor, chat } from '../helpers/stack.js';

// SIGINT (Ctrl+C) to a foreground pd up goes through the same handler as SIGTERM; it is sent in a real terminal in
// supervision.test.ts ("foreground pd up in a real terminal survives an engine crash").
test('foreground pd up --simulate: prefixed engine output; pd bench run clears the stack\'s own KV folder and counts hits; the cache commands use that folder; SIGTERM tears everything down', async () => {
  // No shared storage path given: --simulate uses its temp folder, which bench must find through the state file.
  const s = await makeStackDir();
  const cfg = { ...s.config, kv: { connector: 'ExampleConnector' }, bench: { resultsDir: join(s.dir, 'results'), sheet: join(s.dir, 'sheet.csv') } };
  await writeFile(join(s.dir, 'pd.config.json'), JSON.stringify(cfg));
  try {
    const child = s.spawnPd(['up', '--simulate']);
    const exitedEarly = new Promise<never>((_, reject) => child.once('exit', (code) => reject(new Error(`pd up exited ${code}: ${child.stderrText()}`))));
    await Promise.race([waitFor('ready', () => /PD stack ready/.test(child.stderrText())), exitedEarly]);
    const c = await chat(s.ports.proxy);
    assert.equal(c.status, 200);
    // Engine output is shown with prefixes once the stack is up.
    await waitFor('prefixed engine line', () => /^consumer-0 \| .*POST \/v1\/chat\/completions/m.test(child.stdoutText()));

    const state = await s.state();
    assert.doesNotMatch(state.sharedStoragePath, /^\/mnt/);
    // A stale entry from an earlier run must be gone before the benchmark starts.
    await mkdir(join(state.sharedStoragePath, 'stale-entry'), { recursive: true });
    const r = await s.pd(['bench', 'run', '--rate', '20', '--num-prompts', '6', '--input-len', '40', '--output-len', '4', '--json']);
    assert.equal(r.code, 0, r.stderr);
    const result = JSON.parse(r.stdout);
    assert.equal(result.completed, 6);
    const entries = await readdir(state.sharedStoragePath);
    assert.ok(!entries.includes('stale-entry'), 'the cache was cleared before the run');
    assert.ok(entries.length >= 1 && entries.length <= 6, `one folder per distinct prompt, got ${entries.length}`);
    assert.ok(result.pd_kv_cache && result.pd_kv_cache.hits >= 1, JSON.stringify(result.pd_kv_cache));
    // Counted by vLLM's own counters on the stack's consumer engines, in tokens (every connector feeds them).
    assert.equal(result.pd_kv_cache.unit, 'tokens');
    assert.match(result.pd_kv_cache.source, /^metrics:consumers of /);
    assert.ok(result.pd_stage_split, 'the proxy Server-Timing split is reported');

    // The cache commands look in the same folder as the running stack, not at the configured /mnt/pd_kv.
    const stats = await s.pd(['cache', 'stats', '--json']);
    assert.equal(stats.code, 0, stats.stderr);
    const st = JSON.parse(stats.stdout);
    assert.equal(st.path, state.sharedStoragePath);
    assert.equal(st.entries, entries.length);
    const refused = await s.pd(['clear-cache']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /the stack is running/);
    const cleared = await s.pd(['clear-cache', '--force', '--json']);
    assert.equal(cleared.code, 0, cleared.stderr);
    assert.equal(JSON.parse(cleared.stdout).entriesRemoved, entries.length);
    assert.deepEqual(await readdir(state.sharedStoragePath), []);

    const now = await s.state();
    const pids = [now.supervisorPid, ...now.engines.map((e: any) => e.pid)];
    const pgids = now.engines.flatMap((e: any) => [e.pgid, ...e.generations.map((g: any) => g.pid)]);
    const exited = new Promise<number | null>((res) => child.on('exit', (code) => res(code)));
    child.kill('SIGTERM');
    assert.equal(await exited, 0, child.stderrText());
    assert.match(child.stderrText(), /stack stopped; nothing left running/);
    for (const pid of pids) assert.equal(alive(pid), false, `pid ${pid} still alive`);
    for (const g of pgids) assert.equal(groupAlive(g), false, `group ${g} still alive`);
    assert.equal(existsSync(join(s.dir, 'state', 'state.json')), false);
  } finally {
    await s.cleanup();
  }
});
