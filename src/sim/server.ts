/**
 * The simulated `vllm serve` process: it wires the parts (log script, engine configuration, connector, engine
 * cores, HTTP routes) and owns the lifetimes — start-up sequence, periodic stats, engine death and shutdown.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { Engine } from './engine.js';
import { BlockPool } from './blocks.js';
import { SimLogger } from './log.js';
import { SimMetrics } from './metrics.js';
import { isZeroLatency, type SimOptions } from './options.js';
import { KvConnector } from './connector.js';
import { EngineConfigError, planEngine, type EngineConfig } from './engine-config.js';
import { GeometryError } from './geometry.js';
import { Generation, engineDeadBody } from './generate.js';
import { HttpApi } from './http.js';
import { Responder } from './respond.js';
import type { SimContext } from './context.js';
import { VllmLogScript } from './vllm-log.js';

export { StartupFailure } from './vllm-log.js';

export class SimServer implements SimContext {
  readonly log: SimLogger;
  readonly script: VllmLogScript;
  readonly opts: SimOptions;
  readonly plan: EngineConfig;
  readonly maxModelLen: number;
  readonly engines: Engine[];
  readonly metrics: SimMetrics;
  readonly connector: KvConnector;
  readonly zero: boolean;
  readonly inflight = new Map<ServerResponse, IncomingMessage>();
  private readonly planError: Error | null = null;
  private readonly responder: Responder;
  private readonly api: HttpApi;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private dead = false;
  private shuttingDown = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private statsPrompt = 0;
  private statsGen = 0;
  private statsPrefixQueries = 0;
  private statsPrefixHits = 0;
  private lastStatsAt = performance.now();
  private nextEngine = 0;
  /** Resolves with the exit code once the server has stopped (shutdown or crash). */
  readonly exited: Promise<number>;
  private resolveExit!: (code: number) => void;
  /** Called when the process should exit (main.ts wires process.exit). */
  onExit: (code: number) => void = () => undefined;

  constructor(opts: SimOptions, readonly env: NodeJS.ProcessEnv = process.env, log = new SimLogger()) {
    this.opts = opts;
    this.log = log;
    this.script = new VllmLogScript(log);
    const k = opts.knobs;
    const gpu = { memoryGib: k.gpuMemoryGib, name: k.gpuName, nodeGpus: k.gpuCount, geometryOverride: k.modelGeometry };
    let plan: EngineConfig;
    try {
      plan = planEngine(opts, gpu, env);
    } catch (e) {
      if (!(e instanceof EngineConfigError) && !(e instanceof GeometryError)) throw e;
      this.planError = e;
      // Build the rest on a permissive plan; start() reports the error the way vLLM does.
      plan = planEngine({ ...opts, tensorParallelSize: 1, pipelineParallelSize: 1, dataParallelSize: 1, maxModelLen: 16, gpuMemoryUtilization: 0.9 }, { ...gpu, memoryGib: 1e6, geometryOverride: '' }, {});
    }
    this.plan = plan;
    this.maxModelLen = plan.maxModelLen;
    this.zero = isZeroLatency(k);
    this.exited = new Promise((r) => (this.resolveExit = r));
    this.metrics = new SimMetrics(opts.servedModelNames[0]!, this.maxModelLen, () => this.engineStats());
    const hbm = k.hbmGbps > 0 ? k.hbmGbps * 1e6 : Infinity;
    this.engines = Array.from({ length: plan.dp }, (_, rank) => {
      const engine = new Engine(k, {
        maxNumSeqs: plan.maxNumSeqs,
        maxNumBatchedTokens: plan.maxNumBatchedTokens,
        chunkedPrefill: plan.chunkedPrefill,
        pool: new BlockPool(plan.numGpuBlocks, plan.blockSize, plan.prefixCaching),
        cost: {
          tp: plan.tp, pp: plan.pp, layers: plan.geometry.layers, kvBytesPerTokenPerGpu: plan.kvBytesPerTokenPerGpu,
          hbmBytesPerMs: hbm, allReduceMs: k.allReduceUs / 1000, ppHopMs: k.ppHopMs,
        },
      });
      engine.events = {
        step: (p, g) => {
          this.statsPrompt += p;
          this.statsGen += g;
          this.metrics.addTokens(p, g);
        },
        prefixCache: (q, h) => {
          this.statsPrefixQueries += q;
          this.statsPrefixHits += h;
          this.metrics.prefixQueries.inc(this.metrics.l, q);
          if (h > 0) this.metrics.prefixHits.inc(this.metrics.l, h);
        },
        preempted: (seq, total) => {
          this.metrics.preemptions.inc(this.metrics.l);
          this.script.preempted(seq.params.promptIds.length, total, rank);
        },
      };
      return engine;
    });
    this.connector = new KvConnector(opts, env, this.metrics, log, plan);
    this.responder = new Responder(opts, log);
    this.api = new HttpApi(this, this.responder, new Generation(this, this.responder));
  }

  isDead(): boolean {
    return this.dead;
  }

  pickEngine(): Engine {
    if (this.engines.length === 1) return this.engines[0]!;
    // Least loaded, ties in turn (vLLM's DP coordinator balances by queue lengths).
    let best = this.engines[this.nextEngine % this.engines.length]!;
    for (const e of this.engines) if (e.load < best.load) best = e;
    this.nextEngine++;
    return best;
  }

  private engineStats(): { running: number; waiting: number; kvUsage: number } {
    let running = 0;
    let waiting = 0;
    let usage = 0;
    for (const e of this.engines) {
      running += e.stats.running;
      waiting += e.stats.waiting;
      usage += e.kvUsage;
    }
    return { running, waiting, kvUsage: usage / this.engines.length };
  }

  /** Fail early when the port is taken (vLLM binds its socket before building the engine). */
  private async probePort(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      const s = createNetServer();
      s.once('error', reject);
      s.listen({ port: this.opts.port, host: this.opts.host ?? undefined, exclusive: true }, () => s.close(() => resolve()));
    }).catch((e: NodeJS.ErrnoException) => this.script.listenFailed(e));
  }

  /** Run the start-up sequence; resolves once the server accepts requests. Throws StartupFailure. */
  async start(): Promise<void> {
    const o = this.opts;
    const k = o.knobs;
    this.script.apiServerStart(o, this.connector.info());
    if (this.planError instanceof EngineConfigError && this.planError.where === 'api') this.script.configFailure(this.planError, o);
    if (this.planError instanceof GeometryError) this.script.configFailure(new EngineConfigError(this.planError.message, 'api', 'ModelConfig'), o);
    await this.probePort();
    this.script.engineStart(o, this.plan, this.connector.info(), this.env.CUDA_VISIBLE_DEVICES);
    if (this.planError instanceof EngineConfigError) this.script.configFailure(this.planError, o);
    this.connector.validate(this.script);
    try {
      await Promise.all([this.connector.start(), k.startupDelay > 0 ? sleep(k.startupDelay * 1000) : null]);
    } catch (e) {
      this.connector.close();
      this.script.connectorFailure((e as Error).message, 'engine');
    }
    if (this.shuttingDown) return;
    if (k.failStartup) this.script.startupFault(k.failStartup, o.model);
    this.script.engineReady(o, this.plan);
    const server = createServer({ keepAliveTimeout: 5000, requestTimeout: 0, headersTimeout: 60_000 }, (req, res) =>
      this.api.handle(req, res),
    );
    server.on('connection', (s: Socket) => {
      this.sockets.add(s);
      s.setNoDelay(true);
      s.on('close', () => this.sockets.delete(s));
    });
    server.maxHeadersCount = 200;
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ port: o.port, host: o.host ?? undefined, backlog: 4096 }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e: NodeJS.ErrnoException) => this.script.listenFailed(e));
    this.server = server;
    const addr = server.address();
    this.script.serverStarted(o.host, addr && typeof addr === 'object' ? addr.port : o.port);
    if (k.crashAfterSeconds > 0) this.timers.push(setTimeout(() => this.die('crash-after-seconds'), k.crashAfterSeconds * 1000));
    if (!o.nonDefaultArgs.disable_log_stats) {
      const stats = setInterval(() => this.logStats(), 10_000);
      stats.unref();
      this.timers.push(stats);
    }
  }

  private logStats(): void {
    const now = performance.now();
    const dt = (now - this.lastStatsAt) / 1000;
    const { running, waiting, kvUsage } = this.engineStats();
    if (this.statsPrompt === 0 && this.statsGen === 0 && running === 0 && waiting === 0) {
      this.lastStatsAt = now;
      return;
    }
    const c = this.connector;
    this.script.stats({
      promptTps: this.statsPrompt / dt,
      genTps: this.statsGen / dt,
      running,
      waiting,
      kvUsage,
      prefixHitRate: this.statsPrefixQueries ? this.statsPrefixHits / this.statsPrefixQueries : 0,
      externalHitRate: c.kind === 'none' ? null : c.queries ? c.hits / c.queries : 0,
    });
    this.statsPrompt = 0;
    this.statsGen = 0;
    this.lastStatsAt = now;
  }

  /** Engine death (fault): /health turns 503 at once, in-flight requests fail, then the process exits 1. */
  die(reason: string): void {
    if (this.dead) return;
    this.dead = true;
    this.script.engineDead(reason);
    for (const e of this.engines) e.abortAll();
    const dead = engineDeadBody();
    for (const [res, req] of this.inflight) {
      if (res.writableEnded) continue;
      if (res.headersSent) {
        res.write(`data: ${JSON.stringify(dead)}\n\n`);
        res.end('data: [DONE]\n\n');
      } else this.responder.send(req, res, 500, dead);
    }
    this.timers.push(setTimeout(() => void this.shutdown(1), 500));
  }

  /** Graceful shutdown (SIGTERM/SIGINT): uvicorn's lines, in-flight requests get a moment to finish. */
  async shutdown(code = 0): Promise<void> {
    if (this.shuttingDown) return;
    this.shuttingDown = true;
    for (const t of this.timers) clearTimeout(t);
    if (this.server) {
      this.script.shutdownStarted();
      const server = this.server;
      const closed = new Promise<void>((r) => server.close(() => r()));
      server.closeIdleConnections();
      let timer: NodeJS.Timeout | undefined;
      const deadline = new Promise<void>((r) => {
        timer = setTimeout(() => {
          for (const s of this.sockets) s.destroy();
          r();
        }, 2000);
      });
      await Promise.race([closed, deadline]);
      clearTimeout(timer);
      this.script.shutdownDone();
    }
    for (const e of this.engines) e.abortAll();
    this.connector.close();
    this.log.flushSync();
    this.resolveExit(code);
    this.onExit(code);
  }
}

/** The start-up delay (run.ts ends the process at once on a signal during it). */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
