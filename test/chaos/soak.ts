/**
 * `npm run test:chaos`: a bounded soak of a simulated stack under steady load with random engine kills, stalls
 * and client aborts. Not part of `npm test` (it runs for a minute by default and prints figures).
 *
 *   node --import tsx test/chaos/soak.ts [--duration 60s] [--rate 20] [--producers 2] [--consumers 2] [--seed 1]
 *     [--kill-every 8s] [--stall-every 11s] [--abort-rate 0.05] [--deadline 30s] [--kill-any]
 *
 * `pd up -d --simulate` runs in a temp dir on ephemeral ports; an undici client sends `--rate` chat completions a
 * second (half streaming) and aborts a few on purpose; meanwhile an engine's process group (found through the
 * state file, its identity proven by PD_STACK_ID before any signal) is SIGKILLed every few seconds, and another
 * one stalled with SIGSTOP/SIGCONT. At the end it prints requests sent / succeeded / failed cleanly / aborted /
 * lost, the restarts `pd status --json` counted, the supervisor's RSS over time (/proc) and the processes left
 * after `pd down`; it exits 1 when a request was lost, a process was left behind, or the supervisor died.
 */
import { parseArgs } from 'node:util';
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { cpus, totalmem, loadavg } from 'node:os';
import { join } from 'node:path';
import { execFileSync } from 'node:child_process';
import { freePorts } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';
import { runPd } from '../helpers/cli.js';
import { LoadClient, type Result } from './load.js';
import { readStackState } from '../../src/stack/state.js';
import { findStackProcesses, identityOf, ownership, stackIdOf, type ProcessIdentity } from '../../src/stack/identity.js';
import { parseDuration } from '../../src/util/duration.js';
import { sleep } from '../../src/util/timers.js';

const { values: args } = parseArgs({
  options: {
    duration: { type: 'string', default: '60s' },
    rate: { type: 'string', default: '20' },
    producers: { type: 'string', default: '2' },
    consumers: { type: 'string', default: '2' },
    seed: { type: 'string', default: '1' },
    'kill-every': { type: 'string', default: '8s' },
    'stall-every': { type: 'string', default: '11s' },
    'abort-rate': { type: 'string', default: '0.05' },
    deadline: { type: 'string', default: '30s' },
    /** Kills may also hit an engine that is starting, restarting or stalled (by default only healthy ones). */
    'kill-any': { type: 'boolean', default: false },
  },
});
const seconds = (v: string, flag: string): number => (/^\d+(\.\d+)?$/.test(v) ? Number(v) * 1000 : parseDuration(v, flag));
const durationMs = seconds(args.duration, '--duration');
const rate = Number(args.rate);
const nP = Number(args.producers);
const nC = Number(args.consumers);
const killEveryMs = seconds(args['kill-every'], '--kill-every');
const stallEveryMs = seconds(args['stall-every'], '--stall-every');
const deadlineMs = seconds(args.deadline, '--deadline');

