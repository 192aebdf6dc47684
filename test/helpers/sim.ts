/**
 * Start the BUILT simulator (dist/sim/main.js; run `npm run build` first) as a child process on an ephemeral port
 * and wait for /health. Every handle is killed on stop() and, as a safety net, when the test process exits.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { simEntryPath } from '../../src/sim/entry.js';
import { freePort } from './ports.js';

export interface SimHandle {
  port: number;
  /** http://127.0.0.1:PORT */
  url: string;
  pid: number;
  /** Captured stdout + stderr so far. */
  output(): string;
  /** Send `signal` (default SIGTERM) and resolve with the exit code (null when killed by a signal). */
  stop(signal?: NodeJS.Signals): Promise<number | null>;
  /** Resolves once the output matches `re` (logs arrive asynchronously); rejects after `timeoutMs` (5000). */
  waitForOutput(re: RegExp, timeoutMs?: number): Promise<void>;
  /** Resolves with the exit code when the process exits by itself. */
  exited: Promise<number | null>;
  child: ChildProcess;
}

export interface StartSimOptions {
  model?: string;
  /** Extra argv after `serve MODEL --host 127.0.0.1 --port P`. */
  args?: string[];
  /** Extra env (merged over process.env; PD_SIM_ZERO_LATENCY=1 is set unless given). */
  env?: Record<string, string>;
  /** kv-transfer-config object; with `storageDir`, defaults to an ExampleConnector (kv_both) on that dir. */
  kvConfig?: object;
  storageDir?: string;
  /** Wait for /health (default true). */
  waitReady?: boolean;
  /** Start-up deadline in ms (default 15000). */
  timeoutMs?: number;
}

const live = new Set<ChildProcess>();
let hooked = false;
function hookExit(): void {
  if (hooked) return;
  hooked = true;
  process.on('exit', () => {
    for (const c of live) c.kill('SIGKILL');
  });
}

export async function startSim(opts: StartSimOptions = {}): Promise<SimHandle> {
  const entry = simEntryPath();
  if (!existsSync(entry)) throw new Error(`${entry} does not exist: run \`npm run build\` first`);
  const port = await freePort();
  const model = opts.model ?? 'sim-model';
  const argv = [entry, 'serve', model, '--host', '127.0.0.1', '--port', String(port)];
  let kv = opts.kvConfig;
  if (!kv && opts.storageDir)
    kv = {
      kv_connector: 'ExampleConnector',
      kv_role: 'kv_both',
      kv_connector_extra_config: { shared_storage_path: opts.storageDir },
    };
  if (kv) argv.push('--kv-transfer-config', JSON.stringify(kv));
  argv.push(...(opts.args ?? []));
  const env = { ...process.env, PD_SIM_ZERO_LATENCY: '1', ...(opts.env ?? {}) };
  const child = spawn(process.execPath, argv, { env, stdio: ['ignore', 'pipe', 'pipe'] });
  hookExit();
  live.add(child);
  let out = '';
  // Waiters on the output are woken by the output itself (no polling timers).
  const waiters = new Set<() => void>();
  const onData = (d: string): void => {
    out += d;
    for (const w of [...waiters]) w();
  };
  child.stdout.setEncoding('utf8').on('data', onData);
  child.stderr.setEncoding('utf8').on('data', onData);
  /** Resolves true once the output matches `re`, false after `timeoutMs` or once the process has exited without it. */
  const outputMatch = (re: RegExp, timeoutMs: number): Promise<boolean> =>
    new Promise((resolve) => {
      if (re.test(out)) return resolve(true);
      const done = (v: boolean): void => {
        clearTimeout(timer);
        waiters.delete(check);
        resolve(v);
      };
      const check = (): void => {
        if (re.test(out)) done(true);
      };
      const timer = setTimeout(() => done(re.test(out)), timeoutMs);
      waiters.add(check);
      void closed.then(() => done(re.test(out)));
    });
  // 'close' comes after the last output of an exited process ('exit' may come before it).
  const closed = new Promise<void>((resolve) => child.on('close', () => resolve()));
  const exited = new Promise<number | null>((resolve) => {
    child.on('exit', (code) => {
      live.delete(child);
      resolve(code);
    });
  });
  const url = `http://127.0.0.1:${port}`;
  const handle: SimHandle = {
    port,
    url,
    pid: child.pid!,
    output: () => out,
    waitForOutput(re: RegExp, timeoutMs = 5000) {
      return outputMatch(re, timeoutMs).then((matched) => {
        if (!matched) throw new Error(`output did not match ${re} within ${timeoutMs} ms:\n${out}`);
      });
    },
    exited,
    child,
    async stop(signal: NodeJS.Signals = 'SIGTERM') {
      if (child.exitCode !== null || child.signalCode !== null) return child.exitCode;
      child.kill(signal);
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      const code = await exited;
      clearTimeout(timer);
      return code;
    },
  };
  if (opts.waitReady === false) return handle;
  const deadline = Date.now() + (opts.timeoutMs ?? 15_000);
  let exitedEarly = false;
  void exited.then(() => (exitedEarly = true));
  // The simulator logs uvicorn's "Application startup complete." once it listens: wait for that line, then ask
  // /health (polled only if it is not 200 yet).
  await outputMatch(/Application startup complete\./, opts.timeoutMs ?? 15_000);
  while (Date.now() < deadline) {
    if (exitedEarly) throw new Error(`simulator exited during start-up:\n${out}`);
    try {
      const r = await fetch(`${url}/health`);
      await r.arrayBuffer();
      if (r.status === 200) return handle;
    } catch {
      /* not listening yet */
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  await handle.stop('SIGKILL');
  throw new Error(`simulator did not become healthy within ${opts.timeoutMs ?? 15_000} ms:\n${out}`);
}
