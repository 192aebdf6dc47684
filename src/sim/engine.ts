/**
 * The simulated engine core: vLLM's v1 continuous-batching scheduler (vllm/v1/core/sched/scheduler.py) reduced to
 * what shapes latency and capacity. Each step gets a token budget (max_num_batched_tokens): running requests first
 * (one token per decode, a chunk of the prompt per prefill: chunked prefill), then waiting requests while there are
 * free slots (max_num_seqs) and KV blocks. A request's prompt starts from its local prefix-cache hit plus the
 * tokens its KV connector loads; when a decode needs a block and none is free the last running request is preempted
 * (recompute: its blocks are freed, it goes back to the head of the queue). The step's duration comes from the cost
 * model (cost.ts); a step that saves or loads KV waits for that I/O too (the connector works inside the forward pass).
 */
import type { SimKnobs } from './knobs.js';
import { mulberry32, type Rng } from './rng.js';
import { BlockPool } from './blocks.js';
import { stepMs, type CostModel } from './cost.js';
import { Seq, emitToken, type GenParams, type GenSink } from './seq.js';

export { Seq, type FinishReason, type GenParams, type GenSink, type TokenFinish, type SeqTimes, type Admission } from './seq.js';

export interface EngineStats {
  running: number;
  waiting: number;
}

export interface EngineSizing {
  maxNumSeqs: number;
  maxNumBatchedTokens: number;
  chunkedPrefill: boolean;
  pool: BlockPool;
  cost: CostModel;
}

export interface EngineEvents {
  /** Prompt tokens computed and tokens generated in a step. */
  step?(promptTokens: number, genTokens: number): void;
  /** A request was admitted: prompt tokens queried and served by the local prefix cache. */
  prefixCache?(queried: number, hit: number): void;
  /** A request was preempted (recompute). */
  preempted?(seq: Seq, total: number): void;
}

/** Sizing for unit tests and callers that only care about the batch cap. */
export function simpleSizing(maxNumSeqs: number): EngineSizing {
  return {
    maxNumSeqs,
    maxNumBatchedTokens: 1 << 30,
    chunkedPrefill: true,
    pool: new BlockPool(1 << 30, 16, false),
    cost: { tp: 1, pp: 1, layers: 1, kvBytesPerTokenPerGpu: 0, hbmBytesPerMs: Infinity, allReduceMs: 0, ppHopMs: 0 },
  };
}

export class Engine {
  private readonly waiting: Seq[] = [];
  private running: Seq[] = [];
  private stepScheduled = false;
  /** How long the last step's completion (token callbacks) took, ms. */
  private lastOverheadMs = 0;
  private readonly rng: Rng;
  private preemptions = 0;
  readonly sizing: EngineSizing;
  events: EngineEvents = {};
  /** Called at the end of every step with the number of prompt tokens computed and tokens generated. */
  set onStep(f: ((promptTokens: number, genTokens: number) => void) | null) {
    this.events.step = f ?? undefined;
  }

  constructor(
    private readonly knobs: SimKnobs,
    sizing: EngineSizing | number,
  ) {
    this.sizing = typeof sizing === 'number' ? simpleSizing(sizing) : sizing;
    this.rng = mulberry32(knobs.seed || 1);
  }

  get maxNumSeqs(): number {
    return this.sizing.maxNumSeqs;
  }

  get stats(): EngineStats {
    return { running: this.running.length, waiting: this.waiting.length };
  }

  /** Running + waiting: how loaded this engine is (DP picks the least loaded). */
  get load(): number {
    return this.running.length + this.waiting.length;
  }

  get kvUsage(): number {
    return this.sizing.pool.usage;
  }

  submit(params: GenParams, sink: GenSink): Seq {
    const seq = new Seq(params, sink, performance.now(), this.knobs.eosAfter);
    this.waiting.push(seq);
    this.kick();
    return seq;
  }

  /** Stop generating for a request (client went away); its slot is freed at the next step. */
  abort(seq: Seq): void {
    if (seq.finished) return;
    seq.finished = true;
    const i = this.waiting.indexOf(seq);
    if (i >= 0) {
      this.waiting.splice(i, 1);
      this.free(seq);
    }
    this.kick();
  }

