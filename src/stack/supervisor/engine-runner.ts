/**
 * One engine over its lifetime: each generation is spawned exactly as planned (plus the stack's identity marker),
 * waited for until healthy (failing at once if it exits first), and stopped with every earlier generation.
 */
import type { EnginePlan } from '../plan/engines.js';
import { spawnEngine, type EngineExit, type EngineProcess } from '../engine-process.js';
import { waitHealthy, type ProbeResult } from '../health.js';
import { diagnose } from '../diagnose.js';
import { emptyCounters, type LogCounters } from '../log-watch.js';
import { stopGroup, type StopResult } from '../process-group.js';
import { identityOf, STACK_ID_ENV } from '../identity.js';
import type { EngineState } from '../state.js';
import { RuntimeError } from '../../util/errors.js';

export interface EngineRunnerOptions {
  stackId: string;
  modelId: string;
  model: string;
  apiKey?: string;
  healthTimeoutMs: number;
  healthIntervalMs: number;
  onLine: (line: string) => void;
  onProbe: (probe: ProbeResult, elapsedMs: number) => void;
}

export function describeExit(exit: EngineExit): string {
  if (exit.spawnError) return `could not be started: ${exit.spawnError}`;
  if (exit.signal) return `killed by ${exit.signal}`;
  return `exit code ${exit.code}`;
}

export class EngineRunner {
  readonly state: EngineState;
  readonly counters: LogCounters = emptyCounters();
  proc: EngineProcess | null = null;
  /** Set while a deliberate stop is in progress, so the exit is not treated as a crash. */
  stopping = false;

  constructor(
    readonly plan: EnginePlan,
    private readonly opts: EngineRunnerOptions,
  ) {
    this.state = {
      name: plan.name,
      role: plan.role,
      gpus: plan.gpus,
      port: plan.port,
      url: plan.url,
      pid: null,
      pgid: null,
      startTime: null,
      logFile: plan.logFile,
      argv: plan.argv,
      status: 'starting',
      restarts: 0,
      recentRestarts: 0,
      downReason: null,
      startedAt: null,
      cacheHits: 0,
      cacheInjectedTokens: 0,
      errors: 0,
      generations: [],
    };
  }

  get name(): string {
    return this.plan.name;
  }

  /** The state as the state file records it (with the log counters). */
  snapshot(): EngineState {
    return {
      ...this.state,
      cacheHits: this.counters.cacheHits,
      cacheInjectedTokens: this.counters.injectedTokens,
      errors: this.counters.errors,
    };
  }

  async spawn(): Promise<EngineProcess> {
    const proc = await spawnEngine(this.plan, {
      banner: `----- pd: starting ${this.plan.name} at ${new Date().toISOString()} -----`,
      env: { [STACK_ID_ENV]: this.opts.stackId },
      onLine: this.opts.onLine,
    });
    this.proc = proc;
    const identity = proc.pid === null ? null : identityOf(proc.pid);
    this.state.pid = proc.pid;
    this.state.pgid = proc.pgid;
    this.state.startTime = identity?.startTime ?? null;
    this.state.startedAt = new Date().toISOString();
    this.state.status = 'starting';
    if (identity) this.state.generations.push(identity);
    return proc;
  }

  /** Wait until this generation is healthy; throw a diagnosed error if it exits, times out or is cancelled. */
  async waitReady(signal: AbortSignal): Promise<number> {
    const proc = this.proc!;
    const t0 = Date.now();
    const local = new AbortController();
    const onAbort = (): void => local.abort();
    signal.addEventListener('abort', onAbort, { once: true });
    const exited = proc.exited.then((exit) => ({ kind: 'exit' as const, exit }));
    const healthy = waitHealthy(this.plan.url, {
      model: this.opts.modelId,
      deadlineMs: this.opts.healthTimeoutMs,
      intervalMs: this.opts.healthIntervalMs,
      apiKey: this.opts.apiKey,
      signal: local.signal,
      onProbe: (p) => this.opts.onProbe(p, Date.now() - t0),
    }).then((r) => ({ kind: 'health' as const, r }));
    try {
      const first = await Promise.race([exited, healthy]);
      if (first.kind === 'exit') throw this.failure(`exited during start-up (${describeExit(first.exit)})`);
      if (signal.aborted) throw new RuntimeError(`${this.name}: start-up cancelled`);
      if (!first.r.ok) {
        throw this.failure(
          first.r.timedOut
            ? `was not healthy within ${this.opts.healthTimeoutMs / 1000} s (last probe: ${first.r.detail})`
            : `did not become healthy (${first.r.detail})`,
        );
      }
      // A healthy answer only counts while our own process is alive (not another server on the same port).
      if (proc.hasExited()) throw this.failure(`exited during start-up (${describeExit(await proc.exited)})`);
      this.state.status = 'healthy';
      return Date.now() - t0;
    } finally {
      local.abort();
      signal.removeEventListener('abort', onAbort);
    }
  }

  private failure(what: string): RuntimeError {
    const tail = this.proc?.tail(25) ?? [];
    const d = diagnose(tail.join('\n'), { name: this.name, port: this.plan.port, gpus: this.plan.gpus, model: this.opts.model });
    this.state.status = 'failed';
    return new RuntimeError(`${this.name} ${what}${d ? `: ${d.cause}` : ''}`, {
      details: [`last lines of ${this.plan.logFile}:`, ...tail.slice(-15).map((l) => `  ${l}`)],
      hint: d?.hint ?? `Read the whole log with \`pd logs ${this.name}\`.`,
    });
  }

  /** Stop the current generation and any earlier one that outlived its leader. */
  async stop(graceMs: number): Promise<StopResult> {
    this.stopping = true;
    try {
      const current = this.state.pid !== null ? { pid: this.state.pid, startTime: this.state.startTime } : null;
      const result: StopResult = current ? await stopGroup(current, graceMs, this.opts.stackId) : { pgid: 0, how: 'gone' };
      for (const old of this.state.generations) if (old.pid !== current?.pid) await stopGroup(old, graceMs, this.opts.stackId);
      // Reap our own child so its exit is recorded (it is gone, or was refused as not ours).
      if (this.proc && result.how !== 'not ours' && result.how !== 'survived') await this.proc.exited;
      return result;
    } finally {
      this.stopping = false;
    }
  }
}
