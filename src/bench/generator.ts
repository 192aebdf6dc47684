/**
 * The open-loop load generator: arrival times are fixed in advance, each request is dispatched at its
 * time whatever happened to earlier ones (never waiting for responses), and how late each dispatch was is
 * recorded so a client that cannot keep up shows in the result instead of silently lowering the rate.
 * With --max-concurrency, an arrived request waits for a free slot (that wait is `queueMs`, like vLLM's
 * client queue time; it is not lateness).
 */
import { performance } from 'node:perf_hooks';
import { sleep } from '../util/timers.js';
import type { Dispatcher } from 'undici';
import { sendRequest, type PromptSpec, type RequestOutcome, type RequestSettings } from './request.js';

export interface LoadOptions {
  dispatcher: Dispatcher;
  settings: RequestSettings;
  prompts: PromptSpec[];
  /** Arrival offsets (ms from the run start), one per prompt, non-decreasing. */
  offsetsMs: number[];
  maxConcurrency?: number | null;
  /** Aborting it stops sending new requests; in-flight ones finish (Ctrl+C). */
  stopSignal?: AbortSignal;
  /** Aborting it cancels in-flight requests too (second Ctrl+C). */
  abortSignal?: AbortSignal;
  onEvent?: (ev: LoadEvent) => void;
}

export type LoadEvent =
  | { type: 'sent'; index: number }
  /** ttftMs / itlMs are the request's own (read-only; for running statistics such as the progress line). */
  | { type: 'done'; index: number; success: boolean; ttftMs: number | null; itlMs: readonly number[] };

export interface TimedOutcome extends RequestOutcome {
  index: number;
  /** Arrival time planned, ms since run start. */
  scheduledMs: number;
  /** When the generator reached the request (ms since run start). */
  arrivedMs: number;
  /** max(0, arrived − scheduled). */
  latenessMs: number;
  /** Waiting for a --max-concurrency slot. */
  queueMs: number;
  /** Handed to the socket, ms since run start. */
  sentMs: number;
}

export interface LoadResult {
  /** Requests actually sent, in send-index order. */
  outcomes: TimedOutcome[];
  /** performance.now() of the run's t=0. */
  runStart: number;
  planned: number;
  /** True when stopped before every prompt was sent. */
  partial: boolean;
}

