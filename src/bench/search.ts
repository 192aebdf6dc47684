/**
 * SLO capacity search (`pd bench search`): the highest request rate whose good-request fraction (requests that
 * completed within every --goodput SLO / requests sent) meets the attainment, like the SLO-attainment capacity
 * of DistServe (arXiv 2401.09670), which vLLM's --goodput implements per run.
 *
 * 1. Bracket: probe minRate; while probes pass, double the rate (up to maxRate); while they fail, halve it
 *    (down to minRate / 64). A passing rate below a failing one brackets the answer.
 * 2. Bisect: probe the middle until the bracket is narrower than `precision` × the passing rate.
 * Each probe is a steady run of `probeSeconds` × rate prompts with fresh prompts (its own seed), after the KV
 * cache is cleared. A probe is started only if it fits in what is left of the time budget (its expected length
 * is its send window plus the longest probe so far's drain time); the answer then states the precision reached.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import type { GoodputSlos, RunResult } from './result.js';
import { vllmDate } from './write.js';

export interface SearchSettings {
  slos: GoodputSlos;
  attainment: number;
  precision: number;
  budgetSeconds: number;
  probeSeconds: number;
  minRate: number;
  maxRate: number;
}

export interface Probe {
  rate: number;
  /** Good requests / requests sent. */
  good_fraction: number;
  passed: boolean;
  completed: number;
  failed: number;
  request_throughput: number;
  median_ttft_ms: number | null;
  median_tpot_ms: number | null;
  p99_ttft_ms: number | null;
  seconds: number;
  /** The probe could not run (the target failed…). */
  error: string | null;
}

export type SearchStop = 'precision' | 'budget' | 'max-rate' | 'min-rate' | 'interrupted' | 'error';

export interface SearchResult {
  /** The highest passing rate probed (req/s); 0 when none passed. */
  max_rate: number;
  /** The lowest failing rate probed above it (null when none failed). */
  failing_rate: number | null;
  /** (failing − passing) / passing at the end: the precision reached. */
  precision_reached: number | null;
  stopped: SearchStop;
  slos: GoodputSlos;
  attainment: number;
  precision: number;
  budget_seconds: number;
  probe_seconds: number;
  elapsed_seconds: number;
  probes: Probe[];
  set: string;
  target: string;
  date: string;
}

/** One probe at `rate`: a measured steady run (null result when it could not run). */
export type ProbeFn = (rate: number, index: number) => Promise<{ result: RunResult | null; error?: string }>;

const num = (r: RunResult, k: string): number | null => {
  const v = (r as Record<string, unknown>)[k];
  return typeof v === 'number' && Number.isFinite(v) && !r.pd_failed ? v : null;
};

/** Round a rate for display and for the probe (4 significant digits). */
export function roundRate(r: number): number {
  return Number(r.toPrecision(4));
}

