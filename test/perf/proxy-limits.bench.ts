/**
 * `npm run bench:proxy-limits` — the proxy's bounded resources at the scale the targets are set for, against
 * `pd proxy` (the built CLI) as a child process and zero-latency fake engines. Prints figures; asserts nothing.
 *
 * 1. Large bodies: PD_LIMITS_BODIES (100) concurrent requests with a PD_LIMITS_BODY_MB (30) MB prompt each. The
 *    proxy's RSS is sampled every 100 ms: peak (target < 1 GB) and how long it takes to come back within 64 MB of
 *    where it started once the load is over (target < 60 s).
 * 2. Slow clients: PD_LIMITS_SLOW (2000) connections that send their headers and then one body byte every 5 s.
 *    Time from the last connection opened to the last one cut, against proxy.timeouts.requestMs
 *    (PD_LIMITS_REQUEST_MS, 10 s here), and how many got a 408.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { Pool } from 'undici';

const root = fileURLToPath(new URL('../../', import.meta.url));
const here = fileURLToPath(new URL('./proxy/', import.meta.url));
const bodies = Number(process.env.PD_LIMITS_BODIES ?? 100);
const bodyMb = Number(process.env.PD_LIMITS_BODY_MB ?? 30);
const slow = Number(process.env.PD_LIMITS_SLOW ?? 2000);
const requestMs = Number(process.env.PD_LIMITS_REQUEST_MS ?? 10_000);
const settleMs = Number(process.env.PD_LIMITS_SETTLE_MS ?? 60_000);
const tmp = mkdtempSync(join(tmpdir(), 'pd-limits-bench-'));
const children = new Set<ChildProcess>();

function child(cmd: string, args: string[], stdio: 'stdout' | 'stderr', cwd: string): { c: ChildProcess; line: (re: RegExp) => Promise<RegExpExecArray> } {
  const c = spawn(cmd, args, { cwd, stdio: ['ignore', stdio === 'stdout' ? 'pipe' : 'ignore', stdio === 'stderr' ? 'pipe' : 'inherit'] });
  children.add(c);
  c.on('exit', () => children.delete(c));
  const line = (re: RegExp): Promise<RegExpExecArray> =>
    new Promise((resolve, reject) => {
      const rl = createInterface({ input: c[stdio]! });
      rl.on('line', (l) => {
        const m = re.exec(l);
        if (m) {
          rl.close();
          c[stdio]!.resume();
          resolve(m);
        }
      });
      c.once('exit', (code) => reject(new Error(`${cmd} exited (${code}) before it was ready`)));
    });
  return { c, line };
}

/** User + system CPU seconds of a process so far (Linux /proc). */
function cpuSeconds(pid: number): number {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
  return (Number(f[11]) + Number(f[12])) / 100;
}

function rssMb(pid: number): number {
  const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) / 1024 : NaN;
}

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));
const fmt = (v: number, d = 0): string => (Number.isFinite(v) ? v.toFixed(d) : 'n/a');

