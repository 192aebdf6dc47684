/**
 * The supervisor behind `pd up`: spawns every engine as planned, waits for health in parallel, starts the
 * embedded proxy, keeps the state file current, restarts engines that die (with back-off), and tears it all
 * down — every process group — on stop.
 */
import { mkdir, rename, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import client from 'prom-client';
import type { PdConfig } from '../config/schema.js';
import type { ConnectorChoice } from './connector.js';
import { buildEnginePlans, type EnginePlan } from './engine-plan.js';
import { spawnEngine, openLog, type EngineProcess, type EngineExit } from './engine-process.js';
import { waitHealthy, type ProbeResult } from './health.js';
import { diagnose } from './diagnose.js';
import { emptyCounters, watchLine, type LogCounters } from './log-watch.js';
import { stopGroup, killGroupNow, sleep, type StopResult } from './process-group.js';
import { portFree } from './preflight.js';
import {
  acquireLock,
  readStackState,
  removeStackState,
  stateIsLive,
  writeStackState,
  type EngineState,
  type StackState,
} from './state.js';
import { isSharedStorageConnector } from './kv-transfer-config.js';
import { RuntimeError } from '../util/errors.js';
import { startProxy, type ProxyHandle } from '../proxy/server.js';
import { proxyOptionsFromConfig } from '../proxy/options.js';
import { startJanitor, budgetIsActive, type Janitor } from '../cache/janitor.js';

export interface SupervisorEvents {
  /** A line an engine printed (after the stack is up, or always when `echoDuringStartup`). */
  engineLine?: (engine: string, line: string) => void;
  /** An access-log line or warning from the proxy. */
  proxyLine?: (line: string) => void;
  /** Supervisor news: restarts, evictions, shutdown steps. */
  notice?: (message: string) => void;
  /** Start-up progress of one engine (for the task list). */
  engineProgress?: (engine: string, probe: ProbeResult, elapsedMs: number) => void;
  engineReady?: (engine: string, elapsedMs: number) => void;
}

export interface SupervisorOptions {
  config: PdConfig;
  configPath: string | null;
  connector: ConnectorChoice;
  /** Replaces the vLLM executable (the simulator under --simulate). */
  command?: string[];
  simulate: boolean;
  events?: SupervisorEvents;
}

interface Engine {
  plan: EnginePlan;
  proc: EngineProcess | null;
  state: EngineState;
  counters: LogCounters;
  /** Set while a deliberate stop is in progress, so the exit is not treated as a crash. */
  stopping: boolean;
}

export interface StopReport {
  engines: Array<{ name: string; pid: number | null; how: StopResult['how'] }>;
  proxy: boolean;
}

export function configHash(config: PdConfig): string {
  return createHash('sha256').update(JSON.stringify(config)).digest('hex').slice(0, 16);
}

async function rotateLog(path: string): Promise<void> {
  try {
    await stat(path);
    await rename(path, `${path}.1`);
  } catch {
    // nothing to rotate
  }
}

export class Supervisor {
  readonly config: PdConfig;
  readonly engines: Engine[];
  readonly logDir: string;
  private readonly opts: SupervisorOptions;
  private proxy: ProxyHandle | null = null;
  private releaseLock: (() => Promise<void>) | null = null;
  private phase: StackState['phase'] = 'starting';
  private readonly startedAt = new Date().toISOString();
  private refresher: NodeJS.Timeout | null = null;
  private stopPromise: Promise<StopReport> | null = null;
  private readonly abort = new AbortController();
  private proxyLog: import('node:fs').WriteStream | null = null;
  private janitor: Janitor | null = null;
  private metrics: {
    restarts: client.Counter<'engine'>;
    cacheHits: client.Counter<'engine'>;
    injected: client.Counter<'engine'>;
    logErrors: client.Counter<'engine'>;
    up: client.Gauge<'engine' | 'role'>;
  } | null = null;
  private readonly exitHook = (): void => {
    for (const e of this.engines) killGroupNow(e.proc?.pgid);
  };

  constructor(opts: SupervisorOptions) {
    this.opts = opts;
    this.config = opts.config;
    this.logDir = join(opts.config.stateDir, 'logs');
    const plans = buildEnginePlans(opts.config, { connector: opts.connector.name, command: opts.command, logDir: this.logDir });
    this.engines = plans.map((plan) => ({
      plan,
      proc: null,
      counters: emptyCounters(),
      stopping: false,
      state: {
        name: plan.name,
        role: plan.role,
        gpus: plan.gpus,
        port: plan.port,
        url: plan.url,
        pid: null,
        pgid: null,
        logFile: plan.logFile,
        argv: plan.argv,
        status: 'starting',
        restarts: 0,
        startedAt: null,
        cacheHits: 0,
        cacheInjectedTokens: 0,
        errors: 0,
        pastPgids: [],
      },
    }));
  }

  /** Add listeners (merged over those given to the constructor). */
  addEvents(events: SupervisorEvents): void {
    this.opts.events = { ...this.opts.events, ...events };
  }

  get proxyHandle(): ProxyHandle | null {
    return this.proxy;
  }

  get proxyLogFile(): string {
    return join(this.logDir, 'proxy.log');
  }

  /** The model id engines list in /v1/models. */
  private modelId(): string {
    return this.config.servedModelName ?? this.config.model;
  }

  snapshot(): StackState {
    const stats = this.proxy?.stats();
    return {
      version: 1,
      supervisorPid: process.pid,
      startedAt: this.startedAt,
      updatedAt: new Date().toISOString(),
      configPath: this.opts.configPath,
      configHash: configHash(this.config),
      simulate: this.opts.simulate,
      connector: this.opts.connector.name,
      model: this.config.model,
      sharedStoragePath: isSharedStorageConnector(this.opts.connector.name) ? this.config.kv.sharedStoragePath : null,
      logDir: this.logDir,
      phase: this.phase,
      proxy: this.proxy
        ? {
            url: this.proxy.url,
            host: this.config.proxy.host,
            port: this.proxy.port,
            logFile: this.proxyLogFile,
            inFlight: stats?.inFlight ?? 0,
            queued: stats?.queued ?? 0,
            requestsTotal: stats?.requestsTotal ?? 0,
            reqPerSec: stats?.reqPerSec ?? 0,
            rejected: stats?.rejected ?? 0,
          }
        : null,
      engines: this.engines.map((e) => ({
        ...e.state,
        cacheHits: e.counters.cacheHits,
        cacheInjectedTokens: e.counters.injectedTokens,
        errors: e.counters.errors,
      })),
    };
  }

  private async saveState(): Promise<void> {
    await writeStackState(this.config.stateDir, this.snapshot()).catch(() => undefined);
  }

  private notice(message: string): void {
    this.opts.events?.notice?.(message);
  }

  private onEngineLine(engine: Engine, line: string): void {
    const before = engine.counters.injectedTokens;
    const event = watchLine(line, engine.counters);
    if (this.metrics && event) {
      const labels = { engine: engine.plan.name };
      if (event === 'cache-hit') this.metrics.cacheHits.inc(labels);
      else if (event === 'error') this.metrics.logErrors.inc(labels);
      else if (event === 'inject') this.metrics.injected.inc(labels, engine.counters.injectedTokens - before);
    }
    this.opts.events?.engineLine?.(engine.plan.name, line);
  }

  private async spawn(engine: Engine): Promise<EngineProcess> {
    const proc = await spawnEngine(engine.plan, {
      banner: `----- pd: starting ${engine.plan.name} at ${new Date().toISOString()} -----`,
      onLine: (line) => this.onEngineLine(engine, line),
    });
    engine.proc = proc;
    engine.state.pid = proc.pid;
    engine.state.pgid = proc.pgid;
    engine.state.startedAt = new Date().toISOString();
    if (proc.pgid) engine.state.pastPgids.push(proc.pgid);
    return proc;
  }

  /** Wait until an engine is healthy; fail at once if it exits first. */
  private async awaitEngine(engine: Engine, proc: EngineProcess, signal: AbortSignal): Promise<void> {
    const t0 = Date.now();
    const local = new AbortController();
    const onAbort = (): void => local.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const exited = proc.exited.then((exit) => ({ kind: 'exit' as const, exit }));
    const healthy = waitHealthy(engine.plan.url, {
      model: this.modelId(),
      deadlineMs: this.config.health.timeoutSeconds * 1000,
      intervalMs: this.config.health.intervalMs,
      apiKey: this.config.engine.apiKey,
      signal: local.signal,
      onProbe: (p) => this.opts.events?.engineProgress?.(engine.plan.name, p, Date.now() - t0),
    }).then((r) => ({ kind: 'health' as const, r }));
    try {
      const first = await Promise.race([exited, healthy]);
      if (first.kind === 'exit') throw this.startFailure(engine, proc, `exited during start-up (${describeExit(first.exit)})`);
      if (signal.aborted) throw new RuntimeError(`${engine.plan.name}: start-up cancelled`);
      if (!first.r.ok) {
        throw this.startFailure(
          engine,
          proc,
          first.r.timedOut
            ? `was not healthy within ${this.config.health.timeoutSeconds} s (last probe: ${first.r.detail})`
            : `did not become healthy (${first.r.detail})`,
        );
      }
      // A healthy answer only counts while our own process is alive (not another server on the same port).
      if (proc.hasExited()) throw this.startFailure(engine, proc, `exited during start-up (${describeExit(await proc.exited)})`);
      engine.state.status = 'healthy';
      this.opts.events?.engineReady?.(engine.plan.name, Date.now() - t0);
    } finally {
      local.abort();
      signal.removeEventListener('abort', onAbort);
    }
  }

  private startFailure(engine: Engine, proc: EngineProcess, what: string): RuntimeError {
    const tail = proc.tail(25);
    const d = diagnose(tail.join('\n'), {
      name: engine.plan.name,
      port: engine.plan.port,
      gpus: engine.plan.gpus,
      model: this.config.model,
    });
    engine.state.status = 'failed';
    return new RuntimeError(`${engine.plan.name} ${what}${d ? `: ${d.cause}` : ''}`, {
      details: [`last lines of ${engine.plan.logFile}:`, ...tail.slice(-15).map((l) => `  ${l}`)],
      hint: d?.hint ?? `Read the whole log with \`pd logs ${engine.plan.name}\`.`,
    });
  }

  /** Start everything. On failure, everything started is stopped again and a diagnosed error is thrown. */
  async start(): Promise<void> {
    this.releaseLock = await acquireLock(this.config.stateDir);
    try {
      const previous = await readStackState(this.config.stateDir);
      if (previous && stateIsLive(previous)) {
        const pids = previous.engines.map((e) => e.pid).filter(Boolean).join(', ');
        throw new RuntimeError(`a previous stack from ${this.config.stateDir} is still running (engine pids ${pids || 'unknown'})`, {
          hint: 'Run `pd down` first (it also cleans up after a supervisor that was killed).',
        });
      }
      await mkdir(this.logDir, { recursive: true });
      for (const e of this.engines) await rotateLog(e.plan.logFile);
      await rotateLog(this.proxyLogFile);
      if (isSharedStorageConnector(this.opts.connector.name)) {
        await mkdir(this.config.kv.sharedStoragePath, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
          throw new RuntimeError(`cannot create the shared storage folder ${this.config.kv.sharedStoragePath} (${err.code})`, {
            hint: 'Create it with the right owner (e.g. `sudo mkdir -p DIR && sudo chown $USER DIR`) or change kv.sharedStoragePath.',
          });
        });
      }
      // Another server on an engine's port would answer /health for it: refuse before anything starts.
      for (const e of this.engines) {
        if (!(await portFree(e.plan.port, e.plan.host))) {
          throw new RuntimeError(`${e.plan.name} cannot start: port ${e.plan.port} is already in use`, {
            hint: `Stop whatever listens on ${e.plan.port} (\`ss -ltnp 'sport = :${e.plan.port}'\`), or give ${e.plan.name} another port in the config.`,
          });
        }
      }
      process.on('exit', this.exitHook);
      await this.saveState();

      await Promise.all(this.engines.map((e) => this.spawn(e)));
      await this.saveState();
      await Promise.all(this.engines.map((e) => this.awaitEngine(e, e.proc!, this.abort.signal))).catch((err) => {
        this.abort.abort();
        throw err;
      });

      this.proxyLog = await openLog(this.proxyLogFile);
      try {
        this.proxy = await startProxy({
          ...proxyOptionsFromConfig(this.config, this.opts.connector.name),
          log: (line) => {
            this.proxyLog?.write(line.endsWith('\n') ? line : line + '\n');
            this.opts.events?.proxyLine?.(line.replace(/\n$/, ''));
          },
        });
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code;
        throw new RuntimeError(
          code === 'EADDRINUSE'
            ? `the proxy cannot listen on ${this.config.proxy.host}:${this.config.proxy.port}: port already in use`
            : `the proxy did not start: ${(err as Error).message}`,
          { hint: code === 'EADDRINUSE' ? 'Stop what uses that port or pass --port.' : undefined },
        );
      }
      this.registerMetrics(this.proxy);
      this.startJanitor(this.proxy);
      for (const e of this.engines) {
        e.proc!.exited.then((exit) => this.onEngineExit(e, exit));
      }
      this.phase = 'ready';
      await this.saveState();
      this.refresher = setInterval(() => void this.saveState(), 1000);
      this.refresher.unref();
    } catch (err) {
      this.phase = 'failed';
      await this.saveState();
      await this.stop('start-up failed');
      throw err;
    }
  }

  private registerMetrics(proxy: ProxyHandle): void {
    const registers = [proxy.registry];
    const engines = this.engines;
    this.metrics = {
      restarts: new client.Counter({ name: 'pd_engine_restarts_total', help: 'Engine restarts by the supervisor', labelNames: ['engine'], registers }),
      cacheHits: new client.Counter({ name: 'pd_engine_kv_cache_hits_total', help: 'External Cache Hit! lines in engine logs', labelNames: ['engine'], registers }),
      injected: new client.Counter({ name: 'pd_engine_kv_injected_tokens_total', help: 'Tokens reported by Inject KV cache lines', labelNames: ['engine'], registers }),
      logErrors: new client.Counter({ name: 'pd_engine_log_errors_total', help: 'ERROR lines and tracebacks in engine logs', labelNames: ['engine'], registers }),
      up: new client.Gauge({
        name: 'pd_engine_up',
        help: '1 when the engine process is running and healthy',
        labelNames: ['engine', 'role'],
        registers,
        // Computed when scraped, from the supervisor's view of each engine.
        collect() {
          for (const e of engines) this.set({ engine: e.plan.name, role: e.plan.role }, e.state.status === 'healthy' ? 1 : 0);
        },
      }),
    };
    const { injected } = this.metrics;
    // Export every series from the start (0), so rates and before/after differences work from the first scrape.
    for (const e of this.engines) {
      for (const c of [this.metrics.restarts, this.metrics.cacheHits, injected, this.metrics.logErrors]) c.inc({ engine: e.plan.name }, 0);
    }
  }

  /** Keep the shared storage within kv.cache (maxBytes / maxAgeSeconds) while the stack runs. */
  private startJanitor(proxy: ProxyHandle): void {
    const budget = this.config.kv.cache;
    if (!isSharedStorageConnector(this.opts.connector.name) || !budgetIsActive(budget)) return;
    const evictions = new client.Counter({
      name: 'pd_kv_cache_evictions_total',
      help: 'KV cache entries removed by the janitor to keep kv.cache within budget',
      labelNames: ['reason'],
      registers: [proxy.registry],
    });
    const evictedBytes = new client.Counter({
      name: 'pd_kv_cache_evicted_bytes_total',
      help: 'Bytes freed by the janitor',
      registers: [proxy.registry],
    });
    this.janitor = startJanitor({
      path: this.config.kv.sharedStoragePath,
      budget,
      log: (line) => this.notice(line),
      onEvict: (e) => {
        evictions.inc({ reason: e.reason });
        evictedBytes.inc(e.bytes);
      },
    });
  }

  private async onEngineExit(engine: Engine, exit: EngineExit): Promise<void> {
    if (engine.stopping || this.phase !== 'ready') return;
    const name = engine.plan.name;
    this.proxy?.setEngineHealthy(name, false);
    engine.state.status = 'exited';
    this.notice(`${name} exited (${describeExit(exit)}); the proxy stopped routing to it`);
    const policy = this.config.supervisor;
    if (policy.restart === 'never' || engine.state.restarts >= policy.maxRestarts) {
      engine.state.status = 'failed';
      this.notice(
        policy.restart === 'never'
          ? `${name} is down for good (supervisor.restart is "never")`
          : `${name} is down for good: it was restarted ${engine.state.restarts} times (supervisor.maxRestarts)`,
      );
      await this.saveState();
      return;
    }
    const delay = Math.min(30_000, policy.backoffMs * 2 ** engine.state.restarts);
    engine.state.status = 'restarting';
    engine.state.restarts++;
    this.metrics?.restarts.inc({ engine: name });
    await this.saveState();
    this.notice(`restarting ${name} in ${(delay / 1000).toFixed(1)} s (restart ${engine.state.restarts}/${policy.maxRestarts})`);
    await abortableSleep(delay, this.abort.signal);
    if (this.phase !== 'ready') return;
    if (!(await portFree(engine.plan.port, engine.plan.host))) {
      this.notice(`${name} cannot restart: port ${engine.plan.port} is taken by another process`);
      engine.state.status = 'failed';
      await this.saveState();
      return;
    }
    const proc = await this.spawn(engine);
    await this.saveState();
    try {
      await this.awaitEngine(engine, proc, this.abort.signal);
      if (this.phase !== 'ready') return;
      this.proxy?.setEngineHealthy(name, true);
      this.notice(`${name} is healthy again and back in rotation`);
      proc.exited.then((e) => this.onEngineExit(engine, e));
    } catch (err) {
      this.notice(`${name} failed to restart: ${(err as Error).message}`);
      if (!proc.hasExited()) {
        engine.stopping = true;
        await stopGroup(proc.pgid!, this.config.supervisor.stopGraceSeconds * 1000);
        engine.stopping = false;
      }
      await this.onEngineExit(engine, await proc.exited);
    }
    await this.saveState();
  }

  /** Stop everything this supervisor started; safe to call more than once. */
  stop(reason = 'stop requested'): Promise<StopReport> {
    this.stopPromise ??= this.doStop(reason);
    return this.stopPromise;
  }

  private async doStop(reason: string): Promise<StopReport> {
    this.phase = 'stopping';
    this.abort.abort();
    if (this.refresher) clearInterval(this.refresher);
    this.notice(`stopping (${reason})`);
    await this.saveState();
    await this.janitor?.stop().catch(() => undefined);
    let proxyClosed = false;
    if (this.proxy) {
      await this.proxy.close().catch(() => undefined);
      proxyClosed = true;
    }
    const grace = this.config.supervisor.stopGraceSeconds * 1000;
    const engines = await Promise.all(
      this.engines.map(async (e) => {
        e.stopping = true;
        const pgid = e.proc?.pgid ?? null;
        const result = pgid ? await stopGroup(pgid, grace) : { pgid: 0, how: 'gone' as const };
        // Earlier generations of a restarted engine, in case a worker outlived its leader.
        for (const old of e.state.pastPgids) if (old !== pgid) await stopGroup(old, grace);
        if (e.proc) await Promise.race([e.proc.exited, sleep(2_000)]);
        return { name: e.plan.name, pid: e.proc?.pid ?? null, how: result.how };
      }),
    );
    await new Promise<void>((r) => (this.proxyLog ? this.proxyLog.end(r) : r()));
    process.off('exit', this.exitHook);
    await removeStackState(this.config.stateDir);
    await this.releaseLock?.();
    return { engines, proxy: proxyClosed };
  }
}

function abortableSleep(ms: number, signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) return resolve();
    const t = setTimeout(done, ms);
    function done(): void {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

export function describeExit(exit: EngineExit): string {
  if (exit.spawnError) return `could not be started: ${exit.spawnError}`;
  if (exit.signal) return `killed by ${exit.signal}`;
  return `exit code ${exit.code}`;
}
