/**
 * The proxy server, two-stage (PD) or single-stage (TP, PP, DP; see topology.ts). Proxied requests run on the raw
 * node req/res in the request frame (frame.ts), routed by router.ts; /health, /metrics and 404s are answered by
 * an embedded Hono app on @hono/node-server.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Hono } from 'hono';
import { getRequestListener, type HttpBindings } from '@hono/node-server';
import type { Registry } from 'prom-client';
import { setDown, setHealth, type EngineRole, type EngineState } from './engine.js';
import { TokenBucket } from './token-bucket.js';
import { Admission } from './admission.js';
import { HealthProber } from './health.js';
import { ProxyMetrics, RecentRate } from './metrics.js';
import { batchedStderrSink } from './access-log.js';
import { Frame } from './frame.js';
import { Gate } from './gate.js';
import { BodyDeadlines, BodyReader, ByteBudget } from './body.js';
import { MemoryRelease } from './memory.js';
import { buildTopology, checkOptions, type ProxyOptions } from './topology.js';
import { routeRequests } from './router.js';
import { checkEveryMs, createLimitedServer, effectiveDeadlineMs, listen } from './http-server.js';
import { healthHttpStatus, healthReport, type HealthReport } from './health-report.js';
import { openAiErrorBody } from './openai-error.js';
import { sleep } from '../util/timers.js';

export type { Upstream } from './engine.js';

export type { ProxyOptions, ProxyMode, TwoStageOptions, SingleStageOptions } from './topology.js';

export interface EngineStats {
  name: string;
  role: EngineRole;
  healthy: boolean;
  /** Why its supervisor gave up on it, or null. */
  down: string | null;
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
  /** Take an engine out of rotation (false) or put it back (true, which also clears "down"). */
  setEngineHealthy(name: string, healthy: boolean): void;
  /**
   * Take an engine out of rotation for good: its supervisor gave up on it. It is not probed back in, and /health
   * reports the proxy "degraded" (or "unhealthy" when its role has no engine left) naming it with the reason.
   */
  setEngineDown(name: string, reason: string): void;
  /** What GET /health answers. */
  health(): HealthReport;
  stats(): ProxyStats;
  close(): Promise<void>;
}

function jsonResponse(res: ServerResponse, status: number, body: string): void {
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
  res.end(body);
}

export async function startProxy(opts: ProxyOptions): Promise<ProxyHandle> {
  checkOptions(opts);
  const ownSink = opts.log ? null : batchedStderrSink();
  const log = opts.log ?? ownSink!;

  const admission = new Admission({
    maxConcurrent: opts.maxConcurrent,
    queueSize: opts.queueSize,
    queueMs: opts.timeouts.queueMs,
  });
  // engines exist once the metrics do (they read the engine list at scrape time)
  let all: EngineState[] = [];
  const engineStats = (): EngineStats[] =>
    all.map((e) => ({ name: e.name, role: e.role, healthy: e.healthy, down: e.down, inFlight: e.inFlight }));
  const metrics = new ProxyMetrics({
    inFlight: () => admission.inFlight,
    queued: () => admission.queued,
    engines: engineStats,
  });
  const rate = new RecentRate();
  // After a burst of large bodies (64 MB or more held at once), give the memory back at once.
  const memory = new MemoryRelease(64 * 1024 * 1024);
  const budget = new ByteBudget(Math.max(opts.bodyBudgetBytes, opts.maxBodyBytes), (peak) => memory.idle(peak));
  const requestMs = opts.timeouts.requestMs;
  const bodyDeadlines = new BodyDeadlines(requestMs, effectiveDeadlineMs(requestMs), checkEveryMs(requestMs));
  const frame = new Frame({
    gate: new Gate({
      bucket: opts.rateLimit > 0 ? new TokenBucket({ rate: opts.rateLimit, burst: opts.burst }) : null,
      onRateLimit: opts.onRateLimit,
      admission,
      queueMs: opts.timeouts.queueMs,
      metrics,
    }),
    body: new BodyReader(opts.maxBodyBytes, opts.timeouts.queueMs, budget, bodyDeadlines),
    budget,
    metrics,
    rate,
    log,
    accessLog: opts.accessLog,
    apiKey: opts.apiKey,
  });
  const topology = buildTopology(opts, { metrics, log });
  all = topology.all;
  const byName = new Map(all.map((e) => [e.name, e]));
  const health = (): HealthReport => healthReport(topology.mode, topology.groups);

  const app = new Hono<{ Bindings: HttpBindings }>();
  app.get('/health', (c) => {
    const report = health();
    return c.json(report, healthHttpStatus(report) as 200 | 503);
  });
  app.get('/metrics', async (c) => {
    const text = await metrics.registry.metrics();
    return c.body(text, 200, { 'content-type': metrics.registry.contentType });
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
  const other = (req: IncomingMessage, res: ServerResponse): void => {
    void honoListener(req, res).catch((e: unknown) => {
      log(`error: ${req.method} ${req.url}: ${e instanceof Error ? e.message : String(e)}`);
      if (!res.headersSent) jsonResponse(res, 500, openAiErrorBody(500, 'Internal proxy error.'));
      else res.destroy();
    });
  };
  const listener = routeRequests(frame, topology.routes, other);

  const server = createLimitedServer(
    { maxConnections: opts.maxConnections, headersMs: opts.timeouts.headersMs },
    listener,
    () => metrics.reject('request_timeout'),
  );
  try {
    await listen(server, opts.port, opts.host);
  } catch (e) {
    bodyDeadlines.close();
    await Promise.all(all.map((x) => x.pool.destroy().catch(() => undefined)));
    ownSink?.dispose();
    throw e;
  }
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
    setEngineDown(name: string, reason: string): void {
      const e = byName.get(name);
      if (e === undefined) throw new TypeError(`setEngineDown: no engine named "${name}"`);
      if (e.down === null) log(`warning: ${e.name} (${e.url}) is down for good: ${reason}`);
      setDown(e, reason);
    },
    health,
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
        budget.close();
        bodyDeadlines.close();
        memory.close();
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const ac of frame.active) ac.abort();
        server.closeIdleConnections();
        // Give aborted requests a moment to finish their error answers, then drop whatever is left.
        await sleep(20);
        server.closeAllConnections();
        await closed;
        await Promise.all(all.map((e) => e.pool.destroy().catch(() => undefined)));
        ownSink?.dispose();
      })();
      return closing;
    },
  };
}
