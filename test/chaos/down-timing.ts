/**
 * Repro: how long `pd down` of an idle simulated 1P1D stack takes, and how much of it is spent after the
 * supervisor has already exited (waiting for its zombie to be reaped by PID 1, which is its parent once the
 * `pd up -d` that started it is gone).
 *
 *   npm run build && node --import tsx test/chaos/down-timing.ts [rounds]
 *
 * Prints, per round: pd down's wall time, the time it reports, and when the supervisor became a zombie and when
 * it left the process table (sampled from /proc while pd down runs).
 */
import { readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { freePorts } from '../helpers/ports.js';
import { tempDir } from '../helpers/tmp.js';
import { PD_BIN, runPd } from '../helpers/cli.js';
import { readStackState } from '../../src/stack/state.js';

const rounds = Number(process.argv[2] ?? 3);

function procState(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2).split(' ')[0] ?? null;
  } catch {
    return null;
  }
}

const { dir, cleanup } = await tempDir('pd-down-timing-');
const { dir: kvRoot, cleanup: cleanupKv } = await tempDir('pd-down-timing-kv-');
try {
  const [proxy, producer, consumer] = await freePorts(3);
  await writeFile(
    join(dir, 'pd.config.json'),
    JSON.stringify({
      producers: [{ gpus: [0], host: '127.0.0.1', port: producer }],
      consumers: [{ gpus: [1], host: '127.0.0.1', port: consumer }],
      proxy: { host: '127.0.0.1', port: proxy },
      kv: { connector: 'auto', sharedStoragePath: join(kvRoot, 'kv') },
      stateDir: join(dir, 'state'),
    }),
  );
  for (let i = 0; i < rounds; i++) {
    const up = await runPd(['up', '-d', '--simulate'], { cwd: dir, env: { PD_SIM_ZERO_LATENCY: '1' } });
    if (up.code !== 0) throw new Error(`pd up failed: ${up.stderr}`);
    const supervisor = (await readStackState(join(dir, 'state')))!.supervisorPid!;
    const t0 = performance.now();
    let zombieAt: number | null = null;
    let goneAt: number | null = null;
    const sampler = setInterval(() => {
      const s = procState(supervisor);
      if (s === 'Z' && zombieAt === null) zombieAt = performance.now() - t0;
      if (s === null && goneAt === null) goneAt = performance.now() - t0;
    }, 2);
    const child = spawn(process.execPath, [PD_BIN, 'down'], { cwd: dir, stdio: ['ignore', 'pipe', 'inherit'], env: { PATH: process.env.PATH ?? '', NO_COLOR: '1' } });
    let out = '';
    child.stdout.on('data', (d) => (out += d));
    await new Promise((r) => child.on('exit', r));
    const wall = performance.now() - t0;
    clearInterval(sampler);
    const reported = /stopped in ([\d.]+) s/.exec(out)?.[1] ?? '?';
    const ms = (v: number | null): string => (v === null ? '-' : `${(v / 1000).toFixed(2)} s`);
    process.stdout.write(`round ${i + 1}: pd down ${ms(wall)} wall, reports ${reported} s; supervisor a zombie at ${ms(zombieAt)}, reaped at ${ms(goneAt)}\n`);
  }
} finally {
  await runPd(['down'], { cwd: dir }).catch(() => undefined);
  await cleanup();
  await cleanupKv();
}