class Semaphore {
  private free: number;
  private waiters: Array<() => void> = [];
  constructor(n: number) {
    this.free = n;
  }
  acquire(): Promise<void> | null {
    if (this.free > 0) {
      this.free--;
      return null;
    }
    return new Promise((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
  /** Wake every waiter (they will see the stop flag and give up). */
  drain(): void {
    for (const w of this.waiters.splice(0)) w();
  }
}

/** Numeric columns kept per request while a run is in flight (see OutcomeStore). */
const enum F {
  Status,
  StartAt,
  EndAt,
  Ttft,
  E2el,
  PromptLen,
  OutputTokens,
  PrefillMs,
  DecodeTtfbMs,
  ScheduledMs,
  ArrivedMs,
  LatenessMs,
  QueueMs,
  SentMs,
  Count,
}

const nn = (v: number | null): number => (v === null ? Number.NaN : v);
const orNull = (v: number): number | null => (Number.isNaN(v) ? null : v);

/**
 * Finished requests in typed arrays instead of one object graph each: at thousands of requests per second,
 * objects that live until the end of the run are copied by every young-generation GC (pauses of 5–10 ms that
 * make sends late). The TimedOutcome objects are built once, after the last response.
 */
class OutcomeStore {
  private readonly num: Float64Array;
  /** 0 = not recorded; 1 = recorded; | 2 success; | 4 usage from server; | 8 usage from chunks. */
  private readonly flags: Uint8Array;
  private readonly itlStart: Int32Array;
  private readonly itlCount: Int32Array;
  private itl = new Float64Array(1024);
  private tokens = new Float64Array(1024);
  private itlUsed = 0;
  /** error, errorKind, generatedText, serverTiming — only for requests where one is set. */
  private readonly strings = new Map<number, [string, string | null, string, string | null]>();

  constructor(private readonly n: number) {
    this.num = new Float64Array(n * F.Count);
    this.flags = new Uint8Array(n);
    this.itlStart = new Int32Array(n);
    this.itlCount = new Int32Array(n);
  }

  record(i: number, o: RequestOutcome, scheduledMs: number, arrivedMs: number, queueMs: number, runStart: number): void {
    const b = i * F.Count;
    const v = this.num;
    v[b + F.Status] = nn(o.status);
    v[b + F.StartAt] = o.startAt;
    v[b + F.EndAt] = o.endAt;
    v[b + F.Ttft] = nn(o.ttftMs);
    v[b + F.E2el] = nn(o.e2elMs);
    v[b + F.PromptLen] = o.promptLen;
    v[b + F.OutputTokens] = o.outputTokens;
    v[b + F.PrefillMs] = nn(o.prefillMs);
    v[b + F.DecodeTtfbMs] = nn(o.decodeTtfbMs);
    v[b + F.ScheduledMs] = scheduledMs;
    v[b + F.ArrivedMs] = arrivedMs;
    v[b + F.LatenessMs] = Math.max(0, arrivedMs - scheduledMs);
    v[b + F.QueueMs] = queueMs;
    v[b + F.SentMs] = o.startAt - runStart;
    this.flags[i] = 1 | (o.success ? 2 : 0) | (o.usageSource === 'server' ? 4 : o.usageSource === 'chunks' ? 8 : 0);
    const k = o.itlMs.length;
    if (this.itlUsed + k > this.itl.length) {
      const size = Math.max(this.itl.length * 2, this.itlUsed + k);
      const itl = new Float64Array(size);
      itl.set(this.itl.subarray(0, this.itlUsed));
      const tokens = new Float64Array(size);
      tokens.set(this.tokens.subarray(0, this.itlUsed));
      this.itl = itl;
      this.tokens = tokens;
    }
    this.itlStart[i] = this.itlUsed;
    this.itlCount[i] = k;
    for (let j = 0; j < k; j++) {
      this.itl[this.itlUsed + j] = o.itlMs[j]!;
      this.tokens[this.itlUsed + j] = o.chunkTokens[j]!;
    }
    this.itlUsed += k;
    if (o.error !== '' || o.errorKind !== null || o.generatedText !== '' || o.serverTiming !== null) {
      this.strings.set(i, [o.error, o.errorKind, o.generatedText, o.serverTiming]);
    }
  }

  /** The recorded requests as objects, in send-index order. */
  outcomes(): TimedOutcome[] {
    const out: TimedOutcome[] = [];
    const v = this.num;
    for (let i = 0; i < this.n; i++) {
      const f = this.flags[i]!;
      if (f === 0) continue;
      const b = i * F.Count;
      const st = this.itlStart[i]!;
      const end = st + this.itlCount[i]!;
      const s = this.strings.get(i);
      out.push({
        index: i,
        success: (f & 2) !== 0,
        status: orNull(v[b + F.Status]!),
        error: s?.[0] ?? '',
        errorKind: s?.[1] ?? null,
        promptLen: v[b + F.PromptLen]!,
        outputTokens: v[b + F.OutputTokens]!,
        usageSource: f & 4 ? 'server' : f & 8 ? 'chunks' : null,
        startAt: v[b + F.StartAt]!,
        endAt: v[b + F.EndAt]!,
        ttftMs: orNull(v[b + F.Ttft]!),
        e2elMs: orNull(v[b + F.E2el]!),
        itlMs: Array.from(this.itl.subarray(st, end)),
        chunkTokens: Array.from(this.tokens.subarray(st, end)),
        generatedText: s?.[2] ?? '',
        serverTiming: s?.[3] ?? null,
        prefillMs: orNull(v[b + F.PrefillMs]!),
        decodeTtfbMs: orNull(v[b + F.DecodeTtfbMs]!),
        scheduledMs: v[b + F.ScheduledMs]!,
        arrivedMs: v[b + F.ArrivedMs]!,
        latenessMs: v[b + F.LatenessMs]!,
        queueMs: v[b + F.QueueMs]!,
        sentMs: v[b + F.SentMs]!,
      });
    }
    return out;
  }
}

/**
 * Below this gap to the next arrival (ms), the generator does not spin on setImmediate for sub-ms accuracy:
 * at high rates it would spin all the time and take a core from the I/O it is measuring; sends are then
 * made from timers (ms-granular) and from I/O callbacks (see `pump`). Sparse arrivals (<= 100 req/s) keep
 * the spin and arrive within ~0.02 ms.
 */
const SPIN_MIN_GAP_MS = 10;

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const { prompts, offsetsMs } = opts;
  if (prompts.length !== offsetsMs.length) throw new Error('one arrival time per prompt is required');
  const n = prompts.length;
  const sem = opts.maxConcurrency ? new Semaphore(opts.maxConcurrency) : null;
  const store = new OutcomeStore(n);
  let inflight = 0;
  let allDone: (() => void) | null = null;
  let stopped = false;
  const onStop = (): void => {
    stopped = true;
    sem?.drain();
  };
  if (opts.stopSignal?.aborted) stopped = true;
  opts.stopSignal?.addEventListener('abort', onStop, { once: true });

  const idPrefix = opts.settings.requestIdPrefix ?? null;
  const runStart = performance.now();
  const launch = async (i: number, arrivedAt: number): Promise<void> => {
    inflight++;
    try {
      if (sem) {
        const wait = sem.acquire();
        if (wait) await wait;
        if (stopped) return; // never sent
      }
      const sentAt = performance.now();
      opts.onEvent?.({ type: 'sent', index: i });
      try {
        const o = await sendRequest(opts.dispatcher, opts.settings, prompts[i]!, opts.abortSignal, onIo, idPrefix === null ? null : idPrefix + i);
        store.record(i, o, offsetsMs[i]!, arrivedAt - runStart, sentAt - arrivedAt, runStart);
        opts.onEvent?.({ type: 'done', index: i, success: o.success, ttftMs: o.ttftMs, itlMs: o.itlMs });
      } finally {
        sem?.release();
      }
    } finally {
      if (--inflight === 0 && allDone) allDone();
    }
  };

  // Send every request whose time has come. Called from the timer loop below and, through onIo, after
  // response bytes are handled: a busy event loop then still sends on time instead of waiting for its
  // timer phase behind a batch of socket reads.
  let next = 0;
  let pumpQueued = false;
  const pump = (): void => {
    pumpQueued = false;
    while (next < n && !stopped) {
      const now = performance.now();
      if (runStart + offsetsMs[next]! > now) break;
      void launch(next++, now);
    }
  };
  function onIo(): void {
    if (!pumpQueued && next < n && !stopped && runStart + offsetsMs[next]! <= performance.now()) {
      pumpQueued = true;
      queueMicrotask(pump); // outside undici's parser callback
    }
  }

  while (next < n && !stopped) {
    pump();
    if (next >= n || stopped) break;
    const due = runStart + offsetsMs[next]!;
    const sparse = next === 0 || offsetsMs[next]! - offsetsMs[next - 1]! >= SPIN_MIN_GAP_MS;
    const wait = due - performance.now();
    if (wait > 1.5 || (wait > 0 && !sparse)) {
      if (!(await sleep(Math.max(1, Math.floor(sparse ? wait - 1 : wait)), opts.stopSignal))) break; // stopped while waiting
    } else if (wait > 0.02) {
      await new Promise<void>((r) => setImmediate(r));
    }
  }
  if (inflight > 0) await new Promise<void>((r) => (allDone = r));
  opts.stopSignal?.removeEventListener('abort', onStop);
  const outcomes = store.outcomes();
  return { outcomes, runStart, planned: n, partial: outcomes.length < n };
}
