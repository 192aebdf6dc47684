/**
 * The proxy's Prometheus metrics, on a registry of its own (several proxies can live in one process and the
 * stack can register extra metrics on it). Gauges that mirror live state are computed at scrape time.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';
import { StageHistogram, type HistogramChild } from './stage-histogram.js';

export interface LiveState {
  inFlight(): number;
  queued(): number;
  engines(): { name: string; role: string; healthy: boolean; inFlight: number }[];
}

const LATENCY_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300];

export class ProxyMetrics {
  readonly registry = new Registry();
  readonly requests: Counter<'route' | 'status'>;
  readonly rejected: Counter<'reason'>;
  readonly queueWaits: Counter<'outcome'>;
  readonly queueWaitSeconds: Histogram<never>;
  readonly rateLimitWaits: Counter<never>;
  readonly nixlMissingParams: Counter<never>;
  readonly upstreamErrors: Counter<'engine' | 'stage' | 'kind'>;
  readonly retries: Counter<'stage'>;
  readonly clientAborts: Counter<'stage'>;
  readonly midStreamErrors: Counter<never>;
  readonly decodeFailures: Counter<'how'>;
  private readonly stageSeconds: StageHistogram<'prefill' | 'decode_ttfb' | 'engine_ttfb' | 'total'>;
  readonly prefillSeconds: HistogramChild;
  readonly decodeTtfbSeconds: HistogramChild;
  readonly engineTtfbSeconds: HistogramChild;
  readonly totalSeconds: HistogramChild;

  /** Requests counted since the last scrape, by route and status; added to the counter when it is read. */
  private readonly pendingRequests = new Map<string, { route: string; status: string; n: number }>();

  /**
   * pd_proxy_requests_total{route,status} += 1. This runs once per request, so it only bumps a number; the
   * prom-client counter gets the sum when /metrics is read (its collect hook).
   */
  countRequest(route: string, status: number): void {
    const key = route + ' ' + status;
    const p = this.pendingRequests.get(key);
    if (p !== undefined) p.n++;
    else this.pendingRequests.set(key, { route, status: String(status), n: 1 });
  }

  /** Sum of pd_proxy_rejected_total over every reason. */
  rejectedCount = 0;

  reject(reason: string): void {
    this.rejected.inc({ reason });
    this.rejectedCount++;
  }

  constructor(live: LiveState) {
    const registers = [this.registry];
    const pending = this.pendingRequests;
    this.requests = new Counter({
      name: 'pd_proxy_requests_total',
      help: 'Client requests answered, by route and status code.',
      labelNames: ['route', 'status'],
      registers,
      collect() {
        for (const p of pending.values()) {
          if (p.n === 0) continue;
          this.inc({ route: p.route, status: p.status }, p.n);
          p.n = 0;
        }
      },
    });
    // registry.resetMetrics() must also drop the counts not yet handed to the counter.
    const resetRequests = this.requests.reset.bind(this.requests);
    this.requests.reset = () => {
      pending.clear();
      resetRequests();
    };
    this.rejected = new Counter({
      name: 'pd_proxy_rejected_total',
      help: 'Requests refused by the proxy before any engine saw them (rate_limit, queue_full, queue_timeout, no_engine, bad_request, too_large, unauthorized, request_timeout, body_budget).',
      labelNames: ['reason'],
      registers,
    });
    this.queueWaits = new Counter({
      name: 'pd_proxy_queue_waits_total',
      help: 'Requests that had to wait in the admission queue, by outcome (admitted, timeout, aborted).',
      labelNames: ['outcome'],
      registers,
    });
    this.queueWaitSeconds = new Histogram({
      name: 'pd_proxy_queue_wait_seconds',
      help: 'Time spent waiting in the admission queue (requests that waited).',
      buckets: LATENCY_BUCKETS,
      registers,
    });
    this.rateLimitWaits = new Counter({
      name: 'pd_proxy_rate_limit_waits_total',
      help: 'Requests that waited for a rate-limit token (on-rate-limit=wait).',
      registers,
    });
    this.nixlMissingParams = new Counter({
      name: 'pd_proxy_kv_transfer_params_missing_total',
      help: 'Stage 1 answers without kv_transfer_params although the connector needs them (the decode engine recomputes the prompt).',
      registers,
    });
    this.upstreamErrors = new Counter({
      name: 'pd_proxy_upstream_errors_total',
      help: 'Failed engine requests (connection errors, timeouts, broken streams), by engine, stage and kind.',
      labelNames: ['engine', 'stage', 'kind'],
      registers,
    });
    this.retries = new Counter({
      name: 'pd_proxy_retries_total',
      help: 'Requests retried on another engine after a connection error before any byte was sent.',
      labelNames: ['stage'],
      registers,
    });
    this.clientAborts = new Counter({
      name: 'pd_proxy_client_aborts_total',
      help: 'Clients that disconnected before their answer was complete, by the stage that was running.',
      labelNames: ['stage'],
      registers,
    });
    this.midStreamErrors = new Counter({
      name: 'pd_proxy_mid_stream_errors_total',
      help: 'Decode streams that broke after the first byte (ended with an SSE error event).',
      registers,
    });
    this.decodeFailures = new Counter({
      name: 'pd_proxy_decode_failures_total',
      help:
        'Decode requests that failed inside the consumer after a successful prefill, by how the failure reached the ' +
        'client: status (a 5xx answer) or stream (an error event in a 200 stream). With kv_load_failure_policy=fail ' +
        'this is how a failed KV transfer ends (vLLM answers "Internal server error").',
      labelNames: ['how'],
      registers,
    });
    this.stageSeconds = new StageHistogram(
      'pd_proxy_stage_duration_seconds',
      'Per-stage latency: prefill (whole stage 1), decode_ttfb (stage 2 until response headers), engine_ttfb (the ' +
        'engine of a single-stage proxy until response headers), total.',
      'stage',
      ['prefill', 'decode_ttfb', 'engine_ttfb', 'total'],
      LATENCY_BUCKETS,
      this.registry,
    );
    this.prefillSeconds = this.stageSeconds.labels('prefill');
    this.decodeTtfbSeconds = this.stageSeconds.labels('decode_ttfb');
    this.engineTtfbSeconds = this.stageSeconds.labels('engine_ttfb');
    this.totalSeconds = this.stageSeconds.labels('total');
    new Gauge({
      name: 'pd_proxy_in_flight',
      help: 'Generation requests being served by the engines now (admission slots taken).',
      registers,
      collect() {
        this.set(live.inFlight());
      },
    });
    new Gauge({
      name: 'pd_proxy_queue_depth',
      help: 'Requests waiting in the admission queue now.',
      registers,
      collect() {
        this.set(live.queued());
      },
    });
    new Gauge({
      name: 'pd_proxy_engine_healthy',
      help: '1 when the engine is in rotation, 0 when taken out.',
      labelNames: ['engine', 'role'],
      registers,
      collect() {
        for (const e of live.engines()) this.set({ engine: e.name, role: e.role }, e.healthy ? 1 : 0);
      },
    });
    new Gauge({
      name: 'pd_proxy_engine_in_flight',
      help: 'Requests the proxy has open on each engine now.',
      labelNames: ['engine', 'role'],
      registers,
      collect() {
        for (const e of live.engines()) this.set({ engine: e.name, role: e.role }, e.inFlight);
      },
    });
  }
}

/** Requests per second over the last few seconds (1-second buckets). */
export class RecentRate {
  private readonly counts: number[];
  private readonly stamps: number[];
  private readonly started = Date.now();

  constructor(private readonly windowSeconds = 5) {
    this.counts = new Array<number>(windowSeconds + 1).fill(0);
    this.stamps = new Array<number>(windowSeconds + 1).fill(-1);
  }

  mark(nowMs = Date.now()): void {
    const sec = Math.floor(nowMs / 1000);
    const i = sec % this.counts.length;
    if (this.stamps[i] !== sec) {
      this.stamps[i] = sec;
      this.counts[i] = 0;
    }
    this.counts[i]!++;
  }

  perSecond(nowMs = Date.now()): number {
    const sec = Math.floor(nowMs / 1000);
    let total = 0;
    for (let i = 0; i < this.counts.length; i++) {
      const s = this.stamps[i]!;
      if (s > sec - this.counts.length && s <= sec) total += this.counts[i]!;
    }
    const span = Math.min(this.windowSeconds + (nowMs % 1000) / 1000, Math.max(0.001, (nowMs - this.started) / 1000));
    return total / span;
  }
}
