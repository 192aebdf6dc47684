/**
 * The two-stage route (POST /v1/completions and /v1/chat/completions of a PD stack): prefill on a producer
 * (max_tokens=1, non-streaming), then decode on a consumer, whose answer is streamed back byte for byte. The KV
 * hand-off between them follows the connector: nothing to do (shared storage), kv_transfer_params from stage 1
 * to stage 2 (NIXL, Mooncake), or a request id naming both engines (P2P NCCL).
 */
import { dispatch, type DispatchDeps, type EngineGroup } from './dispatch.js';
import type { EngineState } from './engine.js';
import { upstreamRequestHeaders } from './headers.js';
import { ProxyFailure, errCode, isTimeout, noEngine, upstreamFailure } from './failures.js';
import type { UpstreamCallOptions } from './upstream-call.js';
import { randomUUID } from 'node:crypto';
import {
  BadRequestBody,
  decodeBody,
  extractKvTransferParams,
  p2pRequestId,
  parseClientBody,
  prefillBody,
  usesKvTransferParams,
  usesP2pRequestIds,
  type ClientBody,
  type Route as BodyRoute,
} from './stage-bodies.js';
import { passError, streamBack, type PipeDeps, type PipeScope } from './stream-back.js';
import type { Route, Scope } from './frame.js';
import { checkRewrittenFields, isJsonContentType, unsupportedMediaType } from './request-checks.js';
import type { IncomingMessage } from 'node:http';
import type { ProxyMetrics } from './metrics.js';

export interface TwoStageDeps extends DispatchDeps {
  producers: EngineGroup;
  consumers: EngineGroup;
  connector: string;
  engineApiKey: string | undefined;
  timeouts: { prefillMs: number; decodeHeadersMs: number; decodeIdleMs: number };
  metrics: ProxyMetrics;
}

/**
 * A request ready for its two stages. Large bodies are held several times over (bytes, parsed object, stage 1
 * body), so each part is let go as soon as it is no longer needed.
 */
interface Prepared {
  raw: Buffer;
  /** The parsed body, kept only when stage 2 must re-serialise it (kv_transfer_params to add). */
  body: ClientBody | null;
  /** The stage 1 body, built before the gate (a body that cannot be re-serialised is the client's error). */
  prefill: string | null;
  /** P2P NCCL: the request id naming the producer and consumer, sent to both instead of pd's own. */
  p2pId: string | null;
}

