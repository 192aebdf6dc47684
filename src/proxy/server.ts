/**
 * The PD proxy server: an embedded Hono app on @hono/node-server. Proxied requests run on the raw node req/res
 * in the request frame (frame.ts) — the two-stage routes through a direct fast path for exact
 * `POST /v1/completions` and `POST /v1/chat/completions`, everything else (/health, /metrics, other /v1/*)
 * through Hono.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import { RESPONSE_ALREADY_SENT } from '@hono/node-server/utils/response';
import type { Registry } from 'prom-client';
import type { ProxyConfig } from '../config/schema.js';
import { createEngine, setHealth, type EngineState, type Upstream } from './engine.js';
import { Balancer } from './balancer.js';
import { TokenBucket } from './token-bucket.js';
import { Admission } from './admission.js';
import { HealthProber } from './health.js';
import { ProxyMetrics, RecentRate } from './metrics.js';
import { batchedStderrSink } from './access-log.js';
import { Frame, type Route } from './frame.js';
import { Gate } from './gate.js';
import { BodyReader } from './body.js';
import { TwoStageRoute } from './two-stage.js';
import { ForwardRoute } from './forward.js';
import { openAiErrorBody } from './openai-error.js';

export type { Upstream } from './engine.js';

export type ProxyOptions = ProxyConfig & {
  producers: Upstream[];
  consumers: Upstream[];
  /** Resolved kv connector name, e.g. 'SharedStorageConnector' | 'ExampleConnector' | 'NixlConnector'. */
  connector: string;
  /** API key the engines require (replaces the client's Authorization upstream). */
  engineApiKey?: string;
  /** Sink for access-log lines and warnings (default: stderr, batched). */
  log?: (line: string) => void;
};

export interface EngineStats {
  name: string;
  role: 'producer' | 'consumer';
  healthy: boolean;
  inFlight: number;
}

export interface ProxyStats {
  inFlight: number;
  queued: number;
  requestsTotal: number;
  reqPerSec: number;
  rejected: number;
  engines: EngineStats[];
}

export interface ProxyHandle {
  url: string;
  port: number;
  registry: Registry;
  setEngineHealthy(name: string, healthy: boolean): void;
  stats(): ProxyStats;
  close(): Promise<void>;
}

