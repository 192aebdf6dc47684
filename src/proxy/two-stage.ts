/**
 * The two-stage route (POST /v1/completions and /v1/chat/completions of a PD stack): prefill on a producer
 * (max_tokens=1, non-streaming), then decode on a consumer, whose answer is streamed back byte for byte.
 */
import { dispatch, type DispatchDeps, type EngineGroup } from './dispatch.js';
import type { EngineState } from './engine.js';
import { upstreamRequestHeaders, downstreamResponseHeaders } from './headers.js';
import { ProxyFailure, errCode, isTimeout, upstreamFailure } from './failures.js';
import {
  decodeBody,
  extractKvTransferParams,
  parseClientBody,
  prefillBody,
  usesKvTransferParams,
  type ClientBody,
  type Route as BodyRoute,
} from './stage-bodies.js';
import { passError, pipeBody, type PipeDeps } from './stream-back.js';
import type { Route, Scope } from './frame.js';
import type { ProxyMetrics } from './metrics.js';

export interface TwoStageDeps extends DispatchDeps {
  producers: EngineGroup;
  consumers: EngineGroup;
  connector: string;
  engineApiKey: string | undefined;
  timeouts: { prefillMs: number; decodeHeadersMs: number; decodeIdleMs: number };
  metrics: ProxyMetrics;
}

interface Prepared {
  raw: Buffer;
  body: ClientBody;
}

export function serverTiming(queueMs: number, prefillMs: number | null, decodeMs: number | null): string {
  let s = `queue;dur=${queueMs.toFixed(3)}`;
  if (prefillMs !== null) s += `, prefill;dur=${prefillMs.toFixed(3)}`;
  if (decodeMs !== null) s += `, decode;dur=${decodeMs.toFixed(3)}`;
  return s;
}

export class TwoStageRoute implements Route<Prepared> {
  readonly firstStage = 'queue' as const;
  readonly gated = true;
  private readonly kvParams: boolean;
  private readonly pipe: PipeDeps;

  constructor(
    private readonly d: TwoStageDeps,
    private readonly route: BodyRoute,
  ) {
    this.kvParams = usesKvTransferParams(d.connector);
    this.pipe = { metrics: d.metrics, decodeIdleMs: d.timeouts.decodeIdleMs };
  }

  prepare(_s: Scope, raw: Buffer | null): Prepared {
    return { raw: raw!, body: parseClientBody(raw!, this.route) };
  }

  async handle(s: Scope, { raw, body }: Prepared): Promise<void> {
    const d = this.d;
    const rec = s.rec;
    const queueMs = rec.queueMs!;
    const path = s.req.url ?? rec.route;

    // ---- stage 1: prefill on a producer
    s.stage = 'prefill';
    const s1 = prefillBody(body, d.connector, this.kvParams);
    const h1 = upstreamRequestHeaders(s.req.headers, {
      requestId: s.id,
      engineApiKey: d.engineApiKey,
      contentLength: Buffer.byteLength(s1),
    });
    h1['content-type'] = 'application/json';
    const t1 = performance.now();
    // The whole of stage 1 is bounded by prefillMs: a prefill answer is small and arrives with its headers,
    // so undici's own (cheap) header and body timers cover it without a timer of ours per request.
    let r1;
    try {
      r1 = await dispatch(d, 'prefill', d.producers, {
        method: 'POST',
        path,
        headers: h1,
        body: s1,
        signal: s.ac,
        headersTimeout: d.timeouts.prefillMs,
        bodyTimeout: d.timeouts.prefillMs,
      });
    } catch (e) {
      if (!s.gone && isTimeout(e) && errCode(e) !== 'UND_ERR_CONNECT_TIMEOUT') throw this.prefillTimeout();
      throw s.gone ? e : upstreamFailure(e, 'prefill');
    }
    const producer = r1.engine;
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
          passError(s.res, r1.res, text, { 'x-request-id': s.id, 'server-timing': serverTiming(queueMs, rec.prefillMs, null) });
          return;
        }
        kvParams = extractKvTransferParams(text);
        if (kvParams === undefined) this.missingParams(producer, s.id);
      } else {
        await r1.res.body.dump();
      }
    } catch (e) {
      if (!s.gone && isTimeout(e)) throw this.prefillTimeout();
      throw s.gone ? e : upstreamFailure(e, 'prefill', producer);
    } finally {
      producer.inFlight--;
    }
    rec.prefillMs = performance.now() - t1;
    d.metrics.prefillSeconds.observe(rec.prefillMs / 1000);

    // ---- stage 2: decode on a consumer, streamed back as is
    s.stage = 'decode';
    const s2 = decodeBody(raw, body, kvParams);
    const h2 = upstreamRequestHeaders(s.req.headers, {
      requestId: s.id,
      engineApiKey: d.engineApiKey,
      contentLength: typeof s2 === 'string' ? Buffer.byteLength(s2) : s2.length,
    });
    if (h2['content-type'] === undefined) h2['content-type'] = 'application/json';
    const t2 = performance.now();
    let r2;
    try {
      r2 = await dispatch(d, 'decode', d.consumers, {
        method: 'POST',
        path,
        headers: h2,
        body: s2,
        signal: s.ac,
        headersTimeout: d.timeouts.decodeHeadersMs,
        bodyTimeout: d.timeouts.decodeIdleMs,
      });
    } catch (e) {
      throw s.gone ? e : upstreamFailure(e, 'decode');
    }
    const consumer = r2.engine;
    rec.consumer = consumer.name;
    rec.decodeTtfbMs = performance.now() - t2;
    d.metrics.decodeTtfbSeconds.observe(rec.decodeTtfbMs / 1000);
    rec.status = r2.res.statusCode;
    try {
      s.res.writeHead(
        r2.res.statusCode,
        downstreamResponseHeaders(r2.res.headers, {
          'x-request-id': s.id,
          'server-timing': serverTiming(queueMs, rec.prefillMs, rec.decodeTtfbMs),
        }),
      );
      const note = await pipeBody(r2.res, s.res, consumer, 'decode', this.pipe, s);
      if (note) rec.note = note;
      if (note === 'client_abort') d.metrics.clientAborts.inc({ stage: 'decode' });
    } finally {
      r2.res.body.cancel(); // only does something if writeHead threw before the body was piped
      consumer.inFlight--;
    }
  }

  private missingParams(producer: EngineState, id: string): void {
    this.d.metrics.nixlMissingParams.inc();
    this.d.log(
      `warning: ${producer.name} returned no kv_transfer_params for request ${id} although the connector is ` +
        `${this.d.connector}: the decode engine will recompute the whole prompt (check the producer's kv-transfer-config)`,
    );
  }

  private prefillTimeout(): ProxyFailure {
    return new ProxyFailure('timeout', `Prefill took longer than ${this.d.timeouts.prefillMs} ms (proxy.timeouts.prefillMs).`);
  }
}
