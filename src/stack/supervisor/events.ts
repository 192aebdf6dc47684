/**
 * What a running stack tells its listeners (the foreground view, the metrics and restart units, the janitor):
 * one typed event bus, as concurrently's flow controllers each subscribe to the commands they care about.
 */
import { EventEmitter } from 'node:events';
import type { ProbeResult } from '../health.js';
import type { EngineExit } from '../engine-process.js';
import type { StackState } from '../state.js';

export interface SupervisorEventMap {
  /** A line an engine printed (written to its log file as well). */
  line: [engine: string, line: string];
  /** An access-log line or warning from the proxy. */
  'proxy-line': [line: string];
  /** Supervisor news for the person watching: restarts, evictions, shutdown steps. */
  notice: [message: string];
  /** A start-up health probe of one engine (first start and restarts). */
  probe: [engine: string, probe: ProbeResult, elapsedMs: number];
  /** An engine answered /health and lists the model. */
  ready: [engine: string, elapsedMs: number];
  /** An engine exited while the stack was serving (not during a deliberate stop). */
  exit: [engine: string, exit: EngineExit];
  /** An engine was started again after a crash (attempt counts restarts in the window). */
  restarted: [engine: string, attempt: number];
  /** An engine is left down for good. */
  'down-for-good': [engine: string, reason: string];
  phase: [phase: StackState['phase']];
}

export class SupervisorEvents extends EventEmitter<SupervisorEventMap> {
  constructor() {
    super();
    // Many small units subscribe to the same events; none of them is a leak.
    this.setMaxListeners(50);
  }
}