function jsonResponse(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  if (opts.producers.length === 0) throw new TypeError('startProxy: at least one producer is required');
  if (opts.consumers.length === 0) throw new TypeError('startProxy: at least one consumer is required');
  const names = new Set<string>();
  for (const u of [...opts.producers, ...opts.consumers]) {
    if (names.has(u.name)) throw new TypeError(`startProxy: duplicate engine name "${u.name}"`);
    names.add(u.name);
  }
  const ownSink = opts.log ? null : batchedStderrSink();
  const log = opts.log ?? ownSink!;
  const poolOpts = { connectMs: opts.timeouts.connectMs };
  const producers = opts.producers.map((u) => createEngine(u, 'producer', poolOpts));
  const consumers = opts.consumers.map((u) => createEngine(u, 'consumer', poolOpts));
  const all: EngineState[] = [...producers, ...consumers];
  const byName = new Map(all.map((e) => [e.name, e]));

  const admission = new Admission({
    maxConcurrent: opts.maxConcurrent,
    queueSize: opts.queueSize,
    queueMs: opts.timeouts.queueMs,
  });
  const engineStats = (): EngineStats[] =>
    all.map((e) => ({ name: e.name, role: e.role, healthy: e.healthy, inFlight: e.inFlight }));
  const metrics = new ProxyMetrics({
    inFlight: () => admission.inFlight,
    queued: () => admission.queued,
    engines: engineStats,
  });
  const rate = new RecentRate();
  const frame = new Frame({
    gate: new Gate({
      bucket: opts.rateLimit > 0 ? new TokenBucket({ rate: opts.rateLimit, burst: opts.burst }) : null,
      onRateLimit: opts.onRateLimit,
      admission,
      queueMs: opts.timeouts.queueMs,
      metrics,
    }),
    body: new BodyReader(opts.maxBodyBytes),
    metrics,
    rate,
    log,
    accessLog: opts.accessLog,
    apiKey: opts.apiKey,
  });
  const routeDeps = { metrics, log, engineApiKey: opts.engineApiKey, timeouts: opts.timeouts };
  const producerGroup = { role: 'producer' as const, engines: producers, balancer: new Balancer(opts.balance) };
  const consumerGroup = { role: 'consumer' as const, engines: consumers, balancer: new Balancer(opts.balance) };
  const twoStageDeps = { ...routeDeps, producers: producerGroup, consumers: consumerGroup, connector: opts.connector };
  const chatRoute = new TwoStageRoute(twoStageDeps, 'chat');
  const completionsRoute = new TwoStageRoute(twoStageDeps, 'completions');
  const forwardRoute: Route<Buffer | null> = new ForwardRoute(routeDeps, consumerGroup);
  const chat = (req: IncomingMessage, res: ServerResponse): void =>
    void frame.run(req, res, 'POST', '/v1/chat/completions', chatRoute, true);
  const completions = (req: IncomingMessage, res: ServerResponse): void =>
    void frame.run(req, res, 'POST', '/v1/completions', completionsRoute, true);
  const forward = (req: IncomingMessage, res: ServerResponse): void => {
    const method = req.method ?? 'GET';
    void frame.run(req, res, method, (req.url ?? '/').split('?')[0]!, forwardRoute, method !== 'GET' && method !== 'HEAD');
  };

  const healthyBoth = (): boolean => producers.some((e) => e.healthy) && consumers.some((e) => e.healthy);
  const app = new Hono<{ Bindings: HttpBindings }>();
  app.post('/v1/completions', (c) => {
    completions(c.env.incoming, c.env.outgoing);
    return RESPONSE_ALREADY_SENT;
  });
  app.post('/v1/chat/completions', (c) => {
    chat(c.env.incoming, c.env.outgoing);
    return RESPONSE_ALREADY_SENT;
  });
  app.get('/health', (c) => {
    const ok = healthyBoth();
    return c.json(
      {
        status: ok ? 'ok' : 'unhealthy',
        producers: producers.map((e) => ({ name: e.name, url: e.url, healthy: e.healthy })),
        consumers: consumers.map((e) => ({ name: e.name, url: e.url, healthy: e.healthy })),
      },
      ok ? 200 : 503,
    );
  });
  app.get('/metrics', async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': metrics.registry.contentType });
  });
  app.all('/v1/*', (c) => {
    forward(c.env.incoming, c.env.outgoing);
    return RESPONSE_ALREADY_SENT;
  });
  app.notFound((c) =>
    c.body(openAiErrorBody(404, `Route ${c.req.method} ${c.req.path} not found.`), 404, {
      'content-type': 'application/json',
    }),
  );
  app.onError((e, c) => {
    log(`error: ${c.req.method} ${c.req.path}: ${e instanceof Error ? e.message : String(e)}`);
    return c.body(openAiErrorBody(500, 'Internal proxy error.'), 500, { 'content-type': 'application/json' });
  });

  const honoListener = getRequestListener(app.fetch, { overrideGlobalObjects: false, autoCleanupIncoming: false });
  // Fast path: exact two-stage routes skip the Web Request/Response adaptation entirely.
  const listener = (req: IncomingMessage, res: ServerResponse): void => {
    if (req.method === 'POST') {
      const url = req.url;
      if (url === '/v1/chat/completions') return chat(req, res);
      if (url === '/v1/completions') return completions(req, res);
    }
    void honoListener(req, res).catch((e: unknown) => {
      log(`error: ${req.method} ${req.url}: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) jsonResponse(res, 500, openAiErrorBody(500, 'Internal proxy error.'));
      else res.destroy();
    });
  };

  const server: Server = createServer(
    { keepAliveTimeout: 65_000, requestTimeout: 0, headersTimeout: 60_000, noDelay: true },
    listener,
  );
  server.on('clientError', (err, socket) => {
    if (socket.writable) socket.end('HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n');
    else socket.destroy();
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const port = (server.address() as AddressInfo).port;
  const shownHost = opts.host === '0.0.0.0' || opts.host === '::' ? '127.0.0.1' : opts.host;
  const url = `http://${shownHost.includes(':') ? `[${shownHost}]` : shownHost}:${port}`;

  const prober = new HealthProber(all, {
    intervalMs: opts.healthIntervalMs,
    onChange: (e, healthy, reason) =>
      log(`${healthy ? 'info' : 'warning'}: ${e.name} (${e.url}) ${healthy ? 'back in rotation' : 'taken out of rotation'}: ${reason}`),
  });
  prober.start();

  let closing: Promise<void> | undefined;
  return {
    url,
    port,
    registry: metrics.registry,
    setEngineHealthy(name: string, healthy: boolean): void {
      const e = byName.get(name);
      if (e === undefined) throw new TypeError(`setEngineHealthy: no engine named "${name}"`);
      setHealth(e, healthy);
    },
    stats(): ProxyStats {
      return {
        inFlight: admission.inFlight,
        queued: admission.queued,
        requestsTotal: frame.requestsTotal,
        reqPerSec: rate.perSecond(),
        rejected: metrics.rejectedCount,
        engines: engineStats(),
      };
    },
    close(): Promise<void> {
      closing ??= (async () => {
        prober.stop();
        admission.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const ac of frame.active) ac.abort();
        server.closeIdleConnections();
        // Give aborted requests a moment to finish their error answers, then drop whatever is left.
        await new Promise((r) => setTimeout(r, 20));
        server.closeAllConnections();
        await closed;
        await Promise.all(all.map((e) => e.pool.destroy().catch(() => undefined)));
        ownSink?.dispose();
      })();
      return closing;
    },
  };
}
