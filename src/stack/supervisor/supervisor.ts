/**
 * The supervisor behind `pd up`: runs one stack plan. It spawns every engine as planned, waits for health in
 * parallel, starts the embedded proxy, keeps the state file current and tears it all down on stop. Everything
 * else is a small unit composed around it (after concurrently's flow controllers): restarts, metrics, the KV
 * cache janitor (passed in by the caller), the foreground view — each subscribed to the supervisor's events.
 */
import { mkdir, rename, stat } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import type { WriteStream } from 'node:fs';
import type { StackPlan } from '../plan/build.js';
import { proxyOptionsFromPlan } from '../plan/proxy-options.js';
import { openLog } from '../engine-process.js';
import { watchLine } from '../log-watch.js';
import { killGroupNow, type StopResult } from '../process-group.js';
import { portFree } from '../preflight.js';
import { findStackProcesses, identityOf, stackIdOf } from '../identity.js';
import { acquireLock, ensurePrivateDir, readStackState, removeStackState, stateIsLive, writeStackState, type StackState } from '../state.js';
import { RuntimeError } from '../../util/errors.js';
import { startProxy, type ProxyHandle } from '../../proxy/server.js';
import { SupervisorEvents } from './events.js';
import { EngineRunner } from './engine-runner.js';
import { RestartController } from './restart.js';
import { registerEngineMetrics } from './metrics.js';

/** Something with a lifetime that runs beside a ready stack (the janitor, a status sampler …). */
export interface SupervisorUnit {
  readonly name: string;
  start(ctx: UnitContext): void | Promise<void>;
  stop(): Promise<void>;
}

export interface UnitContext {
  plan: StackPlan;
  proxy: ProxyHandle;
  events: SupervisorEvents;
  notice(message: string): void;
}

export interface SupervisorOptions {
  plan: StackPlan;
  /** Units started once the stack is ready and stopped before it stops. */
  units?: SupervisorUnit[];
}

export interface StopReport {
  engines: Array<{ name: string; pid: number | null; how: StopResult['how'] }>;
  proxy: boolean;
}