/** stage 1 answered the client itself (its error status and body): there is no stage 2. */
const PASSED = Symbol('passed');

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
  private readonly p2p: boolean;
  private readonly pipe: PipeDeps;

  constructor(
    private readonly d: TwoStageDeps,
    private readonly route: BodyRoute,
  ) {
    this.kvParams = usesKvTransferParams(d.connector);
    this.p2p = usesP2pRequestIds(d.connector);
    this.pipe = { metrics: d.metrics, decodeIdleMs: d.timeouts.decodeIdleMs };
  }

  precheck(req: IncomingMessage): void {
    if (!isJsonContentType(req.headers)) throw unsupportedMediaType();
  }

  prepare(_s: Scope, raw: Buffer | null): Prepared {
    const body = parseClientBody(raw!, this.route);
    checkRewrittenFields(body, this.route);
    let prefill: string;
    try {
      prefill = prefillBody(body, this.d.connector, this.kvParams);
    } catch (e) {
      // JSON.parse is iterative, JSON.stringify recursive: a body nested thousands of levels deep parses but
      // overflows the stack when stage 1's body is built.
      if (e instanceof RangeError)
        throw new BadRequestBody('Request body is nested too deeply: JSON arrays and objects may not be nested this far.');
      throw e;
    }
    return { raw: raw!, body: this.kvParams ? body : null, prefill, p2pId: null };
  }

  async handle(s: Scope, p: Prepared): Promise<void> {
    // P2P NCCL: the consumer is chosen first, because the request id that stage 1 carries names it.
    let pinned: EngineState | undefined;
    if (this.p2p) {
      const group = this.d.consumers;
      pinned = group.balancer.pick(group.engines);
      if (pinned === undefined) {
        this.d.metrics.reject('no_engine');
        throw noEngine(group.role, group.engines.length);
      }
    }
    const kvParams = await this.prefill(s, p, pinned);
    if (kvParams === PASSED) return;

    // ---- stage 2: decode on a consumer, streamed back as is (here rather than in a method of its own: one
    // async frame fewer per request)
    const d = this.d;
    const rec = s.rec;
    s.stage = 'decode';
    const body = decodeBody(p.raw, p.body, kvParams);
    p.body = null;
    const headers = upstreamRequestHeaders(s.req.headers, {
      requestId: s.id,
      engineApiKey: d.engineApiKey,
      contentLength: typeof body === 'string' ? Buffer.byteLength(body) : body.length,
    });
    if (headers['content-type'] === undefined) headers['content-type'] = 'application/json';
    if (p.p2pId !== null) headers['x-request-id'] = p.p2pId;
    const t2 = performance.now();
    let r2;
    try {
      r2 = await dispatch(
        d,
        'decode',
        d.consumers,
        {
          method: 'POST',
          path: s.req.url ?? rec.route,
          headers,
          body,
          signal: s.ac,
          headersTimeout: d.timeouts.decodeHeadersMs,
          bodyTimeout: d.timeouts.decodeIdleMs,
        },
        pinned,
      );
    } catch (e) {
      throw s.gone ? e : upstreamFailure(e, 'decode');
    }
    rec.consumer = r2.engine.name;
    rec.decodeTtfbMs = performance.now() - t2;
    d.metrics.decodeTtfbSeconds.observe(rec.decodeTtfbMs / 1000);
    rec.status = r2.res.statusCode;
    if (rec.status >= 500) this.decodeFailed(s, 'status');
    await streamBack(
      r2,
      s,
      'decode',
      this.pipe,
      { 'x-request-id': s.id, 'server-timing': serverTiming(rec.queueMs!, rec.prefillMs, rec.decodeTtfbMs) },
      this.onErrorEvent,
    );
  }

  /** Stage 1's options for a producer under P2P NCCL: the request id names it and the chosen consumer. */
  private p2pOptions(p: Prepared, consumer: EngineState): (producer: EngineState, o: UpstreamCallOptions) => UpstreamCallOptions {
    const uuid = randomUUID().replace(/-/g, '');
    return (producer, o) => {
      p.p2pId = p2pRequestId(producer.kvAddress!, consumer.kvAddress!, uuid);
      return { ...o, headers: { ...o.headers, 'x-request-id': p.p2pId } };
    };
  }

  /**
   * Stage 1: prefill on a producer. Resolves with the kv_transfer_params it returned (undefined when the
   * connector needs none or it sent none), or PASSED when its error answer went to the client.
   */
  private async prefill(s: Scope, p: Prepared, p2pConsumer: EngineState | undefined): Promise<unknown> {
    const d = this.d;
    const rec = s.rec;
    s.stage = 'prefill';
    const body = p.prefill!;
    p.prefill = null;
    const headers = upstreamRequestHeaders(s.req.headers, {
      requestId: s.id,
      engineApiKey: d.engineApiKey,
      contentLength: Buffer.byteLength(body),
    });
    headers['content-type'] = 'application/json';
    const t1 = performance.now();
    // The whole of stage 1 is bounded by prefillMs: a prefill answer is small and arrives with its headers,
    // so undici's own (cheap) header and body timers cover it without a timer of ours per request.
    let r1;
    try {
      r1 = await dispatch(
        d,
        'prefill',
        d.producers,
        {
          method: 'POST',
          path: s.req.url ?? rec.route,
          headers,
          body,
          signal: s.ac,
          headersTimeout: d.timeouts.prefillMs,
          bodyTimeout: d.timeouts.prefillMs,
        },
        undefined,
        p2pConsumer === undefined ? undefined : this.p2pOptions(p, p2pConsumer),
      );
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
          passError(s.res, r1.res, text, { 'x-request-id': s.id, 'server-timing': serverTiming(rec.queueMs!, rec.prefillMs, null) });
          return PASSED;
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
    return kvParams;
  }

  private readonly onErrorEvent = (s: PipeScope): void => this.decodeFailed(s as Scope, 'stream');

  /**
   * The consumer failed the generation after the prefill succeeded: a 5xx, or an error event in its stream (vLLM's
   * GenerationError). With kv_load_failure_policy=fail that is how a failed KV load reaches the client.
   */
  private decodeFailed(s: Scope, how: 'status' | 'stream'): void {
    this.d.metrics.decodeFailures.inc({ how });
    const r = s.rec;
    this.d.log(
      `warning: ${r.consumer ?? 'the consumer'} failed request ${s.id} after its prefill on ${r.producer ?? 'a producer'} ` +
        `(${how === 'status' ? `HTTP ${r.status}` : 'error event in the stream'}): a KV transfer that failed with ` +
        `kv_load_failure_policy=fail ends this way; see the consumer's log`,
    );
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
