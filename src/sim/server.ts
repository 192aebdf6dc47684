/**
 * The simulated `vllm serve` process: it wires the parts (log script, connector, engine, HTTP routes) and owns the
 * lifetimes — start-up sequence, periodic stats, engine death and graceful shutdown.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type Socket } from 'node:net';
import { Engine } from './engine.js';
import { SimLogger } from './log.js';
import { SimMetrics } from './metrics.js';
import { isZeroLatency, type SimOptions } from './options.js';
import { KvConnector } from './connector.js';
import { Generation, engineDeadBody } from './generate.js';
import { HttpApi } from './http.js';
import { Responder } from './respond.js';
import type { SimContext } from './context.js';
import { VllmLogScript } from './vllm-log.js';

export { StartupFailure } from './vllm-log.js';

export const DEFAULT_MAX_MODEL_LEN = 40960;
const KV_CAPACITY_TOKENS = 123_456;

export class SimServer implements SimContext {
  readonly log: SimLogger;
  readonly script: VllmLogScript;
  readonly opts: SimOptions;
  readonly maxModelLen: number;
  readonly engine: Engine;
  readonly metrics: SimMetrics;
  readonly connector: KvConnector;
  readonly zero: boolean;
  readonly inflight = new Map<ServerResponse, IncomingMessage>();
  private readonly responder: Responder;
  private readonly api: HttpApi;
  private server: Server | null = null;
  private readonly sockets = new Set<Socket>();
  private dead = false;
  private shuttingDown = false;
  private readonly timers: NodeJS.Timeout[] = [];
  private statsPrompt = 0;
  private statsGen = 0;
  private lastStatsAt = performance.now();
  /** Resolves with the exit code once the server has stopped (shutdown or crash). */
  readonly exited: Promise<number>;
  private resolveExit!: (code: number) => void;
  /** Called when the process should exit (main.ts wires process.exit). */
  onExit: (code: number) => void = () => undefined;

  constructor(opts: SimOptions, readonly env: NodeJS.ProcessEnv = process.env, log = new SimLogger()) {
    this.opts = opts;
    this.log = log;
    this.script = new VllmLogScript(log);
    this.maxModelLen = opts.maxModelLen > 0 ? opts.maxModelLen : DEFAULT_MAX_MODEL_LEN;
    this.engine = new Engine(opts.knobs, opts.maxNumSeqs);
    this.zero = isZeroLatency(opts.knobs);
    this.exited = new Promise((r) => (this.resolveExit = r));
    this.metrics = new SimMetrics(opts.servedModelNames[0]!, this.maxModelLen, () => ({
      ...this.engine.stats,
      kvUsage: this.kvUsage(),
    }));
    this.engine.onStep = (p, g) => {
      this.statsPrompt += p;
      this.statsGen += g;
      this.metrics.addTokens(p, g);
    };
    this.connector = new KvConnector(opts, env, this.metrics, log);
    this.responder = new Responder(opts, log);
    this.api = new HttpApi(this, this.responder, new Generation(this, this.responder));
  }

  isDead(): boolean {
    return this.dead;
  }

  private kvUsage(): number {
    return Math.min(1, (this.engine.stats.running * 512) / KV_CAPACITY_TOKENS);
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
    this.script.startup(this.opts, this.maxModelLen, this.connector.info(), this.env.CUDA_VISIBLE_DEVICES);
    this.connector.validate(this.script);
    await this.probePort();
    const k = this.opts.knobs;
    if (k.startupDelay > 0) await sleep(k.startupDelay * 1000);
    if (this.shuttingDown) return;
    if (k.failStartup) this.script.startupFault(k.failStartup, this.opts.model);
    this.script.engineReady(this.opts, this.maxModelLen, KV_CAPACITY_TOKENS);
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
      server.listen({ port: this.opts.port, host: this.opts.host ?? undefined, backlog: 4096 }, () => {
        server.off('error', reject);
        resolve();
      });
    }).catch((e: NodeJS.ErrnoException) => this.script.listenFailed(e));
    this.server = server;
    const addr = server.address();
    this.script.serverStarted(this.opts.host, addr && typeof addr === 'object' ? addr.port : this.opts.port);
    if (k.crashAfterSeconds > 0) this.timers.push(setTimeout(() => this.die('crash-after-seconds'), k.crashAfterSeconds * 1000));
    if (!this.opts.nonDefaultArgs.disable_log_stats) {
      const stats = setInterval(() => this.logStats(), 10_000);
      stats.unref();
      this.timers.push(stats);
    }
  }

  private logStats(): void {
    const now = performance.now();
    const dt = (now - this.lastStatsAt) / 1000;
    const { running, waiting } = this.engine.stats;
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
      kvUsage: this.kvUsage(),
      prefixHitRate: 0,
      externalHitRate: c.kind === 'shared-storage' || c.kind === 'nixl' ? (c.queries ? c.hits / c.queries : 0) : null,
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
    this.engine.abortAll();
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
    this.engine.abortAll();
    this.log.flushSync();
    this.resolveExit(code);
    this.onExit(code);
  }
}

/** The start-up delay (run.ts ends the process at once on a signal during it). */
function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
