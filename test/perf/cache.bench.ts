/**
 * npm run bench:cache — how fast `pd clear-cache` empties a SharedStorageConnector-shaped tree compared with
 * `rm -rf` on the same tree (target: <= 1.5x), and how long a full scan (`pd cache stats`, one janitor pass) takes.
 * Tree: BENCH_FOLDERS (2,000) folders x BENCH_FILES (50) files of BENCH_FILE_BYTES (4 KiB) = 100,000 files.
 * Locations: the temp dir (a disk here) and /dev/shm (tmpfs, the CPU-bound worst case) when present.
 * Each round builds a fresh tree, syncs, then times one method; the table shows medians over BENCH_ROUNDS (3).
 * BENCH_WHERE=disk|tmpfs|both (default both). Uses the built dist/ (bench:cache builds first). Prints figures; asserts nothing (the README quotes them).
 */
import { mkdirSync, writeFileSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, availableParallelism } from 'node:os';
import { join } from 'node:path';
import { execFileSync, spawnSync } from 'node:child_process';

const FOLDERS = Number(process.env.BENCH_FOLDERS ?? 2000);
const FILES = Number(process.env.BENCH_FILES ?? 50);
const BYTES = Number(process.env.BENCH_FILE_BYTES ?? 4096);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);
const MAIN = new URL('../../dist/cli/main.js', import.meta.url).pathname;
const { clearCache } = (await import(new URL('../../dist/cache/clear.js', import.meta.url).href)) as typeof import('../../src/cache/clear.js');
const { cacheStats } = (await import(new URL('../../dist/cache/stats.js', import.meta.url).href)) as typeof import('../../src/cache/stats.js');
const { IncrementalScanner } = (await import(new URL('../../dist/cache/scan.js', import.meta.url).href)) as typeof import('../../src/cache/scan.js');

function build(root: string): void {
  mkdirSync(root, { recursive: true });
  const data = Buffer.alloc(BYTES, 7);
  for (let i = 0; i < FOLDERS; i++) {
    const d = join(root, i.toString(16).padStart(32, '0'));
    mkdirSync(d);
    for (let j = 0; j < FILES; j++) writeFileSync(join(d, `model.layers.${j}.self_attn.attn.safetensors`), data);
  }
  execFileSync('sync');
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

type Method = { name: string; run: (root: string) => Promise<void> };

const methods: Method[] = [
  {
    name: 'rm -rf <path>/*  (baseline)',
    run: (root) => {
      // What users type: the shell expands the glob, rm deletes each folder (one process, no stat per file).
      const r = spawnSync('sh', ['-c', `rm -rf "${root}"/*`]);
      if (r.status !== 0) throw new Error(`rm failed: ${String(r.stderr)}`);
      return Promise.resolve();
    },
  },
  {
    name: `clearCache() (default threads = ${Math.min(8, Math.max(2, availableParallelism() + 1))})`,
    run: async (root) => {
      const r = await clearCache({ path: root, configuredPath: root });
      if (r.filesRemoved !== FOLDERS * FILES) throw new Error(`removed ${r.filesRemoved}`);
    },
  },
  {
    name: 'clearCache() threads = 1',
    run: async (root) => void (await clearCache({ path: root, configuredPath: root, concurrency: 1 })),
  },
  {
    name: 'pd clear-cache (CLI, incl. ~0.2 s start-up)',
    run: (root) => {
      // The config and state live apart from the cache (pd refuses a cache path inside the config's folder).
      const project = mkdtempSync(join(tmpdir(), 'pd-cache-bench-project-'));
      const cfg = join(project, 'pd.config.json');
      writeFileSync(cfg, JSON.stringify({ kv: { sharedStoragePath: root }, stateDir: join(project, 'state') }));
      const r = spawnSync(process.execPath, [MAIN, '-c', cfg, 'clear-cache'], { env: { ...process.env, NO_COLOR: '1' } });
      rmSync(project, { recursive: true, force: true });
      if (r.status !== 0) throw new Error(`pd clear-cache failed: ${String(r.stderr)}`);
      return Promise.resolve();
    },
  },
];

async function benchLocation(label: string, base: string): Promise<void> {
  const work = mkdtempSync(join(base, 'pd-cache-bench-'));
  const root = join(work, 'kv');
  try {
    const times = new Map<string, number[]>(methods.map((m) => [m.name, []]));
    const scanMs: number[] = [];
    const incMs: number[] = [];
    for (let round = 0; round < ROUNDS; round++) {
      for (const m of methods) {
        build(root);
        if (m === methods[1]) {
          const t = performance.now();
          const s = await cacheStats(root);
          scanMs.push(performance.now() - t);
          if (s.files !== FOLDERS * FILES) throw new Error(`stats saw ${s.files} files`);
          const scanner = new IncrementalScanner(root);
          await scanner.scan();
          const t1 = performance.now();
          await scanner.scan();
          incMs.push(performance.now() - t1);
        }
        const t0 = performance.now();
        await m.run(root);
        times.get(m.name)!.push(performance.now() - t0);
      }
    }
    const base = median(times.get(methods[0]!.name)!);
    console.log(`\n${label}: ${FOLDERS} folders x ${FILES} files x ${BYTES} B, median of ${ROUNDS}`);
    console.log(`  ${'method'.padEnd(48)} ${'median s'.padStart(9)} ${'min s'.padStart(7)} ${'vs rm'.padStart(7)}`);
    for (const m of methods) {
      const xs = times.get(m.name)!;
      console.log(
        `  ${m.name.padEnd(48)} ${(median(xs) / 1000).toFixed(2).padStart(9)} ${(Math.min(...xs) / 1000).toFixed(2).padStart(7)} ${(median(xs) / base).toFixed(2).padStart(6)}x`,
      );
    }
    console.log(`  full scan (pd cache stats, the janitor's first pass): median ${(median(scanMs) / 1000).toFixed(2)} s`);
    console.log(`  janitor pass after the first (incremental, nothing changed): median ${(median(incMs) / 1000).toFixed(3)} s`);
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}

console.log(`cache bench on ${availableParallelism()} CPUs, load average ${(await import('node:os')).loadavg().map((x) => x.toFixed(1)).join(' ')}`);
const WHERE = process.env.BENCH_WHERE ?? 'both'; // disk | tmpfs | both
if (WHERE !== 'tmpfs') await benchLocation(`disk (${tmpdir()})`, tmpdir());
if (WHERE !== 'disk' && existsSync('/dev/shm')) await benchLocation('tmpfs (/dev/shm)', '/dev/shm');
