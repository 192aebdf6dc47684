/**
 * The request paths of the proxy, on raw node req/res (the hot path avoids Web Request/Response objects):
 * - twoStage(): POST /v1/completions and /v1/chat/completions — validate, rate-limit, admit, prefill on a
 *   producer (max_tokens=1, non-streaming), then decode on a consumer and stream its answer back byte for byte.
 * - forward(): any other /v1/* request, sent to a consumer as is.
 * Bytes are passed through; nothing parses the decode stream.
 */
import type { IncomingMessage, OutgoingHttpHeaders, ServerResponse } from 'node:http';
import { randomUUID, timingSafeEqual } from 'node:crypto';
import { callUpstream, type UpstreamCallOptions, type UpstreamResponse } from './upstream-call.js';
import { setHealth, type EngineState } from './engine.js';
import type { Balancer } from './balancer.js';
import type { TokenBucket } from './token-bucket.js';
import { Admission, AdmissionRejected } from './admission.js';
import { AbortFlag, type AbortLike } from './abort-flag.js';
import { downstreamResponseHeaders, upstreamRequestHeaders } from './headers.js';
import { openAiErrorBody, sseErrorEvent } from './openai-error.js';
import {
  BadRequestBody,
  decodeBody,
  extractKvTransferParams,
  parseClientBody,
  prefillBody,
  usesKvTransferParams,
  type Route,
} from './stage-bodies.js';
import type { ProxyMetrics, RecentRate } from './metrics.js';
import { formatAccessLine, type AccessRecord } from './access-log.js';

export interface PipelineTimeouts {
  connectMs: number;
  prefillMs: number;
  decodeHeadersMs: number;
  decodeIdleMs: number;
  queueMs: number;
}

export interface PipelineDeps {
  producers: EngineState[];
  consumers: EngineState[];
  producerBalancer: Balancer;
  consumerBalancer: Balancer;
  bucket: TokenBucket | null;
  onRateLimit: 'wait' | 'reject';
  admission: Admission;
  timeouts: PipelineTimeouts;
  maxBodyBytes: number;
  apiKey: string | undefined;
  engineApiKey: string | undefined;
  connector: string;
  accessLog: 'text' | 'json' | 'off';
  log: (line: string) => void;
  metrics: ProxyMetrics;
  rate: RecentRate;
}

type Stage = 'queue' | 'prefill' | 'decode';

/** Errors raised on the proxy's side of a request, answered with the OpenAI error shape. */
class ProxyFailure extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly reason: string,
    readonly retryAfter?: number,
  ) {
    super(message);
  }
}

class BodyTooLarge extends Error {}

const RETRYABLE_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'UND_ERR_CONNECT_TIMEOUT',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);

function errCode(e: unknown): string {
  const err = e as { code?: unknown; cause?: { code?: unknown } } | null;
  if (err && typeof err.code === 'string') return err.code;
  if (err && err.cause && typeof err.cause.code === 'string') return err.cause.code;
  return '';
}

function isTimeout(e: unknown): boolean {
  const c = errCode(e);
  return c === 'UND_ERR_HEADERS_TIMEOUT' || c === 'UND_ERR_BODY_TIMEOUT' || c === 'UND_ERR_CONNECT_TIMEOUT';
}

