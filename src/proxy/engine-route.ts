/**
 * The single-stage generation route (POST /v1/completions and /v1/chat/completions when the stack is TP, PP or
 * DP): the same checks and gate as the two-stage route, then the whole request on one engine (balanced by the
 * configured policy), its answer streamed back. Server-Timing has one stage, `engine`.
 */
import type { IncomingMessage } from 'node:http';
import { dispatch, type DispatchDeps, type EngineGroup } from './dispatch.js';
import { upstreamRequestHeaders } from './headers.js';
import { upstreamFailure } from './failures.js';
import { parseClientBody, type Route as BodyRoute } from './stage-bodies.js';
import { checkRewrittenFields, isJsonContentType, unsupportedMediaType } from './request-checks.js';
import { streamBack, type PipeDeps } from './stream-back.js';
import type { Route, Scope } from './frame.js';
import type { ProxyMetrics } from './metrics.js';

export interface EngineRouteDeps extends DispatchDeps {
  engines: EngineGroup;
  engineApiKey: string | undefined;
  timeouts: { decodeHeadersMs: number; decodeIdleMs: number };
  metrics: ProxyMetrics;
}

export class EngineRoute implements Route<Buffer> {
  readonly firstStage = 'queue' as const;
  readonly gated = true;
  private readonly pipe: PipeDeps;

  constructor(
    private readonly d: EngineRouteDeps,
    private readonly route: BodyRoute,
  ) {
    this.pipe = { metrics: d.metrics, decodeIdleMs: d.timeouts.decodeIdleMs };
  }

  precheck(req: IncomingMessage): void {
    if (!isJsonContentType(req.headers)) throw unsupportedMediaType();
  }

  /** The same checks as two-stage, so that a request is refused alike whatever the topology. */
  prepare(_s: Scope, raw: Buffer | null): Buffer {
    checkRewrittenFields(parseClientBody(raw!, this.route), this.route);
    return raw!;
  }

  async handle(s: Scope, raw: Buffer): Promise<void> {
    const d = this.d;
    const rec = s.rec;
    s.stage = 'engine';
    const headers = upstreamRequestHeaders(s.req.headers, { requestId: s.id, engineApiKey: d.engineApiKey, contentLength: raw.length });
    const t = performance.now();
    let r;
    try {
      r = await dispatch(d, 'engine', d.engines, {
        method: 'POST',
        path: s.req.url ?? rec.route,
        headers,
        body: raw,
        signal: s.ac,
        headersTimeout: d.timeouts.decodeHeadersMs,
        bodyTimeout: d.timeouts.decodeIdleMs,
      });
    } catch (e) {
      throw s.gone ? e : upstreamFailure(e, 'engine');
    }
    rec.engine = r.engine.name;
    rec.decodeTtfbMs = performance.now() - t;
    d.metrics.engineTtfbSeconds.observe(rec.decodeTtfbMs / 1000);
    rec.status = r.res.statusCode;
    await streamBack(r, s, 'engine', this.pipe, {
      'x-request-id': s.id,
      'server-timing': `queue;dur=${rec.queueMs!.toFixed(3)}, engine;dur=${rec.decodeTtfbMs.toFixed(3)}`,
    });
  }
}
