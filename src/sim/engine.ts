/**
 * The simulated engine: a continuous-batching scheduler with `max-num-seqs` running slots and a FIFO waiting
 * queue. A newly scheduled request first waits the constant prefill cost (its own overhead), then joins the batch.
 * Every step lasts (decode ITL if anything decodes) + (per-token cost of the uncached prompt tokens being
 * prefilled + KV load time of external tokens), times a contention factor that grows linearly from 1 (one running
 * request) to `timeFactorUnderLoad` (max-num-seqs running), times jitter and slowdown. Prefill tokens stall the
 * decodes of the same batch, as in vLLM. A zero-duration step runs on the next tick (zero-latency mode: no timers).
 */
import type { SimKnobs } from './options.js';
import { mulberry32, hashIds, type Rng } from './rng.js';
import { EOS_TOKEN_ID, tokenText, wordTokenId } from './tokenizer.js';

export type FinishReason = 'length' | 'stop' | 'abort';

export interface GenParams {
  promptIds: readonly number[];
  maxTokens: number;
  minTokens: number;
  ignoreEos: boolean;
  stop: readonly string[];
  stopTokenIds: readonly number[];
  includeStopStrInOutput: boolean;
  /** Per-request seed; with temperature 0 the output only depends on the prompt. */
  seed: number | null;
  temperature: number | null;
  /** Prompt tokens whose KV comes from outside (connector hit): no prefill compute, only load time. */
  externalTokens: number;
  /** Tokens whose KV this request transfers (load from storage / remote pull, or save to storage), ms each = kvLoadMsPerToken x kvCostScale. */
  kvTransferTokens?: number;
  /** Scale of the KV transfer cost (1 for storage, 0.1 for a NIXL GPU-to-GPU pull). */
  kvCostScale?: number;
  /** Per-request faults. */
  stallMs: number;
  slowdown: number;
}

export interface TokenFinish {
  reason: FinishReason;
  stopReason: string | number | null;
}

export interface GenSink {
  /** The request left the waiting queue. */
  onScheduled?(): void;
  /** One generated token; `finish` is set on the last one (its chunk carries finish_reason). */
  onToken(id: number, text: string, index: number, finish: TokenFinish | null): void;
  onFinish(reason: FinishReason, stopReason: string | number | null, seq: Seq): void;
}

export interface SeqTimes {
  arrival: number;
  scheduled: number;
  firstToken: number;
  lastToken: number;
}

export class Seq {
  prefilled = false;
  generated = 0;
  text = '';
  finished = false;
  readyAt = 0;
  readonly times: SeqTimes;
  readonly rng: Rng;
  readonly naturalLen: number;
  constructor(
    readonly params: GenParams,
    readonly sink: GenSink,
    now: number,
    eosAfter: number,
  ) {
    this.times = { arrival: now, scheduled: 0, firstToken: 0, lastToken: 0 };
    const h = hashIds(params.promptIds);
    const deterministic = params.seed !== null || params.temperature === 0;
    const seed = deterministic ? (h ^ ((params.seed ?? 0) * 2654435761)) >>> 0 : (Math.random() * 2 ** 32) >>> 0;
    this.rng = mulberry32(seed);
    this.naturalLen = eosAfter > 0 ? eosAfter : 32 + (h % 225);
  }
}

export interface EngineStats {
  running: number;
  waiting: number;
}

export class Engine {
  private readonly waiting: Seq[] = [];
  private running: Seq[] = [];
  private stepScheduled = false;
  /** How long the last step's completion (token callbacks) took, ms. */
  private lastOverheadMs = 0;
  private readonly rng: Rng;
  /** Called at the end of every step with the number of prompt tokens computed and tokens generated. */
  onStep: ((promptTokens: number, genTokens: number) => void) | null = null;

  constructor(
    private readonly knobs: SimKnobs,
    readonly maxNumSeqs: number,
  ) {
    this.rng = mulberry32(knobs.seed || 1);
  }

  get stats(): EngineStats {
    return { running: this.running.length, waiting: this.waiting.length };
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
    if (i >= 0) this.waiting.splice(i, 1);
  }

  /** Abort everything (engine death / shutdown). */
  abortAll(): Seq[] {
    const all = [...this.running, ...this.waiting].filter((s) => !s.finished);
    for (const s of all) s.finished = true;
    this.running = [];
    this.waiting.length = 0;
    return all;
  }

  private kick(): void {
    if (this.stepScheduled) return;
    this.stepScheduled = true;
    setImmediate(() => this.step());
  }

  private factor(n: number): number {
    const f = this.knobs.timeFactorUnderLoad;
    if (n <= 1 || this.maxNumSeqs <= 1) return 1;
    return 1 + ((Math.max(f, 0) - 1) * (n - 1)) / (this.maxNumSeqs - 1);
  }

  private jitter(): number {
    const j = this.knobs.jitter;
    return j > 0 ? 1 + j * (2 * this.rng() - 1) : 1;
  }

