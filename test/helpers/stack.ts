/**
 * A throw-away stack directory for e2e tests: a pd.config.json on ephemeral ports with its own stateDir and
 * shared storage in a temp dir, helpers to run the built `pd`, and a cleanup that always runs `pd down`
 * and checks nothing it started is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile, readFile, rm } from 'node:fs/promises';
import { existsSync, readFileSync, readdirSync } from 'node:fs';
import { findStackProcesses, stackIdOf } from '../../src/stack/identity.js';
import { simulatedStoragePath } from '../../src/stack/simulate.js';
import { join, resolve } from 'node:path';
import { freePorts } from './ports.js';
import { tempDir } from './tmp.js';
import { PD_BIN, runPd, type CliResult } from './cli.js';

export interface StackDir {
  dir: string;
  /** The KV shared storage folder: apart from the config's folder (pd refuses a cache path that overlaps it). */
  kv: string;
  ports: { proxy: number; producer: number; consumer: number };
  config: Record<string, unknown>;
  pd(args: string[], env?: Record<string, string>): Promise<CliResult>;
  /** Spawn `pd …` without waiting (foreground `pd up`). */
  spawnPd(args: string[], env?: Record<string, string>): ChildProcess & { stderrText(): string; stdoutText(): string };
  state(): Promise<any>;
  cleanup(): Promise<void>;
}

export const SIM_ENV = { PD_SIM_ZERO_LATENCY: '1', PD_SIM_STARTUP_DELAY: '0.1' };

export async function makeStackDir(extra: Record<string, unknown> = {}, baseEnv: Record<string, string> = {}): Promise<StackDir> {
  const { dir, cleanup: rmDir } = await tempDir('pd-stack-');
  const { dir: kvRoot, cleanup: rmKv } = await tempDir('pd-kv-');
  const kv = join(kvRoot, 'kv');
  const [proxy, producer, consumer] = await freePorts(3);
  const config = {
    producers: [{ gpus: [0], host: '127.0.0.1', port: producer }],
    consumers: [{ gpus: [1], host: '127.0.0.1', port: consumer }],
    // The proxy's background /health probe keeps its default period (2 s): at 200 ms it cost an idle stack about a
    // quarter of a CPU second per second (probes, engine access-log lines), and no check here waits on it.
    proxy: { host: '127.0.0.1', port: proxy, rateLimit: 0, accessLog: 'text' },
    kv: { connector: 'ExampleConnector', sharedStoragePath: kv },
    health: { timeoutSeconds: 30, intervalMs: 50 },
    supervisor: { backoffMs: 100, stopGraceSeconds: 5 },
    stateDir: join(dir, 'state'),
    ...extra,
  };
  await writeFile(join(dir, 'pd.config.json'), JSON.stringify(config, null, 2));
  const env = { ...SIM_ENV, ...baseEnv };
  const children: ChildProcess[] = [];
  const self: StackDir = {
    dir,
    kv,
    ports: { proxy: proxy!, producer: producer!, consumer: consumer! },
    config,
    pd: (args, e = {}) => runPd(args, { cwd: dir, env: { ...env, ...e }, timeoutMs: 90_000 }),
    spawnPd(args, e = {}) {
      const child = spawn(process.execPath, [PD_BIN, ...args], {
        cwd: dir,
        env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '/tmp', NO_COLOR: '1', ...env, ...e },
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.push(child);
      let out = '';
      let err = '';
      child.stdout.on('data', (d) => (out += d));
      child.stderr.on('data', (d) => (err += d));
      return Object.assign(child, { stderrText: () => err, stdoutText: () => out });
    },
    state: async () => JSON.parse(await readFile(join(dir, 'state', 'state.json'), 'utf8')),
    async cleanup() {
      // `pd down` only when something of the stack may be left (a state file, or a process carrying its id).
      const stateDir = resolve(dir, String(config.stateDir));
      if (existsSync(join(stateDir, 'state.json')) || findStackProcesses(stackIdOf(stateDir)).length > 0) {
        await runPd(['down', '--grace', '2'], { cwd: dir, env }).catch(() => undefined);
      }
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      // `pd up --simulate` with no shared storage path keeps its KV in a per-state-dir folder of the system tmpdir.
      await rm(simulatedStoragePath(stateDir), { recursive: true, force: true });
      await rmDir();
      await rmKv();
    },
  };
  return self;
}

/** State letter of /proc/<pid>/stat, or null when the process is gone. */
function procState(pid: number): string | null {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return text.slice(text.lastIndexOf(')') + 2, text.lastIndexOf(')') + 3);
  } catch {
    return null;
  }
}

/** Running (an exited process its parent has not reaped yet — a zombie — is not). */
export function alive(pid: number): boolean {
  const state = procState(pid);
  return state !== null && state !== 'Z';
}

/** Any running (not zombie) process in the group. */
export function groupAlive(pgid: number): boolean {
  for (const name of readdirSync('/proc')) {
    const pid = Number(name);
    if (!Number.isInteger(pid)) continue;
    try {
      const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
      if (Number(rest[2]) === pgid && rest[0] !== 'Z') return true;
    } catch {
      // gone meanwhile
    }
  }
  return false;
}

export async function waitFor<T>(what: string, fn: () => Promise<T | undefined | false> | T | undefined | false, timeoutMs = 20_000, pollMs = 50): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await fn();
    if (v) return v;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export async function chat(port: number, content = 'hello there, how are you?', maxTokens = 4): Promise<{ status: number; body: any }> {
  const res = await fetch(`http://127.0.0.1:${port}/v1/chat/completions`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ model: '/mnt/models/Qwen3-4B-Instruct-2507', messages: [{ role: 'user', content }], max_tokens: maxTokens }),
  });
  const text = await res.text();
  let body: unknown = text;
  try { body = JSON.parse(text); } catch { /* not JSON */ }
  return { status: res.status, body };
}