export async function searchCapacity(
  s: SearchSettings,
  probe: ProbeFn,
  o: { set: string; target: string; onProbe?: (p: Probe, index: number) => void; stopSignal?: AbortSignal } = { set: '', target: '' },
): Promise<SearchResult> {
  const started = performance.now();
  const elapsed = (): number => (performance.now() - started) / 1000;
  const probes: Probe[] = [];
  let drain = 0; // longest time a probe took beyond its send window
  let stopped: SearchStop | null = null;
  let lo: number | null = null; // highest passing rate
  let hi: number | null = null; // lowest failing rate

  const fits = (): boolean => elapsed() + s.probeSeconds + drain <= s.budgetSeconds || probes.length === 0;
  const run = async (rate: number): Promise<Probe | null> => {
    if (o.stopSignal?.aborted) return (stopped = 'interrupted'), null;
    if (!fits()) return (stopped = 'budget'), null;
    const t0 = performance.now();
    const { result, error } = await probe(rate, probes.length);
    const seconds = (performance.now() - t0) / 1000;
    drain = Math.max(drain, seconds - s.probeSeconds);
    const p: Probe = {
      rate,
      good_fraction: result && !result.pd_failed ? result.pd_good_request_fraction : 0,
      passed: false,
      completed: result?.completed ?? 0,
      failed: result?.failed ?? 0,
      request_throughput: result ? (num(result, 'request_throughput') ?? 0) : 0,
      median_ttft_ms: result ? num(result, 'median_ttft_ms') : null,
      median_tpot_ms: result ? num(result, 'median_tpot_ms') : null,
      p99_ttft_ms: result ? num(result, 'p99_ttft_ms') : null,
      seconds,
      error: error ?? (result?.pd_failed ? (result.pd_error ?? 'failed') : null),
    };
    p.passed = p.error === null && p.good_fraction >= s.attainment;
    probes.push(p);
    o.onProbe?.(p, probes.length - 1);
    if (result?.pd_partial || o.stopSignal?.aborted) stopped = 'interrupted';
    return p;
  };

  // 1. Bracket.
  let rate = roundRate(s.minRate);
  let first = await run(rate);
  if (first !== null && first.error !== null && probes.length === 1 && first.completed === 0) stopped ??= 'error';
  while (first !== null && stopped === null) {
    if (first.passed) {
      lo = rate;
      if (hi !== null) break;
      if (rate >= s.maxRate) {
        stopped = 'max-rate';
        break;
      }
      rate = roundRate(Math.min(s.maxRate, rate * 2));
    } else {
      hi = rate;
      if (lo !== null) break;
      if (rate <= s.minRate / 64) {
        stopped = 'min-rate';
        break;
      }
      rate = roundRate(rate / 2);
    }
    first = await run(rate);
  }
  // 2. Bisect.
  while (stopped === null && lo !== null && hi !== null && (hi - lo) / lo > s.precision) {
    const mid = roundRate((lo + hi) / 2);
    if (mid <= lo || mid >= hi) break;
    const p = await run(mid);
    if (p === null) break;
    if (p.passed) lo = mid;
    else hi = mid;
  }
  if (stopped === null) stopped = 'precision';
  return {
    max_rate: lo ?? 0,
    failing_rate: hi,
    precision_reached: lo !== null && hi !== null ? (hi - lo) / lo : null,
    stopped,
    slos: s.slos,
    attainment: s.attainment,
    precision: s.precision,
    budget_seconds: s.budgetSeconds,
    probe_seconds: s.probeSeconds,
    elapsed_seconds: elapsed(),
    probes,
    set: o.set,
    target: o.target,
    date: vllmDate(),
  };
}

/** Archive a search beside the set's runs (`<resultsDir>/<set>/search-<date>.json`; not a run result). */
export async function writeSearch(resultsDir: string, r: SearchResult): Promise<string> {
  const dir = join(resultsDir, r.set);
  await mkdir(dir, { recursive: true });
  const path = join(dir, `search-${r.date}.json`);
  await writeFile(path, JSON.stringify({ pd_search: true, ...r }, null, 2) + '\n');
  return path;
}

/** How the search ended, in words. */
export function describeStop(r: SearchResult): string {
  const pct = (x: number): string => `${(x * 100).toFixed(1)}%`;
  switch (r.stopped) {
    case 'precision':
      return r.failing_rate === null ? 'answer found' : `bracket ${r.max_rate}..${r.failing_rate} req/s is within ${pct(r.precision)}`;
    case 'budget':
      return `time budget of ${r.budget_seconds} s reached${r.precision_reached !== null ? ` (precision reached ${pct(r.precision_reached)})` : ''}`;
    case 'max-rate':
      return `every rate passed up to --max-rate ${r.max_rate} req/s: the capacity is at least that`;
    case 'min-rate':
      return 'no rate down to 1/64 of --min-rate met the SLOs';
    case 'interrupted':
      return 'interrupted';
    case 'error':
      return `the first probe failed: ${r.probes[0]?.error ?? 'no result'}`;
  }
}
