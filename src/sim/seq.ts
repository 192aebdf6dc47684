/** One request inside the engine, and how its tokens are produced (deterministic per prompt and seed). */
import { mulberry32, hashIds, type Rng } from './rng.js';
import { EOS_TOKEN_ID, tokenText, wordTokenId } from './tokenizer.js';

/** `error`: the request failed inside the engine (e.g. a KV load failure with kv_load_failure_policy "fail"). */
export type FinishReason = 'length' | 'stop' | 'abort' | 'error';

/** What the KV connector decided when the request was first scheduled. */
export interface Admission {
  /** Prompt tokens whose KV comes from outside (no compute). */
  external: number;
  /** Time the load or pull adds to the request's first prefill step, ms. */
  ioMs: number;
  /** Saves the request's KV during its first prefill step (given the step's duration), layer by layer. */
  save?: (stepMs: number) => Promise<void>;
  /** The load failed and kv_load_failure_policy is "fail". */
  fail?: boolean;
}

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
  /** Connector lookup at first scheduling, given the local prefix-cache hit (tokens). */
  admit?: (localHit: number) => Admission;
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
  /** Tokens whose KV is in the cache (prompt, then prompt + generated). */
  computed = 0;
  /** Tokens to prefill before the next token comes out (the prompt; prompt + generated after a preemption). */
  target = 0;
  /** KV blocks held. */
  blocks = 0;
  admitted = false;
  ioStarted = false;
  admission: Admission | null = null;
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
    this.target = params.promptIds.length;
  }
}

/** Generate one token for `s`; the last one carries its finish reason. */
export function emitToken(s: Seq, now: number): void {
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