/** mulberry32: the same seed, the same requests and the same chaos schedule. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
const random = rng(Number(args.seed));
const between = (lo: number, hi: number): number => lo + random() * (hi - lo);

const t0 = performance.now();
const at = (): string => `${((performance.now() - t0) / 1000).toFixed(1)}s`;
const events: Array<{ t: number; what: string }> = [];
const event = (what: string): void => {
  events.push({ t: performance.now() - t0, what });
  process.stderr.write(`  ${at().padStart(6)}  ${what}\n`);
};

function rssMb(pid: number): number | null {
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Math.round(Number(m[1]) / 1024) : null;
  } catch {
    return null;
  }
}

function machine(): string {
  const cpu = cpus()[0]?.model.replace(/\s+/g, ' ').trim() ?? 'unknown CPU';
  return `${cpus().length}× ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GB, Node ${process.versions.node}, load ${loadavg()[0]!.toFixed(1)}`;
}

function commit(): string {
  try {
    const sha = execFileSync('git', ['rev-parse', '--short', 'HEAD'], { encoding: 'utf8' }).trim();
    const dirty = execFileSync('git', ['status', '--porcelain', '--untracked-files=no'], { encoding: 'utf8' }).trim() !== '';
    return dirty ? `${sha}+dirty` : sha;
  } catch {
    return 'unknown';
  }
}

async function main(): Promise<number> {
  const { dir, cleanup } = await tempDir('pd-soak-');
  const { dir: kvRoot, cleanup: cleanupKv } = await tempDir('pd-soak-kv-');
  const stateDir = join(dir, 'state');
  const stackId = stackIdOf(stateDir);
  const ports = await freePorts(1 + nP + nC);
  const engine = (gpu: number, port: number) => ({ gpus: [gpu], host: '127.0.0.1', port });
  const config = {
    producers: Array.from({ length: nP }, (_, i) => engine(i, ports[1 + i]!)),
    consumers: Array.from({ length: nC }, (_, i) => engine(nP + i, ports[1 + nP + i]!)),
    proxy: { host: '127.0.0.1', port: ports[0]!, rateLimit: 0, healthIntervalMs: 500 },
    kv: { connector: 'auto', sharedStoragePath: join(kvRoot, 'kv'), cache: { maxBytes: 64 * 2 ** 20, graceSeconds: 5, intervalSeconds: 2 } },
    health: { timeoutSeconds: 60, intervalMs: 100 },
    // Kills are the point: the budget must not leave engines down for good during the soak.
    supervisor: { maxRestarts: 1000, restartWindowSeconds: 60, backoffMs: 200, stopGraceSeconds: 5 },
    stateDir,
  };
  await writeFile(join(dir, 'pd.config.json'), JSON.stringify(config, null, 2));
  const pd = (argv: string[]) => runPd(argv, { cwd: dir, timeoutMs: 120_000 });

  process.stderr.write(`pd chaos soak: ${durationMs / 1000} s at ${rate} req/s, ${nP}P${nC}D simulated, seed ${args.seed}\n  ${machine()}\n`);
  const upStart = performance.now();
  const up = await pd(['up', '-d', '--simulate']);
  if (up.code !== 0) {
    process.stderr.write(`pd up failed (${up.code}):\n${up.stderr}\n`);
    await cleanup();
    await cleanupKv();
    return 1;
  }
  event(`stack ready in ${((performance.now() - upStart) / 1000).toFixed(1)} s`);
  const first = (await readStackState(stateDir))!;
  const supervisorPid = first.supervisorPid!;
  const model = first.model;

  // Every engine generation ever seen, to check after `pd down` that none is left.
  const seen = new Map<number, ProcessIdentity>();
  const rss: Array<{ t: number; mb: number }> = [];
  let supervisorDied = null as string | null; // set by the watcher below
  let stopping = false;
  const watch = new AbortController();
  const watcher = (async () => {
    while (!watch.signal.aborted) {
      const st = await readStackState(stateDir).catch(() => null);
      for (const e of st?.engines ?? []) {
        for (const g of [...e.generations, ...(e.pid ? [{ pid: e.pid, startTime: e.startTime }] : [])]) seen.set(g.pid, g);
      }
      const mb = rssMb(supervisorPid);
      if (mb === null && !stopping && supervisorDied === null) {
        supervisorDied = at();
        event(`the supervisor (pid ${supervisorPid}) is gone`);
      }
      if (mb !== null && !stopping) rss.push({ t: performance.now() - t0, mb });
      await sleep(1000, watch.signal);
    }
  })();

  const stalled = new Set<number>();
  /** A healthy engine of the stack, its group proven to be ours before any signal. */
  const pickEngine = async (any = false): Promise<{ name: string; pgid: number } | null> => {
    const st = await readStackState(stateDir).catch(() => null);
    const live = (st?.engines ?? []).filter(
      (e) =>
        (any || (e.status === 'healthy' && !stalled.has(e.pgid ?? 0))) &&
        e.pid !== null &&
        e.pgid !== null &&
        ownership({ pid: e.pid, startTime: e.startTime }, stackId) === 'ours',
    );
    if (live.length === 0) return null;
    const e = live[Math.floor(random() * live.length)]!;
    return { name: e.name, pgid: e.pgid! };
  };
  let kills = 0;
  let stalls = 0;
  const chaosEnd = t0 + durationMs - 3_000;
  const chaos = new AbortController();
  const killer = (async () => {
    while (await sleep(between(0.5, 1.5) * killEveryMs, chaos.signal)) {
      if (performance.now() > chaosEnd) break;
      const e = await pickEngine(args['kill-any']);
      if (!e) continue;
      process.kill(-e.pgid, 'SIGKILL');
      kills++;
      event(`SIGKILL ${e.name} (group ${e.pgid})`);
    }
  })();
  const staller = (async () => {
    while (await sleep(between(0.5, 1.5) * stallEveryMs, chaos.signal)) {
      if (performance.now() > chaosEnd) break;
      const e = await pickEngine();
      if (!e) continue;
      const ms = Math.round(between(1500, 4000));
      const leader = identityOf(e.pgid);
      stalled.add(e.pgid);
      try {
        process.kill(-e.pgid, 'SIGSTOP');
        stalls++;
        event(`SIGSTOP ${e.name} for ${(ms / 1000).toFixed(1)} s`);
        await sleep(ms);
      } finally {
        // Only the group stopped above (a kill meanwhile may have ended it, and its pid may be reused).
        if (ownership(leader, stackId) === 'ours') process.kill(-e.pgid, 'SIGCONT');
        stalled.delete(e.pgid);
      }
    }
  })();

  const client = new LoadClient({ baseUrl: `http://127.0.0.1:${ports[0]}`, model, deadlineMs, abortRate: Number(args['abort-rate']), random });
  const results: Array<Result & { start: number }> = [];
  const inflight = new Set<Promise<void>>();
  const loadStart = performance.now();
  let sent = 0;
  while (performance.now() - loadStart < durationMs) {
    const start = performance.now() - t0;
    const p = client.send().then((r) => void results.push({ ...r, start }));
    inflight.add(p);
    void p.finally(() => inflight.delete(p));
    sent++;
    await sleep(Math.max(0, loadStart + (sent * 1000) / rate - performance.now()));
  }
  chaos.abort();
  await Promise.all([killer, staller]);
  event(`load stopped after ${sent} requests; waiting for ${inflight.size} in flight`);
  await Promise.all(inflight);
  await client.close();

  // The proxy's own count of requests in flight must come back to 0 (an aborted or failed request that is never
  // released would hold an admission slot for good). The supervisor writes it to the state every second.
  let drained: number | null = null;
  for (let i = 0; i < 30 && drained === null; i++) {
    await sleep(500);
    const st = await readStackState(stateDir).catch(() => null);
    if (st?.proxy && st.proxy.inFlight === 0 && st.proxy.queued === 0) drained = (i + 1) * 0.5;
  }
  const statusRun = await pd(['status', '--json']);
  const status = JSON.parse(statusRun.stdout || '{}') as { engines?: Array<{ name: string; restarts: number }>; degraded?: boolean; problems?: string[]; proxy?: { inFlight: number } };
  const restarts = (status.engines ?? []).reduce((n, e) => n + e.restarts, 0);

  stopping = true;
  const downStart = performance.now();
  const down = await pd(['down']);
  const downMs = performance.now() - downStart;
  watch.abort();
  await watcher;
  await sleep(300);
  const orphanPids = new Set(findStackProcesses(stackId, [process.pid]).map((p) => p.pid));
  for (const [pid, identity] of seen) if (ownership(identity, stackId) === 'ours') orphanPids.add(pid);
  if (ownership({ pid: supervisorPid, startTime: first.supervisorStartTime }, stackId) === 'ours') orphanPids.add(supervisorPid);
  for (const pid of orphanPids) {
    try {
      process.kill(pid, 'SIGKILL'); // leave nothing behind on this machine either (ours: proven above)
    } catch {
      // gone
    }
  }

  const count = (o: Result['outcome']): number => results.filter((r) => r.outcome === o).length;
  const details = (o: Result['outcome']): string => {
    const by = new Map<string, number>();
    for (const r of results) if (r.outcome === o) by.set(r.detail, (by.get(r.detail) ?? 0) + 1);
    return [...by].map(([d, n]) => `${d}×${n}`).join(', ');
  };
  const lost = count('lost');
  const rssStart = rss[0]?.mb ?? 0;
  const rssMax = Math.max(0, ...rss.map((r) => r.mb));
  const rssEnd = rss[rss.length - 1]?.mb ?? 0;
  const series = rss.filter((_, i) => i % 10 === 0).map((r) => `${Math.round(r.t / 1000)}s ${r.mb}`).join(' · ');
  const ok = lost === 0 && orphanPids.size === 0 && supervisorDied === null && down.code === 0;

  const out = process.stdout;
  out.write(`\nrequests   sent ${sent} · succeeded ${count('ok')} · failed cleanly ${count('failed-clean')}${count('failed-clean') ? ` (${details('failed-clean')})` : ''} · aborted by the client ${count('aborted')} · lost ${lost}${lost ? ` (${details('lost')})` : ''}\n`);
  out.write(`chaos      ${kills} engine kills · ${stalls} stalls · ${restarts} restarts counted by pd status${status.degraded ? ` · degraded: ${(status.problems ?? []).join('; ')}` : ''}\n`);
  out.write(`supervisor RSS ${rssStart} MB at start, ${rssMax} MB max, ${rssEnd} MB at the end (every 10 s: ${series})${supervisorDied ? ` · DIED at ${supervisorDied}` : ''}\n`);
  out.write(`after      proxy in flight back to 0: ${drained === null ? 'NO (still ' + String(status.proxy?.inFlight) + ')' : `in ${drained} s`} · pd down ${down.code === 0 ? `in ${(downMs / 1000).toFixed(1)} s` : `FAILED (${down.code}): ${down.stderr.trim()}`} · orphans ${orphanPids.size}${orphanPids.size ? ` (pids ${[...orphanPids].join(', ')})` : ''}\n`);
  if (lost > 0) {
    out.write('\nlost requests (start → end, what was seen, the chaos around them):\n');
    for (const r of results.filter((x) => x.outcome === 'lost').slice(0, 20)) {
      const near = events.filter((e) => e.t >= r.start - 5_000 && e.t <= r.start + r.ms + 1_000).map((e) => `${(e.t / 1000).toFixed(1)}s ${e.what}`);
      out.write(`  ${(r.start / 1000).toFixed(1)}s → ${((r.start + r.ms) / 1000).toFixed(1)}s ${r.stream ? 'stream' : 'json'} ${r.detail}; ${near.join('; ') || 'no chaos nearby'}\n`);
    }
  }
  const date = new Date().toISOString().slice(0, 10);
  out.write(
    `\n| ${date} | ${machine()} | ${commit()} | ${durationMs / 1000} s, ${rate} req/s, ${nP}P${nC}D | ${sent} | ${count('ok')} | ${count('failed-clean')} | ${count('aborted')} | ${lost} | ${kills} / ${stalls} | ${restarts} | ${rssStart} → ${rssMax} → ${rssEnd} MB | ${(downMs / 1000).toFixed(1)} s | ${orphanPids.size} |\n`,
  );
  out.write(`\n${ok ? 'PASS' : 'FAIL'}: ${lost} lost, ${orphanPids.size} orphans${supervisorDied ? ', the supervisor died' : ''}\n`);
  if (!ok) process.stderr.write(`(the stack's files are kept in ${dir} for a look)\n`);
  else {
    await cleanup();
    await cleanupKv();
  }
  return ok ? 0 : 1;
}

process.exitCode = await main();