function headerValue(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** Routes that get their own metric label (anything else is "other", to bound label cardinality). */
const METRIC_ROUTES = new Set(['/v1/completions', '/v1/chat/completions', '/v1/models']);

const REQUEST_ID_RE = /^[\x21-\x7e]{1,256}$/;

export class Pipeline {
  /** Abort handles of every request in progress (close() aborts them all). */
  readonly active = new Set<AbortFlag>();
  requestsTotal = 0;
  private readonly apiKeyBuf: Buffer | undefined;
  private readonly kvParams: boolean;

  constructor(private readonly d: PipelineDeps) {
    this.apiKeyBuf = d.apiKey === undefined ? undefined : Buffer.from(`Bearer ${d.apiKey}`);
    this.kvParams = usesKvTransferParams(d.connector);
  }

  requestId(req: IncomingMessage): string {
    const given = headerValue(req.headers['x-request-id']);
    return given !== undefined && REQUEST_ID_RE.test(given) ? given : randomUUID();
  }

  /** True when the request may pass (no proxy key configured, or the right bearer token). */
  authorized(req: IncomingMessage): boolean {
    if (this.apiKeyBuf === undefined) return true;
    const got = req.headers.authorization;
    if (got === undefined) return false;
    const b = Buffer.from(got);
    return b.length === this.apiKeyBuf.length && timingSafeEqual(b, this.apiKeyBuf);
  }

  sendError(
    res: ServerResponse,
    status: number,
    message: string,
    id: string,
    extra: OutgoingHttpHeaders = {},
    param: string | null = null,
  ): void {
    if (res.headersSent || res.destroyed) {
      if (!res.writableEnded) res.destroy();
      return;
    }
    const body = openAiErrorBody(status, message, param);
    res.writeHead(status, {
      'content-type': 'application/json',
      'content-length': Buffer.byteLength(body),
      'x-request-id': id,
      ...extra,
    });
    res.end(body);
  }

  private readBody(req: IncomingMessage): Promise<Buffer> {
    const limit = this.d.maxBodyBytes;
    const declared = Number(req.headers['content-length']);
    if (declared > limit) return Promise.reject(new BodyTooLarge());
    return new Promise((resolve, reject) => {
      const chunks: Buffer[] = [];
      let size = 0;
      const onData = (c: Buffer): void => {
        size += c.length;
        if (size > limit) {
          req.off('data', onData);
          req.pause();
          reject(new BodyTooLarge());
          return;
        }
        chunks.push(c);
      };
      req.on('data', onData);
      req.once('end', () => resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size)));
      req.once('error', reject);
      req.once('aborted', () => reject(new Error('client aborted')));
    });
  }

  private tooLarge(res: ServerResponse, id: string): void {
    this.d.metrics.reject('too_large');
    this.sendError(
      res,
      413,
      `Request body is larger than the proxy's limit of ${this.d.maxBodyBytes} bytes (proxy.maxBodyBytes).`,
      id,
      { connection: 'close' },
    );
  }

  private finish(rec: AccessRecord): void {
    this.requestsTotal++;
    this.d.rate.mark();
    this.d.metrics.countRequest(METRIC_ROUTES.has(rec.route) ? rec.route : 'other', rec.status);
    if (this.d.accessLog !== 'off') this.d.log(formatAccessLine(rec, this.d.accessLog));
  }

  /**
   * Take a rate-limit token and an admission slot, waiting in line when needed. Returns undefined when both
   * were free (the common case, with no promise to await), else a promise that settles when the request may go.
   */
  private enter(signal: AbortLike): Promise<void> | undefined {
    const bucket = this.d.bucket;
    const token = bucket === null || bucket.tryTake() === 0;
    if (token && this.d.admission.tryAcquire()) return undefined;
    return this.enterSlow(signal, !token);
  }

  private async enterSlow(signal: AbortLike, needToken: boolean): Promise<void> {
    if (needToken) await this.rateLimit(signal);
    await this.admit(signal);
  }

  /** Wait for a rate-limit token (or refuse) after tryTake() found none: resolves with the ms waited. */
  private async rateLimit(signal: AbortLike): Promise<number> {
    const bucket = this.d.bucket!;
    const waitMs = bucket.tryTake();
    if (waitMs === 0) return 0;
    if (this.d.onRateLimit === 'reject') {
      this.d.metrics.reject('rate_limit');
      throw new ProxyFailure(
        429,
        `Rate limit of ${bucket.rate} requests/s exceeded; retry later.`,
        'rate_limit',
        Math.max(1, Math.ceil(waitMs / 1000)),
      );
    }
    const reserved = bucket.reserve(this.d.timeouts.queueMs);
    if (reserved === null) {
      this.d.metrics.reject('rate_limit');
      throw new ProxyFailure(
        429,
        `Rate limit of ${bucket.rate} requests/s exceeded and the wait for a token would be longer than ${this.d.timeouts.queueMs} ms.`,
        'rate_limit',
        Math.max(1, Math.ceil(this.d.timeouts.queueMs / 1000)),
      );
    }
    this.d.metrics.rateLimitWaits.inc();
    if (reserved === 0) return 0;
    await new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        signal.removeEventListener('abort', onAbort);
        resolve();
      }, reserved);
      const onAbort = (): void => {
        clearTimeout(t);
        bucket.refund();
        reject(new ProxyFailure(499, 'client went away', 'client_abort'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
    });
    return reserved;
  }

  private async admit(signal: AbortLike): Promise<number> {
    const adm = this.d.admission;
    if (adm.tryAcquire()) return 0;
    const t = performance.now();
    try {
      await adm.acquire(signal);
    } catch (e) {
      const reason = e instanceof AdmissionRejected ? e.reason : 'queue_full';
      if (reason === 'aborted') {
        this.d.metrics.queueWaits.inc({ outcome: 'aborted' });
        throw new ProxyFailure(499, 'client went away', 'client_abort');
      }
      if (reason === 'queue_timeout') this.d.metrics.queueWaits.inc({ outcome: 'timeout' });
      this.d.metrics.reject(reason);
      throw new ProxyFailure(
        503,
        reason === 'queue_timeout'
          ? `The proxy is at its concurrency limit and the request waited ${this.d.timeouts.queueMs} ms in the queue (proxy.timeouts.queueMs).`
          : reason === 'closed'
            ? 'The proxy is shutting down.'
            : `The proxy is at its concurrency limit (${adm.inFlight} in flight) and its queue is full (${adm.queued} waiting).`,
        reason,
        1,
      );
    }
    const waited = performance.now() - t;
    this.d.metrics.queueWaits.inc({ outcome: 'admitted' });
    this.d.metrics.queueWaitSeconds.observe(waited / 1000);
    return waited;
  }

  /**
   * Send a request to an engine of the given role, retrying once on another engine after a connection error
   * (nothing has been sent to the client yet at this point). The chosen engine's inFlight is incremented; the
   * caller decrements it when done with the response.
   */
  private async dispatch(
    stage: 'prefill' | 'decode' | 'forward',
    engines: EngineState[],
    balancer: Balancer,
    opts: UpstreamCallOptions,
  ): Promise<{ engine: EngineState; res: UpstreamResponse }> {
    const first = balancer.pick(engines);
    if (first === undefined) {
      this.d.metrics.reject('no_engine');
      const role = engines === this.d.producers ? 'producer' : 'consumer';
      throw new ProxyFailure(
        503,
        `No healthy ${role} engine is available (all ${engines.length} failed their /health probe).`,
        'no_engine',
        1,
      );
    }
    let engine: EngineState = first;
    for (let attempt = 0; ; attempt++) {
      engine.inFlight++;
      try {
        const res = await callUpstream(engine.pool, engine.prefix === '' ? opts : { ...opts, path: engine.prefix + opts.path });
        return { engine, res };
      } catch (e) {
        engine.inFlight--;
        const code = errCode(e);
        if (opts.signal.aborted) throw e;
        this.d.metrics.upstreamErrors.inc({ engine: engine.name, stage, kind: code || 'error' });
        if (code === 'ECONNREFUSED' && engine.healthy) {
          setHealth(engine, false);
          this.d.log(`warning: ${engine.name} (${engine.url}) refused a connection; taken out of rotation until /health answers`);
        }
        if (attempt === 0 && RETRYABLE_CODES.has(code)) {
          const other: EngineState = balancer.pick(engines, engine) ?? engine;
          this.d.metrics.retries.inc({ stage });
          engine = other;
          continue;
        }
        (e as { engine?: EngineState }).engine = engine;
        throw e;
      }
    }
  }

  private upstreamFailure(e: unknown, stage: 'prefill' | 'decode' | 'forward', engine?: EngineState): ProxyFailure {
    if (e instanceof ProxyFailure) return e;
    const who = engine ?? (e as { engine?: EngineState }).engine;
    const name = who ? `${who.name} (${who.url})` : `the ${stage} engine`;
    const what = stage === 'prefill' ? 'prefill' : stage === 'decode' ? 'decode' : 'upstream';
    if (isTimeout(e) || (e as Error)?.name === 'TimeoutError')
      return new ProxyFailure(504, `The ${what} engine ${name} timed out: ${(e as Error).message}`, 'timeout');
    return new ProxyFailure(
      502,
      `The ${what} engine ${name} could not be reached: ${(e as Error)?.message ?? String(e)}`,
      'upstream_error',
    );
  }

  /** POST /v1/completions and /v1/chat/completions. Never throws. */
  async twoStage(req: IncomingMessage, res: ServerResponse, route: Route): Promise<void> {
    const t0 = performance.now();
    const id = this.requestId(req);
    const rec: AccessRecord = {
      id,
      method: 'POST',
      route: route === 'chat' ? '/v1/chat/completions' : '/v1/completions',
      status: 0,
      queueMs: null,
      prefillMs: null,
      decodeTtfbMs: null,
      totalMs: 0,
      producer: null,
      consumer: null,
    };
    const ac = new AbortFlag();
    let stage: Stage = 'queue';
    let clientGone = false;
    const onClose = (): void => {
      if (!res.writableFinished) {
        clientGone = true;
        ac.abort();
      }
    };
    res.once('close', onClose);
    this.active.add(ac);
    let admitted = false;
    let producer: EngineState | undefined;
    let consumer: EngineState | undefined;
    try {
      if (!this.authorized(req)) {
        this.d.metrics.reject('unauthorized');
        throw new ProxyFailure(401, 'Missing or wrong API key: send "Authorization: Bearer <key>".', 'unauthorized');
      }
      let raw: Buffer;
      try {
        raw = await this.readBody(req);
      } catch (e) {
        if (e instanceof BodyTooLarge) {
          rec.status = 413;
          this.tooLarge(res, id);
          return;
        }
        throw new ProxyFailure(499, 'client went away', 'client_abort');
      }
      let body;
      try {
        body = parseClientBody(raw, route);
      } catch (e) {
        if (!(e instanceof BadRequestBody)) throw e;
        this.d.metrics.reject('bad_request');
        rec.status = 400;
        this.sendError(res, 400, e.message, id, {}, e.param);
        return;
      }

      const tq = performance.now();
      const waiting = this.enter(ac);
      if (waiting !== undefined) await waiting;
      admitted = true;
      const queueMs = performance.now() - tq;
      rec.queueMs = queueMs;

      // ---- stage 1: prefill on a producer
      stage = 'prefill';
      const path = req.url ?? rec.route;
      const s1 = prefillBody(body, this.d.connector, this.kvParams);
      const h1 = upstreamRequestHeaders(req.headers, {
        requestId: id,
        engineApiKey: this.d.engineApiKey,
        contentLength: Buffer.byteLength(s1),
      });
      h1['content-type'] = 'application/json';
      const t1 = performance.now();
      // The whole of stage 1 is bounded by prefillMs: a prefill answer is small and arrives with its headers,
      // so undici's own (cheap) header and body timers cover it without a timer of ours per request.
      let r1;
      try {
        r1 = await this.dispatch('prefill', this.d.producers, this.d.producerBalancer, {
          method: 'POST',
          path,
          headers: h1,
          body: s1,
          signal: ac,
          headersTimeout: this.d.timeouts.prefillMs,
          bodyTimeout: this.d.timeouts.prefillMs,
        });
      } catch (e) {
        if (!clientGone && isTimeout(e) && errCode(e) !== 'UND_ERR_CONNECT_TIMEOUT') throw this.prefillTimeout();
        throw clientGone ? e : this.upstreamFailure(e, 'prefill');
      }
      producer = r1.engine;
      rec.producer = producer.name;
      let kvParams: unknown;
      try {
        const ok = r1.res.statusCode >= 200 && r1.res.statusCode < 300;
        if (!ok || this.kvParams) {
          const text = await r1.res.body.text();
          if (!ok) {
            rec.prefillMs = performance.now() - t1;
            rec.status = r1.res.statusCode;
            rec.note = 'prefill_error';
            this.passError(res, r1.res, text, id, this.serverTiming(queueMs, rec.prefillMs, null));
            return;
          }
          kvParams = extractKvTransferParams(text);
          if (kvParams === undefined) {
            this.d.metrics.nixlMissingParams.inc();
            this.d.log(
              `warning: ${producer.name} returned no kv_transfer_params for request ${id} although the connector is ` +
                `${this.d.connector}: the decode engine will recompute the whole prompt (check the producer's kv-transfer-config)`,
            );
          }
        } else {
          await r1.res.body.dump();
        }
      } catch (e) {
        if (!clientGone && isTimeout(e)) throw this.prefillTimeout();
        throw clientGone ? e : this.upstreamFailure(e, 'prefill', producer);
      } finally {
        producer.inFlight--;
      }
      rec.prefillMs = performance.now() - t1;
      this.d.metrics.prefillSeconds.observe(rec.prefillMs / 1000);

      // ---- stage 2: decode on a consumer, streamed back as is
      stage = 'decode';
      const s2 = decodeBody(raw, body, kvParams);
      const h2 = upstreamRequestHeaders(req.headers, {
        requestId: id,
        engineApiKey: this.d.engineApiKey,
        contentLength: typeof s2 === 'string' ? Buffer.byteLength(s2) : s2.length,
      });
      if (h2['content-type'] === undefined) h2['content-type'] = 'application/json';
      const t2 = performance.now();
      let r2;
      try {
        r2 = await this.dispatch('decode', this.d.consumers, this.d.consumerBalancer, {
          method: 'POST',
          path,
          headers: h2,
          body: s2,
          signal: ac,
          headersTimeout: this.d.timeouts.decodeHeadersMs,
          bodyTimeout: this.d.timeouts.decodeIdleMs,
        });
      } catch (e) {
        throw clientGone ? e : this.upstreamFailure(e, 'decode');
      }
      consumer = r2.engine;
      rec.consumer = consumer.name;
      rec.decodeTtfbMs = performance.now() - t2;
      this.d.metrics.decodeTtfbSeconds.observe(rec.decodeTtfbMs / 1000);
      rec.status = r2.res.statusCode;
      try {
        res.writeHead(
          r2.res.statusCode,
          downstreamResponseHeaders(r2.res.headers, {
            'x-request-id': id,
            'server-timing': this.serverTiming(queueMs, rec.prefillMs, rec.decodeTtfbMs),
          }),
        );
        const note = await this.pipeBody(r2.res, res, consumer, 'decode', () => clientGone);
        if (note) rec.note = note;
        if (note === 'client_abort') this.d.metrics.clientAborts.inc({ stage: 'decode' });
      } finally {
        r2.res.body.cancel(); // only does something if writeHead threw before the body was piped
        consumer.inFlight--;
      }
    } catch (e) {
      if (clientGone || (e instanceof ProxyFailure && e.status === 499)) {
        rec.status = 499;
        rec.note = 'client_abort';
        this.d.metrics.clientAborts.inc({ stage });
      } else {
        const f = e instanceof ProxyFailure ? e : this.upstreamFailure(e, stage === 'queue' ? 'prefill' : stage);
        rec.status = f.status;
        rec.note = f.reason;
        const extra: OutgoingHttpHeaders = {};
        if (f.retryAfter !== undefined) extra['retry-after'] = String(f.retryAfter);
        this.sendError(res, f.status, f.message, id, extra);
      }
    } finally {
      if (admitted) this.d.admission.release();
      this.active.delete(ac);
      res.off('close', onClose);
      rec.totalMs = performance.now() - t0;
      if (rec.status >= 200 && rec.status < 300) this.d.metrics.totalSeconds.observe(rec.totalMs / 1000);
      this.finish(rec);
    }
  }

  private prefillTimeout(): ProxyFailure {
    return new ProxyFailure(
      504,
      `Prefill took longer than ${this.d.timeouts.prefillMs} ms (proxy.timeouts.prefillMs).`,
      'timeout',
    );
  }

  private serverTiming(queueMs: number, prefillMs: number | null, decodeMs: number | null): string {
    let s = `queue;dur=${queueMs.toFixed(3)}`;
    if (prefillMs !== null) s += `, prefill;dur=${prefillMs.toFixed(3)}`;
    if (decodeMs !== null) s += `, decode;dur=${decodeMs.toFixed(3)}`;
    return s;
  }

  /** Return an engine's error answer to the client: its status, headers and body. */
  private passError(
    res: ServerResponse,
    up: UpstreamResponse,
    text: string,
    id: string,
    serverTiming: string,
  ): void {
    const headers = downstreamResponseHeaders(up.headers, { 'x-request-id': id, 'server-timing': serverTiming });
    delete headers['content-length'];
    headers['content-length'] = Buffer.byteLength(text);
    if (headers['content-type'] === undefined) headers['content-type'] = 'application/json';
    res.writeHead(up.statusCode, headers);
    res.end(text);
  }

  /**
   * Copy an upstream body to the client with backpressure. A failure after the headers went out ends an SSE
   * stream with an error event (other bodies can only be cut). Resolves with a note for the access log.
   *
   * Writes are corked until the end of the current tick, so that what one upstream read delivers (often the
   * last tokens, the usage chunk, [DONE] and the end of the body together) goes to the client in one system call
   * instead of one per chunk plus one for the end; a streamed token is never held past the read it came in.
   */
  private pipeBody(
    up: UpstreamResponse,
    res: ServerResponse,
    engine: EngineState,
    stage: 'decode' | 'forward',
    clientGone: () => boolean,
  ): Promise<string | undefined> {
    return new Promise((resolve) => {
      const body = up.body;
      let last: Buffer | undefined;
      let prev: Buffer | undefined;
      let corked = false;
      const uncork = (): void => {
        corked = false;
        res.uncork();
      };
      const onDrain = (): void => body.resume();
      res.on('drain', onDrain);
      body.pipe({
        data: (chunk) => {
          prev = last;
          last = chunk;
          if (!corked) {
            corked = true;
            res.cork();
            process.nextTick(uncork);
          }
          return res.write(chunk);
        },
        end: () => {
          res.off('drain', onDrain);
          res.end();
          resolve(undefined);
        },
        error: (err) => {
          res.off('drain', onDrain);
          if (clientGone() || res.destroyed) return resolve('client_abort');
          this.d.metrics.upstreamErrors.inc({ engine: engine.name, stage, kind: errCode(err) || 'stream_error' });
          this.d.metrics.midStreamErrors.inc();
          const ct = String(up.headers['content-type'] ?? '');
          if (ct.includes('text/event-stream')) {
            let tail = '';
            if (last !== undefined) {
              const t = prev !== undefined ? Buffer.concat([prev.subarray(-2), last]) : last;
              tail = t.subarray(-2).toString('latin1');
            }
            const sep = last === undefined || tail === '\n\n' ? '' : tail.endsWith('\n') ? '\n' : '\n\n';
            const reason = isTimeout(err)
              ? `no data for ${this.d.timeouts.decodeIdleMs} ms (proxy.timeouts.decodeIdleMs)`
              : err.message;
            res.end(sep + sseErrorEvent(502, `The decode engine ${engine.name} failed mid-stream: ${reason}`));
          } else {
            res.destroy(err);
          }
          resolve('mid_stream_error');
        },
      });
    });
  }

  /** Any other /v1/* request (GET /v1/models included): sent to a consumer as is. Never throws. */
  async forward(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const t0 = performance.now();
    const id = this.requestId(req);
    const method = req.method ?? 'GET';
    const rec: AccessRecord = {
      id,
      method,
      route: (req.url ?? '/').split('?')[0]!,
      status: 0,
      queueMs: null,
      prefillMs: null,
      decodeTtfbMs: null,
      totalMs: 0,
      producer: null,
      consumer: null,
    };
    const ac = new AbortFlag();
    let clientGone = false;
    const onClose = (): void => {
      if (!res.writableFinished) {
        clientGone = true;
        ac.abort();
      }
    };
    res.once('close', onClose);
    this.active.add(ac);
    try {
      if (!this.authorized(req)) {
        this.d.metrics.reject('unauthorized');
        throw new ProxyFailure(401, 'Missing or wrong API key: send "Authorization: Bearer <key>".', 'unauthorized');
      }
      let raw: Buffer | undefined;
      if (method !== 'GET' && method !== 'HEAD') {
        try {
          raw = await this.readBody(req);
        } catch (e) {
          if (e instanceof BodyTooLarge) {
            rec.status = 413;
            this.tooLarge(res, id);
            return;
          }
          throw new ProxyFailure(499, 'client went away', 'client_abort');
        }
      }
      const headers = upstreamRequestHeaders(req.headers, {
        requestId: id,
        engineApiKey: this.d.engineApiKey,
        ...(raw !== undefined ? { contentLength: raw.length } : {}),
      });
      let r;
      try {
        r = await this.dispatch('forward', this.d.consumers, this.d.consumerBalancer, {
          method: method,
          path: req.url ?? '/',
          headers,
          body: raw ?? null,
          signal: ac,
          headersTimeout: this.d.timeouts.decodeHeadersMs,
          bodyTimeout: this.d.timeouts.decodeIdleMs,
        });
      } catch (e) {
        throw clientGone ? e : this.upstreamFailure(e, 'forward');
      }
      rec.consumer = r.engine.name;
      rec.decodeTtfbMs = performance.now() - t0;
      rec.status = r.res.statusCode;
      try {
        res.writeHead(r.res.statusCode, downstreamResponseHeaders(r.res.headers, { 'x-request-id': id }));
        const note = await this.pipeBody(r.res, res, r.engine, 'forward', () => clientGone);
        if (note) rec.note = note;
        if (note === 'client_abort') this.d.metrics.clientAborts.inc({ stage: 'forward' });
      } finally {
        r.res.body.cancel(); // only does something if writeHead threw before the body was piped
        r.engine.inFlight--;
      }
    } catch (e) {
      if (clientGone || (e instanceof ProxyFailure && e.status === 499)) {
        rec.status = 499;
        rec.note = 'client_abort';
        this.d.metrics.clientAborts.inc({ stage: 'forward' });
      } else {
        const f = e instanceof ProxyFailure ? e : this.upstreamFailure(e, 'forward');
        rec.status = f.status;
        rec.note = f.reason;
        this.sendError(res, f.status, f.message, id, f.retryAfter !== undefined ? { 'retry-after': String(f.retryAfter) } : {});
      }
    } finally {
      this.active.delete(ac);
      res.off('close', onClose);
      rec.totalMs = performance.now() - t0;
      this.finish(rec);
    }
  }
}
