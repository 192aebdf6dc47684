/**
 * Prometheus metrics with vLLM's (v1 engine) names and labels (`model_name`, `engine`), plus the simulator's
 * connector lookup counters (`pd_sim_kv_lookups_total{connector,result}`).
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const TTFT_BUCKETS = [0.001, 0.005, 0.01, 0.02, 0.04, 0.06, 0.08, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0, 160.0, 640.0, 2560.0];
const ITL_BUCKETS = [0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2, 0.3, 0.4, 0.5, 0.75, 1.0, 2.5, 5.0, 7.5, 10.0, 20.0, 40.0, 80.0];
const LATENCY_BUCKETS = [0.3, 0.5, 0.8, 1.0, 1.5, 2.0, 2.5, 5.0, 10.0, 15.0, 20.0, 30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0];
function tokenBuckets(maxModelLen: number): number[] {
  const out: number[] = [];
  for (let e = 0; ; e++) {
    for (const m of [1, 2, 5]) {
      const v = m * 10 ** e;
      if (v > maxModelLen) return out;
      out.push(v);
    }
  }
}

export class SimMetrics {
  readonly registry = new Registry();
  private readonly labels: { model_name: string; engine: string };
  readonly running: Gauge;
  readonly waiting: Gauge;
  readonly kvUsage: Gauge;
  readonly promptTokens: Counter;
  readonly generationTokens: Counter;
  readonly requestSuccess: Counter;
  readonly prefixQueries: Counter;
  readonly prefixHits: Counter;
  readonly externalQueries: Counter;
  readonly externalHits: Counter;
  readonly lookups: Counter;
  readonly ttft: Histogram;
  readonly itl: Histogram;
  readonly tpot: Histogram;
  readonly e2e: Histogram;
  readonly queueTime: Histogram;
  readonly prefillTime: Histogram;
  readonly decodeTime: Histogram;
  readonly promptLen: Histogram;
  readonly genLen: Histogram;
  readonly preemptions: Counter;

  constructor(modelName: string, maxModelLen: number, getStats: () => { running: number; waiting: number; kvUsage: number }) {
    this.labels = { model_name: modelName, engine: '0' };
    const r = [this.registry];
    const L = ['model_name', 'engine'] as const;
    const labels = this.labels;
    this.running = new Gauge({
      name: 'vllm:num_requests_running', help: 'Number of requests in model execution batches.', labelNames: L, registers: r,
      collect() { this.set(labels, getStats().running); },
    });
    this.waiting = new Gauge({
      name: 'vllm:num_requests_waiting', help: 'Number of requests waiting to be processed.', labelNames: L, registers: r,
      collect() { this.set(labels, getStats().waiting); },
    });
    this.kvUsage = new Gauge({
      name: 'vllm:kv_cache_usage_perc', help: 'KV-cache usage. 1 means 100 percent usage.', labelNames: L, registers: r,
      collect() { this.set(labels, getStats().kvUsage); },
    });
    this.preemptions = new Counter({ name: 'vllm:num_preemptions_total', help: 'Cumulative number of preemption from the engine.', labelNames: L, registers: r });
    this.promptTokens = new Counter({ name: 'vllm:prompt_tokens_total', help: 'Number of prefill tokens processed.', labelNames: L, registers: r });
    this.generationTokens = new Counter({ name: 'vllm:generation_tokens_total', help: 'Number of generation tokens processed.', labelNames: L, registers: r });
    this.requestSuccess = new Counter({
      name: 'vllm:request_success_total', help: 'Count of successfully processed requests.', labelNames: [...L, 'finished_reason'], registers: r,
    });
    this.prefixQueries = new Counter({ name: 'vllm:prefix_cache_queries_total', help: 'Prefix cache queries, in terms of number of queried tokens.', labelNames: L, registers: r });
    this.prefixHits = new Counter({ name: 'vllm:prefix_cache_hits_total', help: 'Prefix cache hits, in terms of number of cached tokens.', labelNames: L, registers: r });
    this.externalQueries = new Counter({
      name: 'vllm:external_prefix_cache_queries_total', help: 'External prefix cache queries from KV connector cross-instance cache sharing, in terms of number of queried tokens.', labelNames: L, registers: r,
    });
    this.externalHits = new Counter({
      name: 'vllm:external_prefix_cache_hits_total', help: 'External prefix cache hits from KV connector cross-instance cache sharing, in terms of number of cached tokens.', labelNames: L, registers: r,
    });
    this.lookups = new Counter({
      name: 'pd_sim_kv_lookups_total', help: 'Simulator: KV connector lookups per request, by result (hit, miss).', labelNames: [...L, 'connector', 'result'], registers: r,
    });
    const hist = (name: string, help: string, buckets: number[]): Histogram => new Histogram({ name, help, buckets, labelNames: L, registers: r });
    this.ttft = hist('vllm:time_to_first_token_seconds', 'Histogram of time to first token in seconds.', TTFT_BUCKETS);
    this.itl = hist('vllm:inter_token_latency_seconds', 'Histogram of inter-token latency in seconds.', ITL_BUCKETS);
    this.tpot = hist('vllm:request_time_per_output_token_seconds', 'Histogram of time_per_output_token_seconds per request.', ITL_BUCKETS);
    this.e2e = hist('vllm:e2e_request_latency_seconds', 'Histogram of e2e request latency in seconds.', LATENCY_BUCKETS);
    this.queueTime = hist('vllm:request_queue_time_seconds', 'Histogram of time spent in WAITING phase for request.', LATENCY_BUCKETS);
    this.prefillTime = hist('vllm:request_prefill_time_seconds', 'Histogram of time spent in PREFILL phase for request.', LATENCY_BUCKETS);
    this.decodeTime = hist('vllm:request_decode_time_seconds', 'Histogram of time spent in DECODE phase for request.', LATENCY_BUCKETS);
    const tb = tokenBuckets(maxModelLen);
    this.promptLen = hist('vllm:request_prompt_tokens', 'Number of prefill tokens processed.', tb);
    this.genLen = hist('vllm:request_generation_tokens', 'Number of generation tokens processed.', tb);
    // Initialise label sets so that every series is present from the start, as vLLM does.
    for (const c of [this.promptTokens, this.generationTokens, this.prefixQueries, this.prefixHits, this.externalQueries, this.externalHits, this.preemptions]) c.inc(labels, 0);
    for (const h of [this.ttft, this.itl, this.tpot, this.e2e, this.queueTime, this.prefillTime, this.decodeTime, this.promptLen, this.genLen]) h.zero(labels);
    for (const fr of ['stop', 'length', 'abort']) this.requestSuccess.inc({ ...labels, finished_reason: fr }, 0);
  }

  get l(): { model_name: string; engine: string } {
    return this.labels;
  }

  /** Label-bound children (prom-client hashes label objects on every call otherwise). */
  private bound: {
    e2e: { observe(v: number): void }; queue: { observe(v: number): void }; prefill: { observe(v: number): void };
    decode: { observe(v: number): void }; promptLen: { observe(v: number): void }; genLen: { observe(v: number): void };
    tpot: { observe(v: number): void }; ttft: { observe(v: number): void }; itl: { observe(v: number): void };
    prompt: { inc(v?: number): void }; gen: { inc(v?: number): void }; success: Map<string, { inc(v?: number): void }>;
  } | null = null;

  private b(): NonNullable<SimMetrics['bound']> {
    if (this.bound) return this.bound;
    const l = this.labels;
    this.bound = {
      e2e: this.e2e.labels(l), queue: this.queueTime.labels(l), prefill: this.prefillTime.labels(l),
      decode: this.decodeTime.labels(l), promptLen: this.promptLen.labels(l), genLen: this.genLen.labels(l),
      tpot: this.tpot.labels(l), ttft: this.ttft.labels(l), itl: this.itl.labels(l),
      prompt: this.promptTokens.labels(l), gen: this.generationTokens.labels(l),
      success: new Map(['stop', 'length', 'abort'].map((r) => [r, this.requestSuccess.labels({ ...l, finished_reason: r })])),
    };
    return this.bound;
  }

  /** Tokens computed (prefill) and generated in an engine step. */
  addTokens(prompt: number, gen: number): void {
    const b = this.b();
    if (prompt) b.prompt.inc(prompt);
    if (gen) b.gen.inc(gen);
  }

  abort(): void {
    this.b().success.get('abort')!.inc();
  }

  /** Record a finished request (times in ms from performance.now()). */
  observeRequest(t: { arrival: number; scheduled: number; firstToken: number; lastToken: number }, promptTokens: number, genTokens: number, reason: string): void {
    const b = this.b();
    b.success.get(reason)?.inc();
    b.e2e.observe((t.lastToken - t.arrival) / 1000);
    b.queue.observe(Math.max(0, t.scheduled - t.arrival) / 1000);
    b.prefill.observe(Math.max(0, t.firstToken - t.scheduled) / 1000);
    b.decode.observe(Math.max(0, t.lastToken - t.firstToken) / 1000);
    b.promptLen.observe(promptTokens);
    b.genLen.observe(genTokens);
    b.ttft.observe((t.firstToken - t.arrival) / 1000);
    if (genTokens > 1) {
      const itl = (t.lastToken - t.firstToken) / 1000 / (genTokens - 1);
      b.tpot.observe(itl);
      b.itl.observe(itl);
    }
  }

  async text(): Promise<string> {
    return this.registry.metrics();
  }
}