export function configHash(plan: StackPlan): string {
  return createHash('sha256').update(JSON.stringify(plan.config)).digest('hex').slice(0, 16);
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
  readonly plan: StackPlan;
  readonly engines: EngineRunner[];
  readonly events = new SupervisorEvents();
  readonly stackId: string;
  private readonly units: SupervisorUnit[];
  private proxy: ProxyHandle | null = null;
  private releaseLock: (() => Promise<void>) | null = null;
  /** True once this supervisor wrote the state file (only then may it remove it). */
  private ownsState = false;
  private phase: StackState['phase'] = 'starting';
  private readonly startedAt = new Date().toISOString();
  private refresher: NodeJS.Timeout | null = null;
  private stopPromise: Promise<StopReport> | null = null;
  private readonly abort = new AbortController();
  private proxyLog: WriteStream | null = null;
  private startedUnits: SupervisorUnit[] = [];
  /** Spawns in progress: a stop waits for them, so no engine starts after the stop has swept. */
  private readonly spawning = new Set<Promise<void>>();
  private readonly restarts: RestartController;
  private readonly exitHook = (): void => {
    for (const e of this.engines) killGroupNow(e.proc?.hasExited() === false ? e.proc.pgid : null);
  };

  constructor(opts: SupervisorOptions) {
    this.plan = opts.plan;
    this.units = opts.units ?? [];
    this.stackId = stackIdOf(this.plan.stateDir);
    const { config } = this.plan;
    this.engines = this.plan.engines.map(
      (plan) =>
        new EngineRunner(plan, {
          stackId: this.stackId,
          modelId: this.plan.modelId,
          model: this.plan.model,
          apiKey: config.engine.apiKey,
          healthTimeoutMs: config.health.timeoutSeconds * 1000,
          healthIntervalMs: config.health.intervalMs,
          onLine: (line) => this.onEngineLine(plan.name, line),
          onProbe: (probe, ms) => this.events.emit('probe', plan.name, probe, ms),
        }),
    );
    this.restarts = new RestartController(config.supervisor, {
      serving: () => this.phase === 'ready' || this.phase === 'degraded',
      signal: this.abort.signal,
      notice: (m) => this.notice(m),
      setInRotation: (e, on) => this.proxy?.setEngineHealthy(e.name, on),
      respawn: async (e) => {
        await this.spawnEngine(e);
        await this.saveState();
        await e.waitReady(this.abort.signal);
      },
      portFree: (e) => portFree(e.plan.port, e.plan.host),
      restarted: (e, attempt) => {
        this.events.emit('restarted', e.name, attempt);
        this.updatePhase();
      },
      downForGood: (e, reason) => {
        this.proxy?.setEngineDown(e.name, reason);
        this.events.emit('down-for-good', e.name, reason);
        this.updatePhase();
      },
      save: () => this.saveState(),
      stopGeneration: async (e) => {
        await e.stop(config.supervisor.stopGraceSeconds * 1000);
      },
    });
  }

  get proxyHandle(): ProxyHandle | null {
    return this.proxy;
  }

  get logDir(): string {
    return this.plan.logDir;
  }

  get proxyLogFile(): string {
    return join(this.plan.logDir, 'proxy.log');
  }

  get currentPhase(): StackState['phase'] {
    return this.phase;
  }

  snapshot(): StackState {
    const stats = this.proxy?.stats();
    const { plan } = this;
    return {
      version: 2,
      stackId: this.stackId,
      supervisorPid: process.pid,
      supervisorStartTime: identityOf(process.pid).startTime,
      startedAt: this.startedAt,
      updatedAt: new Date().toISOString(),
      configPath: plan.configPath,
      configHash: configHash(plan),
      simulate: plan.simulate,
      topology: plan.topology,
      connector: plan.connector?.name ?? null,
      model: plan.model,
      sharedStoragePath: plan.sharedStoragePath,
      logDir: plan.logDir,
      phase: this.phase,
      proxy: this.proxy
        ? {
            url: this.proxy.url,
            host: plan.proxy.host,
            port: this.proxy.port,
            logFile: this.proxyLogFile,
            inFlight: stats?.inFlight ?? 0,
            queued: stats?.queued ?? 0,
            requestsTotal: stats?.requestsTotal ?? 0,
            reqPerSec: stats?.reqPerSec ?? 0,
            rejected: stats?.rejected ?? 0,
          }
        : null,
      engines: this.engines.map((e) => e.snapshot()),
    };
  }

  private async saveState(): Promise<void> {
    if (!this.ownsState) return;
    await writeStackState(this.plan.stateDir, this.snapshot()).catch(() => undefined);
  }

  private notice(message: string): void {
    this.events.emit('notice', message);
  }

  private setPhase(phase: StackState['phase']): void {
    if (this.phase === phase) return;
    this.phase = phase;
    this.events.emit('phase', phase);
  }

  /** ready while every engine serves; degraded while any is left down for good. */
  private updatePhase(): void {
    if (this.phase !== 'ready' && this.phase !== 'degraded') return;
    this.setPhase(this.engines.some((e) => e.state.status === 'failed') ? 'degraded' : 'ready');
  }

  private onEngineLine(name: string, line: string): void {
    const engine = this.engines.find((e) => e.name === name);
    if (engine) watchLine(line, engine.counters);
    this.events.emit('line', name, line);
  }

  private spawnEngine(engine: EngineRunner): Promise<void> {
    const p = this.doSpawn(engine).finally(() => this.spawning.delete(p));
    this.spawning.add(p);
    return p;
  }

  private async doSpawn(engine: EngineRunner): Promise<void> {
    const proc = await engine.spawn();
    void proc.exited.then((exit) => {
      // Only the generation that is current may report a crash (an older one was replaced on purpose).
      if (engine.proc !== proc || engine.stopping || (this.phase !== 'ready' && this.phase !== 'degraded')) return;
      this.events.emit('exit', engine.name, exit);
      void this.restarts.onExit(engine, exit);
    });
  }

  private async prepareFolders(): Promise<void> {
    await ensurePrivateDir(this.plan.logDir);
    for (const e of this.engines) await rotateLog(e.plan.logFile);
    await rotateLog(this.proxyLogFile);
    const storage = this.plan.sharedStoragePath;
    if (storage === null) return;
    await mkdir(storage, { recursive: true }).catch((err: NodeJS.ErrnoException) => {
      const readOnly = err.code === 'EROFS';
      throw new RuntimeError(`cannot create the shared storage folder ${storage} (${err.code})`, {
        hint: readOnly
          ? `${storage} is on a read-only filesystem: point kv.sharedStoragePath at a writable one (e.g. /dev/shm/pd_kv).`
          : 'Create it with the right owner (e.g. `sudo mkdir -p DIR && sudo chown $USER DIR`) or change kv.sharedStoragePath.',
      });
    });
  }

  /** Start everything. On failure, everything started is stopped again and a diagnosed error is thrown. */
  async start(): Promise<void> {
    try {
      this.releaseLock = await acquireLock(this.plan.stateDir);
      const previous = await readStackState(this.plan.stateDir).catch(() => null);
      // A damaged state file may hide a live stack: its processes still carry the state dir's id.
      const strays = findStackProcesses(this.stackId);
      if (previous === null && strays.length > 0) {
        throw new RuntimeError(`processes of an earlier stack from ${this.plan.stateDir} are still running (pids ${strays.map((p) => p.pid).join(', ')})`, {
          hint: 'Run `pd down` first: it finds them by their PD_STACK_ID even without a state file.',
        });
      }
      if (previous && stateIsLive(previous)) {
        // Not ours to touch: the state file keeps describing the live stack so `pd down` can still stop it.
        const pids = previous.engines.map((e) => e.pid).filter(Boolean).join(', ');
        throw new RuntimeError(`a previous stack from ${this.plan.stateDir} is still running (engine pids ${pids || 'unknown'})`, {
          hint: 'Run `pd down` first (it also cleans up after a supervisor that was killed).',
        });
      }
      await this.prepareFolders();
      // Another server on an engine's port would answer /health for it: refuse before anything starts.
      for (const e of this.engines) {
        if (!(await portFree(e.plan.port, e.plan.host))) {
          throw new RuntimeError(`${e.name} cannot start: port ${e.plan.port} is already in use`, {
            hint: `Stop whatever listens on ${e.plan.port} (\`ss -ltnp 'sport = :${e.plan.port}'\`), or give ${e.name} another port in the config.`,
          });
        }
      }
      this.throwIfStopping();
      process.on('exit', this.exitHook);
      this.ownsState = true;
      await this.saveState();

      await Promise.all(this.engines.map((e) => this.spawnEngine(e)));
      await this.saveState();
      await Promise.all(
        this.engines.map(async (e) => {
          const ms = await e.waitReady(this.abort.signal);
          this.events.emit('ready', e.name, ms);
        }),
      ).catch((err: unknown) => {
        this.abort.abort();
        throw err;
      });
      this.throwIfStopping();
      await this.startProxy();
      this.throwIfStopping();
      for (const unit of this.units) {
        await unit.start({ plan: this.plan, proxy: this.proxy!, events: this.events, notice: (m) => this.notice(m) });
        this.startedUnits.push(unit);
      }
      this.setPhase('ready');
      await this.saveState();
      this.refresher = setInterval(() => void this.saveState(), 1000);
      this.refresher.unref();
    } catch (err) {
      if (this.stopPromise === null) {
        this.setPhase('failed');
        await this.saveState();
      }
      await this.stop('start-up failed');
      throw err;
    }
  }

  private throwIfStopping(): void {
    if (this.stopPromise !== null) throw new RuntimeError('start-up cancelled', { hint: 'The stack was stopped while it started.' });
  }

  private async startProxy(): Promise<void> {
    this.proxyLog = await openLog(this.proxyLogFile);
    try {
      this.proxy = await startProxy(
        proxyOptionsFromPlan(this.plan, (line) => {
          this.proxyLog?.write(line.endsWith('\n') ? line : line + '\n');
          this.events.emit('proxy-line', line.replace(/\n$/, ''));
        }),
      );
    } catch (err) {
      const code = (err as NodeJS.ErrnoException).code;
      const { host, port } = this.plan.proxy;
      throw new RuntimeError(
        code === 'EADDRINUSE' ? `the proxy cannot listen on ${host}:${port}: port already in use` : `the proxy did not start: ${(err as Error).message}`,
        { hint: code === 'EADDRINUSE' ? 'Stop what uses that port or pass --port.' : undefined },
      );
    }
    registerEngineMetrics(this.proxy.registry, this.engines);
  }

  /** Stop everything this supervisor started; safe to call more than once. */
  stop(reason = 'stop requested'): Promise<StopReport> {
    this.stopPromise ??= this.doStop(reason);
    return this.stopPromise;
  }

  private async doStop(reason: string): Promise<StopReport> {
    const wasFailed = this.phase === 'failed';
    this.setPhase(wasFailed ? 'failed' : 'stopping');
    this.abort.abort();
    if (this.refresher) clearInterval(this.refresher);
    this.notice(`stopping (${reason})`);
    await this.saveState();
    for (const unit of this.startedUnits.reverse()) await unit.stop().catch(() => undefined);
    let proxyClosed = false;
    if (this.proxy) {
      await this.proxy.close().catch(() => undefined);
      proxyClosed = true;
    }
    const grace = this.plan.config.supervisor.stopGraceSeconds * 1000;
    await Promise.allSettled([...this.spawning]);
    const engines = await Promise.all(
      this.engines.map(async (e) => {
        const result = await e.stop(grace);
        return { name: e.name, pid: e.state.pid, how: result.how };
      }),
    );
    await new Promise<void>((r) => (this.proxyLog ? this.proxyLog.end(r) : r()));
    process.off('exit', this.exitHook);
    if (this.ownsState) await removeStackState(this.plan.stateDir);
    await this.releaseLock?.();
    return { engines, proxy: proxyClosed };
  }
}
