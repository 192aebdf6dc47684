/**
 * The forward route: a request sent as is to one engine of a group (the consumers of a PD proxy, the engines of a
 * single-stage one), whose answer is streamed back: every /v1/* request other than completions and chat.
 */
import { dispatch, type DispatchDeps, type EngineGroup } from './dispatch.js';
import { upstreamRequestHeaders } from './headers.js';
import { upstreamFailure } from './failures.js';
import { streamBack, type PipeDeps } from './stream-back.js';
import type { Route, Scope } from './frame.js';
import type { ProxyMetrics } from './metrics.js';

export interface ForwardDeps extends DispatchDeps {
  engineApiKey: string | undefined;
  timeouts: { decodeHeadersMs: number; decodeIdleMs: number };
  metrics: ProxyMetrics;
}

export class ForwardRoute implements Route<Buffer | null> {
  readonly firstStage = 'forward' as const;
  private readonly pipe: PipeDeps;

  constructor(
    private readonly d: ForwardDeps,
    private readonly group: EngineGroup,
    /** Generation requests pass the gate (rate limit + admission); cheap GETs do not. */
    readonly gated: boolean,
  ) {
    this.pipe = { metrics: d.metrics, decodeIdleMs: d.timeouts.decodeIdleMs };
  }

  prepare(_s: Scope, raw: Buffer | null): Buffer | null {
    return raw;
  }

  async handle(s: Scope, raw: Buffer | null): Promise<void> {
    const d = this.d;
    const rec = s.rec;
    const headers = upstreamRequestHeaders(s.req.headers, {
      requestId: s.id,
      engineApiKey: d.engineApiKey,
      ...(raw !== null ? { contentLength: raw.length } : {}),
    });
    let r;
    try {
      r = await dispatch(d, 'forward', this.group, {
        method: rec.method,
        path: s.req.url ?? '/',
        headers,
        body: raw,
        signal: s.ac,
        headersTimeout: d.timeouts.decodeHeadersMs,
        bodyTimeout: d.timeouts.decodeIdleMs,
      });
    } catch (e) {
      throw s.gone ? e : upstreamFailure(e, 'forward');
    }
    if (this.group.role === 'engine') rec.engine = r.engine.name;
    else rec.consumer = r.engine.name;
    rec.decodeTtfbMs = performance.now() - s.t0;
    rec.status = r.res.statusCode;
    await streamBack(r, s, 'forward', this.pipe, { 'x-request-id': s.id });
  }
}
