/** What the simulator's parts share: options, logs, metrics, the engine, the connector and the engine's health. */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Engine } from './engine.js';
import type { EngineConfig } from './engine-config.js';
import type { KvConnector } from './connector.js';
import type { SimLogger } from './log.js';
import type { SimMetrics } from './metrics.js';
import type { SimOptions } from './options.js';
import type { VllmLogScript } from './vllm-log.js';

export interface SimContext {
  readonly opts: SimOptions;
  readonly env: NodeJS.ProcessEnv;
  readonly log: SimLogger;
  readonly script: VllmLogScript;
  readonly metrics: SimMetrics;
  /** One engine core per data-parallel rank. */
  readonly engines: Engine[];
  /** The engine a new request goes to (DP: the least loaded, as vLLM's DP coordinator balances). */
  pickEngine(): Engine;
  readonly plan: EngineConfig;
  readonly connector: KvConnector;
  readonly maxModelLen: number;
  /** Every timing knob is 0: non-streaming requests run synchronously. */
  readonly zero: boolean;
  /** Responses in flight (answered with an error when the engine dies). */
  readonly inflight: Map<ServerResponse, IncomingMessage>;
  isDead(): boolean;
  /** Engine death (fault injection). */
  die(reason: string): void;
}