  private step(): void {
    this.stepScheduled = false;
    const now = performance.now();
    this.running = this.running.filter((s) => !s.finished);
    while (this.running.length < this.maxNumSeqs && this.waiting.length > 0) {
      const s = this.waiting.shift()!;
      if (s.finished) continue;
      s.times.scheduled = now;
      // The constant part of the prefill (API server + scheduling overhead) delays this request only; the
      // per-token part is batch work that slows every request in the step.
      s.readyAt = now + s.params.stallMs + this.knobs.prefillBaseMs * this.knobs.slowdown * s.params.slowdown;
      this.running.push(s);
      s.sink.onScheduled?.();
    }
    if (this.running.length === 0) return;

    const k = this.knobs;
    let prefillMs = 0;
    let decodeMs = 0;
    let promptTokens = 0;
    const batch: Seq[] = [];
    let nextReady = Infinity;
    for (const s of this.running) {
      if (s.readyAt > now) {
        nextReady = Math.min(nextReady, s.readyAt);
        continue;
      }
      batch.push(s);
      if (!s.prefilled) {
        const computed = Math.max(0, s.params.promptIds.length - s.params.externalTokens);
        const kvTokens = s.params.kvTransferTokens ?? s.params.externalTokens;
        prefillMs += (k.prefillMsPerToken * computed + k.kvLoadMsPerToken * (s.params.kvCostScale ?? 1) * kvTokens) * s.params.slowdown;
        promptTokens += computed;
      } else decodeMs = k.itlMs;
    }
    if (batch.length === 0) {
      setTimeout(() => this.kick(), Math.max(1, nextReady - now));
      return;
    }
    const ms = (prefillMs + decodeMs) * this.factor(this.running.length) * this.jitter() * k.slowdown;
    const finish = (): void => this.completeStep(batch, promptTokens, ms);
    // The simulator's own work for the previous step (writing thousands of chunks) counts towards this step's
    // duration, so that a heavily loaded simulator does not stretch the inter-token latency it models.
    const wait = ms - this.lastOverheadMs;
    if (wait >= 1) setTimeout(finish, wait);
    else if (ms > 0) setImmediate(finish);
    else setImmediate(finish);
    this.stepScheduled = true;
  }

  private completeStep(batch: Seq[], promptTokens: number, stepMs: number): void {
    const now = performance.now();
    try {
      this.completeStepAt(batch, promptTokens, stepMs, now);
    } finally {
      this.lastOverheadMs = performance.now() - now;
    }
  }

  private completeStepAt(batch: Seq[], promptTokens: number, stepMs: number, now: number): void {
    let gen = 0;
    for (const s of batch) {
      if (s.finished) continue;
      s.prefilled = true;
      this.emit(s, now);
      gen++;
      // A per-request slowdown s makes this request skip steps: its next token comes (s - 1) step times later.
      if (s.params.slowdown > 1 && !s.finished) s.readyAt = now + Math.max(stepMs, 1) * (s.params.slowdown - 1);
    }
    this.onStep?.(promptTokens, gen);
    this.stepScheduled = false;
    this.step();
  }

  /** Generate one token for `s`; the last one carries its finish reason. */
  private emit(s: Seq, now: number): void {
    const p = s.params;
    const index = s.generated;
    if (s.times.firstToken === 0) s.times.firstToken = now;
    s.times.lastToken = now;
    s.generated++;
    // Natural end of the answer: the EOS token (counted, no text), never before min_tokens.
    if (!p.ignoreEos && index >= s.naturalLen && index >= p.minTokens && index > 0) {
      s.finished = true;
      s.sink.onToken(EOS_TOKEN_ID, '', index, { reason: 'stop', stopReason: null });
      s.sink.onFinish('stop', null, s);
      return;
    }
    const id = wordTokenId(Math.floor(s.rng() * 1e9));
    let text = tokenText(id);
    const prevLen = s.text.length;
    s.text += text;
    let stopReason: string | number | null = null;
    if (p.stop.length && s.generated >= p.minTokens) {
      for (const st of p.stop) {
        if (st === '') continue;
        const at = s.text.indexOf(st, Math.max(0, prevLen - st.length + 1));
        if (at >= 0) {
          const cut = p.includeStopStrInOutput ? at + st.length : at;
          text = s.text.slice(prevLen, Math.max(prevLen, cut));
          s.text = s.text.slice(0, Math.max(prevLen, cut));
          stopReason = st;
          break;
        }
      }
    }
    if (stopReason === null && p.stopTokenIds.includes(id) && s.generated > p.minTokens) stopReason = id;
    const fin: TokenFinish | null =
      stopReason !== null ? { reason: 'stop', stopReason } : s.generated >= p.maxTokens ? { reason: 'length', stopReason: null } : null;
    if (fin) s.finished = true;
    s.sink.onToken(id, text, index, fin);
    if (fin) s.sink.onFinish(fin.reason, fin.stopReason, s);
  }

  /**
   * Zero-latency fast path for a non-streaming request: everything happens synchronously, no scheduling.
   * Only valid when every timing knob is 0.
   */
  runNow(params: GenParams, sink: GenSink): Seq {
    const now = performance.now();
    const s = new Seq(params, sink, now, this.knobs.eosAfter);
    s.times.scheduled = now;
    s.prefilled = true;
    sink.onScheduled?.();
    while (!s.finished) this.emit(s, now);
    this.onStep?.(params.promptIds.length - params.externalTokens, s.generated);
    return s;
  }
}