  /** Abort everything (engine death / shutdown). */
  abortAll(): Seq[] {
    const all = [...this.running, ...this.waiting].filter((s) => !s.finished);
    for (const s of all) {
      s.finished = true;
      this.free(s);
    }
    this.running = [];
    this.waiting.length = 0;
    return all;
  }

  private free(s: Seq): void {
    if (s.blocks > 0) this.sizing.pool.release(s.blocks, s.prefilled ? s.params.promptIds : null);
    s.blocks = 0;
  }

  private kick(): void {
    if (this.stepScheduled) return;
    this.stepScheduled = true;
    setImmediate(() => this.step());
  }

  private jitter(): number {
    const j = this.knobs.jitter;
    return j > 0 ? 1 + j * (2 * this.rng() - 1) : 1;
  }

  /** First scheduling of a waiting request: prefix cache, connector, blocks. False when it must wait. */
  private admit(s: Seq, now: number): boolean {
    const pool = this.sizing.pool;
    const L = s.params.promptIds.length;
    if (!s.admitted) {
      const local = pool.localHit(s.params.promptIds);
      if (pool.prefixCaching) this.events.prefixCache?.(L, local);
      const a = s.params.admit?.(local) ?? { external: 0, ioMs: 0 };
      s.admission = a;
      if (a.fail) {
        s.finished = true;
        s.sink.onFinish('error', null, s);
        return true;
      }
      // All prompt tokens known: the last one is computed again (vLLM keeps one token to sample from).
      s.computed = Math.min(L - 1, local + a.external);
      s.target = L;
      s.admitted = true;
    } else if (s.computed === 0) {
      // Back from preemption: the prefix cache may still hold its blocks.
      s.computed = Math.min(s.target - 1, pool.localHit(s.params.promptIds));
    }
    const need = pool.blocksFor(s.target + 1);
    if (!pool.allocate(need)) return false;
    s.blocks = need;
    s.times.scheduled = s.times.scheduled || now;
    s.readyAt = now + s.params.stallMs + this.knobs.prefillBaseMs * this.knobs.slowdown * s.params.slowdown;
    s.sink.onScheduled?.();
    return true;
  }

  /** Preempt the last running request other than `keep` (recompute mode). */
  private preemptOne(keep: Seq): boolean {
    for (let i = this.running.length - 1; i >= 0; i--) {
      const v = this.running[i]!;
      if (v === keep || v.finished) continue;
      this.running.splice(i, 1);
      this.free(v);
      v.computed = 0;
      v.target = v.params.promptIds.length + v.generated;
      v.admitted = true;
      this.waiting.unshift(v);
      this.preemptions++;
      this.events.preempted?.(v, this.preemptions);
      return true;
    }
    return false;
  }