async function main(): Promise<void> {
  const backend = child(process.execPath, ['--import', 'tsx', join(here, 'backend.ts'), '{"drainOnly":true}'], 'stdout', root);
  const ports = JSON.parse((await backend.line(/^\{.*\}$/))[0]) as { producer: number; consumer: number };
  /** `pd proxy` with the given proxy config section, as a child process. */
  const startPd = async (proxy: Record<string, unknown>): Promise<{ c: ChildProcess; port: number }> => {
    const cfg = join(tmp, `pd-${children.size}.config.json`);
    writeFileSync(cfg, JSON.stringify({ proxy }));
    const pd = child(
      process.execPath,
      [
        join(root, 'dist/cli/main.js'), 'proxy', '-c', cfg, '--host', '127.0.0.1', '--port', '0',
        '--prefill-url', `http://127.0.0.1:${ports.producer}`, '--decode-url', `http://127.0.0.1:${ports.consumer}`,
        '--rate-limit', '0', '--access-log', 'off',
      ],
      'stderr',
      tmp,
    );
    return { c: pd.c, port: Number((await pd.line(/listening on http:\/\/[^:]+:(\d+)/))[1]) };
  };
  const stopPd = (c: ChildProcess): Promise<void> =>
    new Promise((resolve) => {
      c.once('exit', () => resolve());
      c.kill('SIGTERM');
    });

  // ---- 1. large bodies, default limits
  const big = await startPd({});
  const pid = big.c.pid!;
  const url = `http://127.0.0.1:${big.port}`;
  await sleep(500);

  const base = rssMb(pid);
  const prompt = 'x'.repeat(bodyMb * 1024 * 1024 - 64);
  const body = Buffer.from(JSON.stringify({ model: 'm', prompt, max_tokens: 4 }));
  let peak = base;
  let sampling = true;
  const samples = (async () => {
    while (sampling) {
      peak = Math.max(peak, rssMb(pid));
      await sleep(100);
    }
  })();
  const pool = new Pool(url, { connections: bodies, headersTimeout: 0, bodyTimeout: 0 });
  const t0 = performance.now();
  const cpu0 = cpuSeconds(pid);
  const statuses: Record<string, number> = {};
  await Promise.all(
    Array.from({ length: bodies }, async () => {
      try {
        const r = await pool.request({ method: 'POST', path: '/v1/completions', headers: { 'content-type': 'application/json' }, body });
        await r.body.dump();
        statuses[r.statusCode] = (statuses[r.statusCode] ?? 0) + 1;
      } catch (e) {
        const k = (e as { code?: string }).code ?? 'error';
        statuses[k] = (statuses[k] ?? 0) + 1;
      }
    }),
  );
  const loadMs = performance.now() - t0;
  const cpuUsed = cpuSeconds(pid) - cpu0;
  await pool.close();
  const after = rssMb(pid);
  const settle0 = performance.now();
  let back = NaN;
  const marks: string[] = [];
  for (const at of [5_000, 10_000, 30_000, settleMs]) {
    while (performance.now() - settle0 < at) {
      if (Number.isNaN(back) && rssMb(pid) <= base + 64) back = performance.now() - settle0;
      await sleep(250);
    }
    marks.push(`${at / 1000} s: ${fmt(rssMb(pid))} MB`);
    if (!Number.isNaN(back) && at >= 10_000) break;
  }
  sampling = false;
  await samples;
  await stopPd(big.c);

  // ---- 2. slow clients, proxy.timeouts.requestMs = PD_LIMITS_REQUEST_MS
  const { c: slowPd, port } = await startPd({ timeouts: { requestMs, headersMs: Math.min(requestMs, 30_000) } });
  const cut: number[] = [];
  let got408 = 0;
  let opened = 0;
  const tOpen = performance.now();
  const conns = Array.from(
    { length: slow },
    () =>
      new Promise<void>((resolve) => {
        let openedAt = NaN;
        const s = connect(port, '127.0.0.1', () => {
          opened++;
          openedAt = performance.now();
          s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{');
        });
        const drip = setInterval(() => s.writable && s.write(' '), 5000);
        let text = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => (text += d));
        s.on('error', () => undefined);
        s.once('close', () => {
          clearInterval(drip);
          cut.push(performance.now() - openedAt);
          if (text.startsWith('HTTP/1.1 408')) got408++;
          resolve();
        });
      }),
  );
  await Promise.race([Promise.all(conns), sleep(requestMs * 3 + 10_000)]);
  const allCut = performance.now() - tOpen;
  await stopPd(slowPd);
  const sorted = [...cut].sort((a, b) => a - b);
  const pct = (q: number): number => (sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]! : NaN);

  const rows: string[][] = [
    ['measure', 'value', 'target'],
    [`${bodies} x ${bodyMb} MB bodies: answers`, Object.entries(statuses).map(([k, v]) => `${v} x ${k}`).join(', '), ''],
    [`${bodies} x ${bodyMb} MB bodies: wall time / pd CPU time (s)`, `${fmt(loadMs / 1000, 1)} / ${fmt(cpuUsed, 1)}`, ''],
    ['pd RSS before / peak / right after (MB)', `${fmt(base)} / ${fmt(peak)} / ${fmt(after)}`, 'peak < 1024'],
    ['pd RSS after the load', marks.join(', '), ''],
    ['time for RSS to come back within 64 MB of the start (s)', Number.isNaN(back) ? `not within ${settleMs / 1000} s` : fmt(back / 1000, 1), '< 60'],
    [`${slow} slow clients: connected / cut / answered 408`, `${opened} / ${cut.length} / ${got408}`, `${slow} cut`],
    [
      `${slow} slow clients: time from connect to cut, p50 / max (s)`,
      `${fmt(pct(0.5) / 1000, 2)} / ${fmt(sorted.at(-1)! / 1000, 2)}`,
      `<= ${requestMs / 1000} (proxy.timeouts.requestMs)`,
    ],
    [`${slow} slow clients: all cut after (s, from the first connect)`, fmt(allCut / 1000, 2), ''],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  for (const r of rows) console.log('| ' + r.map((c, i) => c.padEnd(widths[i]!)).join(' | ') + ' |');
}

try {
  await main();
} finally {
  for (const c of children) c.kill('SIGKILL');
  rmSync(tmp, { recursive: true, force: true });
}
