/**
 * The request frame every proxied request runs in, whatever its route:
 * - scope: the request id, the abort flag that follows the client, the access record, Server-Timing;
 * - checks before any engine: the proxy's API key, the body (size limit), the route's own validation;
 * - gate: rate limit + admission, for the routes that generate;
 * - the route's work (two-stage, forward, single-stage), which streams the engine's answer back;
 * - the end: errors answered in the OpenAI shape (statuses from failures.ts), the slot released, one access
 *   line and the request metrics.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { AbortFlag } from './abort-flag.js';
import type { Gate } from './gate.js';
import type { BodyReader, ByteBudget } from './body.js';
import { ProxyFailure, upstreamFailure } from './failures.js';
import { BadRequestBody } from './stage-bodies.js';
import { openAiErrorBody } from './openai-error.js';
import type { ProxyMetrics, RecentRate } from './metrics.js';
import { formatAccessLine, type AccessLogFormat, type AccessRecord } from './access-log.js';

export type Stage = 'queue' | 'prefill' | 'decode' | 'forward' | 'engine';

/** One request in progress. */
export class Scope {
  readonly t0 = performance.now();
  readonly ac = new AbortFlag();
  /** The client went away before its answer was complete. */
  gone = false;
  admitted = false;
  /** Bytes of the body budget this request holds. */
  bodyBytes = 0;
  readonly rec: AccessRecord;
  readonly onClose: () => void;

  constructor(
    readonly req: IncomingMessage,
    readonly res: ServerResponse,
    readonly id: string,
    method: string,
    route: string,
    public stage: Stage,
  ) {
    this.rec = {
      id,
      method,
      route,
      status: 0,
      queueMs: null,
      prefillMs: null,
      decodeTtfbMs: null,
      totalMs: 0,
      producer: null,
      consumer: null,
    };
    this.onClose = () => {
      if (!res.writableFinished) {
        this.gone = true;
        this.ac.abort();
      }
    };
    res.once('close', this.onClose);
  }
}

/** A route's work inside the frame. */
export interface Route<P> {
  /** The stage a request starts in (access log, client-abort metric). */
  readonly firstStage: Stage;
  /** Whether the request takes a rate-limit token and an admission slot. */
  readonly gated: boolean;
  /** Checks on the request line and headers, before its body is read; throws ProxyFailure. */
  precheck?(req: IncomingMessage): void;
  /** Check and parse the request before the gate; throws BadRequestBody or ProxyFailure. */
  prepare(s: Scope, raw: Buffer | null): P;
  /** Call the engines and answer the client. */
  handle(s: Scope, prepared: P): Promise<void>;
}

export interface FrameDeps {
  gate: Gate;
  body: BodyReader;
  budget: ByteBudget;
  metrics: ProxyMetrics;
  rate: RecentRate;
  log: (line: string) => void;
  accessLog: AccessLogFormat;
  apiKey: string | undefined;
}

/** Routes that get their own metric label (anything else is "other", to bound label cardinality). */
const METRIC_ROUTES = new Set(['/v1/completions', '/v1/chat/completions', '/v1/models']);

const REQUEST_ID_RE = /^[\x21-\x7e]{1,256}$/;

export class Frame {
  /** Abort handles of every request in progress (close() aborts them all). */
  readonly active = new Set<AbortFlag>();
  requestsTotal = 0;
  private readonly apiKeyBuf: Buffer | undefined;

  constructor(private readonly d: FrameDeps) {
    this.apiKeyBuf = d.apiKey === undefined ? undefined : Buffer.from(`Bearer ${d.apiKey}`);
  }

  requestId(req: IncomingMessage): string {
    const given = req.headers['x-request-id'];
    const v = Array.isArray(given) ? given[0] : given;
    return v !== undefined && REQUEST_ID_RE.test(v) ? v : randomUUID();
  }

