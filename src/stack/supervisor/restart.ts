/**
 * Restarting engines that die while the stack serves (after concurrently's restart-process controller): a budget
 * of `maxRestarts` per engine inside a sliding window of `restartWindowSeconds`, so an engine that crashes now and
 * then is restarted for ever while one that crash-loops is left down for good, with a doubling back-off.
 */
import type { PdConfig } from '../../config/schema.js';
import { sleep } from '../../util/timers.js';
import { describeExit, type EngineRunner } from './engine-runner.js';
import type { EngineExit } from '../engine-process.js';

/** Crash times of one engine inside the window (pure bookkeeping, testable with any clock). */
export class RestartBudget {
  private readonly times: number[] = [];

  constructor(
    readonly maxRestarts: number,
    readonly windowMs: number,
  ) {}

  /** Restarts that still count at `now`. */
  recent(now: number): number {
    while (this.times.length > 0 && now - this.times[0]! >= this.windowMs) this.times.shift();
    return this.times.length;
  }

  /** Record a restart at `now` if the budget allows one; false when it is spent. */
  take(now: number): boolean {
    if (this.recent(now) >= this.maxRestarts) return false;
    this.times.push(now);
    return true;
  }
}

export function backoffMs(firstMs: number, attempt: number): number {
  return Math.min(30_000, firstMs * 2 ** Math.max(0, attempt - 1));
}

/** What the restart controller needs from the supervisor. */
export interface RestartHost {
  /** True while the stack serves (restarts stop once a stop begins). */
  serving(): boolean;
  signal: AbortSignal;
  notice(message: string): void;
  /** Take the engine out of rotation / put it back. */
  setInRotation(engine: EngineRunner, inRotation: boolean): void;
  /** Start a new generation and wait until it is healthy (throws when it fails). */
  respawn(engine: EngineRunner): Promise<void>;
  portFree(engine: EngineRunner): Promise<boolean>;
  restarted(engine: EngineRunner, attempt: number): void;
  downForGood(engine: EngineRunner, reason: string): void;
  save(): Promise<void>;
  stopGeneration(engine: EngineRunner): Promise<void>;
}

export class RestartController {
  private readonly budgets = new Map<string, RestartBudget>();

  constructor(
    private readonly policy: PdConfig['supervisor'],
    private readonly host: RestartHost,
    private readonly now: () => number = Date.now,
  ) {}

  private budget(name: string): RestartBudget {
    let b = this.budgets.get(name);
    if (!b) {
      b = new RestartBudget(this.policy.maxRestarts, this.policy.restartWindowSeconds * 1000);
      this.budgets.set(name, b);
    }
    return b;
  }

  /** An engine exited while serving: restart it within the budget, or leave it down for good. */
  async onExit(engine: EngineRunner, exit: EngineExit): Promise<void> {
    const h = this.host;
    if (!h.serving() || engine.stopping) return;
    h.setInRotation(engine, false);
    engine.state.status = 'exited';
    h.notice(`${engine.name} exited (${describeExit(exit)}); the proxy stopped routing to it`);
    const budget = this.budget(engine.name);
    if (this.policy.restart === 'never') return this.giveUp(engine, 'supervisor.restart is "never"');
    if (!budget.take(this.now())) {
      const crashes = budget.recent(this.now()) + 1;
      return this.giveUp(
        engine,
        `it crashed ${crashes} time${crashes === 1 ? '' : 's'} within ${this.policy.restartWindowSeconds} s ` +
          `(supervisor.maxRestarts ${this.policy.maxRestarts} per supervisor.restartWindowSeconds)`,
      );
    }
    const attempt = budget.recent(this.now());
    engine.state.restarts++;
    engine.state.recentRestarts = attempt;
    engine.state.status = 'restarting';
    await h.save();
    const delay = backoffMs(this.policy.backoffMs, attempt);
    h.notice(`restarting ${engine.name} in ${(delay / 1000).toFixed(1)} s (${attempt}/${this.policy.maxRestarts} within ${this.policy.restartWindowSeconds} s)`);
    await sleep(delay, h.signal);
    if (!h.serving()) return;
    if (!(await h.portFree(engine))) return this.giveUp(engine, `port ${engine.plan.port} is taken by another process`);
    try {
      await h.respawn(engine);
    } catch (err) {
      h.notice(`${engine.name} failed to restart: ${(err as Error).message}`);
      if (!h.serving()) return;
      await h.stopGeneration(engine);
      const proc = engine.proc;
      return this.onExit(engine, proc ? await proc.exited : { code: null, signal: null });
    }
    if (!h.serving()) return;
    h.setInRotation(engine, true);
    h.restarted(engine, attempt);
    h.notice(`${engine.name} is healthy again and back in rotation`);
    await h.save();
  }

  private async giveUp(engine: EngineRunner, reason: string): Promise<void> {
    engine.state.status = 'failed';
    engine.state.downReason = reason;
    this.host.downForGood(engine, reason);
    this.host.notice(`${engine.name} is down for good: ${reason}`);
    await this.host.save();
  }
}
