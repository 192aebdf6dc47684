/**
 * The open-loop load generator: arrival times are fixed in advance, each request is dispatched at its
 * time whatever happened to earlier ones (never waiting for responses), and how late each dispatch was is
 * recorded so a client that cannot keep up shows in the result instead of silently lowering the rate.
 * With --max-concurrency, an arrived request waits for a free slot (that wait is `queueMs`, like vLLM's
 * client queue time; it is not lateness).
 */
import { performance } from 'node:perf_hooks';
import { setTimeout as sleep } from 'node:timers/promises';
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

export type LoadEvent = { type: 'sent'; index: number } | { type: 'done'; index: number; success: boolean };

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

export async function runLoad(opts: LoadOptions): Promise<LoadResult> {
  const { prompts, offsetsMs } = opts;
  if (prompts.length !== offsetsMs.length) throw new Error('one arrival time per prompt is required');
  const sem = opts.maxConcurrency ? new Semaphore(opts.maxConcurrency) : null;
  const slots: Array<TimedOutcome | undefined> = new Array(prompts.length);
  const inflight = new Set<Promise<void>>();
  let stopped = false;
  const onStop = (): void => {
    stopped = true;
    sem?.drain();
  };
  if (opts.stopSignal?.aborted) stopped = true;
  opts.stopSignal?.addEventListener('abort', onStop, { once: true });
  const stopWait = opts.stopSignal ?? new AbortController().signal;

  const runStart = performance.now();
  const launch = (i: number, arrivedAt: number): void => {
    const scheduledMs = offsetsMs[i]!;
    const arrivedMs = arrivedAt - runStart;
    const task = (async () => {
      if (sem) {
        const wait = sem.acquire();
        if (wait) await wait;
        if (stopped) return; // never sent
      }
      const sentAt = performance.now();
      opts.onEvent?.({ type: 'sent', index: i });
      try {
        const o = await sendRequest(opts.dispatcher, opts.settings, prompts[i]!, opts.abortSignal);
        slots[i] = {
          ...o,
          index: i,
          scheduledMs,
          arrivedMs,
          latenessMs: Math.max(0, arrivedMs - scheduledMs),
          queueMs: sentAt - arrivedAt,
          sentMs: o.startAt - runStart,
        };
        opts.onEvent?.({ type: 'done', index: i, success: o.success });
      } finally {
        sem?.release();
      }
    })();
    inflight.add(task);
    void task.finally(() => inflight.delete(task));
  };

  for (let i = 0; i < prompts.length && !stopped; i++) {
    const due = runStart + offsetsMs[i]!;
    // Sleep on a timer until ~1 ms before the arrival, then yield to the event loop (I/O keeps flowing)
    // until it is due: timers alone are only ms-accurate.
    let wait = due - performance.now();
    while (wait > 0.02 && !stopped) {
      if (wait > 1.5) {
        try {
          await sleep(Math.floor(wait - 1), undefined, { signal: stopWait });
        } catch {
          break; // stopped while waiting
        }
      } else {
        await new Promise<void>((r) => setImmediate(r));
      }
      wait = due - performance.now();
    }
    if (stopped) break;
    launch(i, performance.now());
  }
  while (inflight.size > 0) await Promise.all([...inflight]);
  opts.stopSignal?.removeEventListener('abort', onStop);
  const outcomes = slots.filter((s): s is TimedOutcome => s !== undefined);
  return { outcomes, runStart, planned: prompts.length, partial: outcomes.length < prompts.length };
}