  /** True when the request may pass (no proxy key configured, or the right bearer token). */
  authorized(req: IncomingMessage): boolean {
    if (this.apiKeyBuf === undefined) return true;
    const got = req.headers.authorization;
    if (got === undefined) return false;
    const b = Buffer.from(got);
    return b.length === this.apiKeyBuf.length && timingSafeEqual(b, this.apiKeyBuf);
  }

  /** Run one request through the frame. Never throws. */
  async run<P>(
    req: IncomingMessage,
    res: ServerResponse,
    method: string,
    route: string,
    r: Route<P>,
    readBody: boolean,
  ): Promise<void> {
    const s = new Scope(req, res, this.requestId(req), method, route, r.firstStage);
    this.active.add(s.ac);
    try {
      if (!this.authorized(req)) {
        this.d.metrics.reject('unauthorized');
        throw new ProxyFailure('unauthorized', 'Missing or wrong API key: send "Authorization: Bearer <key>".');
      }
      r.precheck?.(req);
      const raw = readBody ? await this.d.body.read(req, s, s.ac) : null;
      let prepared: P;
      try {
        prepared = r.prepare(s, raw);
      } catch (e) {
        if (!(e instanceof BadRequestBody)) throw e;
        throw new ProxyFailure('bad_request', e.message, { param: e.param });
      }
      if (r.gated) {
        const tq = performance.now();
        const waiting = this.d.gate.enter(s.ac);
        if (waiting !== undefined) await waiting;
        s.admitted = true;
        s.rec.queueMs = performance.now() - tq;
      }
      await r.handle(s, prepared);
    } catch (e) {
      this.fail(s, e);
    } finally {
      if (s.admitted) this.d.gate.release();
      if (s.bodyBytes > 0) this.d.budget.give(s.bodyBytes);
      this.active.delete(s.ac);
      res.off('close', s.onClose);
      const rec = s.rec;
      rec.totalMs = performance.now() - s.t0;
      if (r.gated && rec.status >= 200 && rec.status < 300) this.d.metrics.totalSeconds.observe(rec.totalMs / 1000);
      this.finish(rec);
    }
  }

  /** Answer a request that failed (or note that its client is gone). */
  private fail(s: Scope, e: unknown): void {
    const rec = s.rec;
    if (s.gone || (e instanceof ProxyFailure && e.reason === 'client_abort')) {
      rec.status = 499;
      rec.note = 'client_abort';
      this.d.metrics.clientAborts.inc({ stage: s.stage });
      return;
    }
    const f = e instanceof ProxyFailure ? e : upstreamFailure(e, s.stage === 'queue' ? 'prefill' : s.stage);
    rec.status = f.status;
    rec.note = f.reason;
    const extra: OutgoingHttpHeaders = {};
    if (f.retryAfter !== undefined) extra['retry-after'] = String(f.retryAfter);
    if (f.reason === 'too_large' || f.reason === 'body_budget' || f.reason === 'request_timeout') {
      // the rest of the body was not read: the connection cannot carry another request
      this.d.metrics.reject(f.reason);
      extra['connection'] = 'close';
    } else if (f.reason === 'bad_request') this.d.metrics.reject(f.reason);
    this.sendError(s.res, f.status, f.message, s.id, extra, f.param, f.type);
  }

  sendError(
    res: ServerResponse,
    status: number,
    message: string,
    id: string,
    extra: OutgoingHttpHeaders = {},
    param: string | null = null,
    type?: string,
  ): void {
    if (res.headersSent || res.destroyed) {
      if (!res.writableEnded) res.destroy();
      return;
    }
    const body = openAiErrorBody(status, message, param, type);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-request-id': id,
      ...extra,
    });
    res.end(body);
  }

  private finish(rec: AccessRecord): void {
    this.requestsTotal++;
    this.d.rate.mark();
    this.d.metrics.countRequest(METRIC_ROUTES.has(rec.route) ? rec.route : 'other', rec.status);
    if (this.d.accessLog !== 'off') this.d.log(formatAccessLine(rec, this.d.accessLog));
  }
}