  private step(): void {
    this.stepScheduled = false;
    const now = performance.now();
    const { pool, maxNumSeqs } = this.sizing;
    if (this.running.some((s) => s.finished)) {
      for (const s of this.running) if (s.finished) this.free(s);
      this.running = this.running.filter((s) => !s.finished);
    }
    let budget = this.sizing.maxNumBatchedTokens;
    const batch: Array<{ s: Seq; tokens: number }> = [];
    let nextReady = Infinity;
    let preempted = false;
    let prefillTokens = 0;
    let decodeSeqs = 0;
    let contextTokens = 0;
    let ioMs = 0;
    const saves: Array<(ms: number) => Promise<void>> = [];
    for (let idx = 0; idx < this.running.length && budget > 0; idx++) {
      const s = this.running[idx]!;
      if (s.finished) continue;
      if (s.readyAt > now) {
        nextReady = Math.min(nextReady, s.readyAt);
        continue;
      }
      const prefilling = s.computed < s.target;
      let tokens = prefilling ? Math.min(s.target - s.computed, budget) : 1;
      if (prefilling && !this.sizing.chunkedPrefill && tokens < s.target - s.computed) continue;
      // A decode that crosses into a new block needs one; preempt the newest running request to get it.
      const need = pool.blocksFor(s.computed + tokens + 1) - s.blocks;
      let ok = need <= 0 || pool.allocate(need);
      while (!ok) {
        if (!this.preemptOne(s)) break;
        preempted = true;
        ok = pool.allocate(need);
      }
      if (!ok) continue;
      if (need > 0) s.blocks += need;
      if (prefilling) {
        prefillTokens += tokens;
        if (!s.ioStarted) {
          s.ioStarted = true;
          ioMs += s.admission?.ioMs ?? 0;
          if (s.admission?.save) saves.push(s.admission.save);
        }
      } else {
        decodeSeqs++;
        contextTokens += s.computed;
        tokens = 1;
      }
      budget -= tokens;
      batch.push({ s, tokens });
    }
    // vLLM admits no new request in a step that had to preempt.
    while (!preempted && this.running.length < maxNumSeqs && this.waiting.length > 0) {
      const s = this.waiting[0]!;
      if (s.finished) {
        this.waiting.shift();
        continue;
      }
      if (!this.admit(s, now)) break;
      this.waiting.shift();
      if (!s.finished) {
        this.running.push(s);
        nextReady = Math.min(nextReady, s.readyAt);
      }
    }
    if (batch.length === 0) {
      if (this.running.length === 0 && this.waiting.length === 0) return;
      if (nextReady !== Infinity) setTimeout(() => this.kick(), Math.max(1, nextReady - now));
      else if (nextReady === Infinity && this.waiting.length > 0 && this.running.length === 0) this.kick();
      return;
    }
    const k = this.knobs;
    const ms = stepMs(this.sizing.cost, k, { prefillTokens, decodeSeqs, contextTokens, running: this.running.length, maxNumSeqs, ioMs }) * this.jitter() * k.slowdown;
    this.stepScheduled = true;
    const io = saves.length > 0 ? Promise.all(saves.map((f) => f(ms))) : null;
    const finish = (): void => this.completeStep(batch, prefillTokens, ms);
    // The simulator's own work for the previous step counts towards this step's duration, so that a heavily
    // loaded simulator does not stretch the inter-token latency it models.
    const wait = ms - this.lastOverheadMs;
    const afterTimer = (): void => {
      if (io) void io.then(finish, finish);
      else finish();
    };
    if (wait >= 1) setTimeout(afterTimer, wait);
    else setImmediate(afterTimer);
  }

  private completeStep(batch: Array<{ s: Seq; tokens: number }>, promptTokens: number, stepMsValue: number): void {
    const now = performance.now();
    try {
      let gen = 0;
      for (const { s, tokens } of batch) {
        if (s.finished) continue;
        s.computed += tokens;
        if (s.computed < s.target) continue; // more prompt chunks to go
        s.prefilled = true;
        emitToken(s, now);
        gen++;
        if (s.finished) this.free(s);
        // A per-request slowdown s makes this request skip steps: its next token comes (s - 1) step times later.
        else if (s.params.slowdown > 1) s.readyAt = now + Math.max(stepMsValue, 1) * (s.params.slowdown - 1);
      }
      this.events.step?.(promptTokens, gen);
    } finally {
      this.lastOverheadMs = performance.now() - now;
    }
    this.stepScheduled = false;
    this.step();
  }

  /**
   * Zero-latency fast path for a non-streaming request: everything happens synchronously, no scheduling. Only
   * valid when every timing knob is 0 and the request does no connector I/O.
   */
  runNow(params: GenParams, sink: GenSink): Seq {
    const now = performance.now();
    const s = new Seq(params, sink, now, this.knobs.eosAfter);
    const pool = this.sizing.pool;
    const L = params.promptIds.length;
    const local = pool.localHit(params.promptIds);
    if (pool.prefixCaching) this.events.prefixCache?.(L, local);
    const a = params.admit?.(local) ?? { external: 0, ioMs: 0 };
    s.times.scheduled = now;
    if (a.fail) {
      s.finished = true;
      sink.onFinish('error', null, s);
      return s;
    }
    s.computed = Math.min(L - 1, local + a.external);
    s.prefilled = true;
    sink.onScheduled?.();
    const computed = L - s.computed;
    while (!s.finished) emitToken(s, now);
    pool.release(0, params.promptIds);
    this.events.step?.(computed, s.generated);
    return s;
  }
}
