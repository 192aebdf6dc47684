/**
 * Is a steady run clearly saturated, i.e. was the offered rate more than the target could serve? A sprint stops
 * escalating at such a rate (higher rates would only wait out longer queues) and says why. The tests are
 * deliberately strict, since a false alarm skips measurements while a miss only costs time:
 *  - most requests failed (more than half of those sent);
 *  - the queue grew without bound: in a stable system the latency of the last quarter of requests (by send
 *    time) is about that of the first quarter; a growing queue makes it grow with every request. Saturated when
 *    the median TTFT of the last quarter is at least 4x that of the first and 250 ms more, or the median E2EL at
 *    least 2x and 1 s more;
 *  - the achieved rate is well below the offered one: completed / duration under half the offered rate while
 *    the run lasted more than twice its send window.
 */
import type { TimedOutcome } from './generator.js';
import { percentile } from './stats.js';

export interface Saturation {
  saturated: boolean;
  /** Why, in words, with the figures (null when not saturated). */
  reason: string | null;
}

const ms = (v: number): string => (v >= 1000 ? `${(v / 1000).toFixed(1)} s` : `${v.toFixed(0)} ms`);

export function judgeSaturation(outcomes: readonly TimedOutcome[], offeredRate: number): Saturation {
  const sent = outcomes.length;
  if (!Number.isFinite(offeredRate) || sent < 8) return { saturated: false, reason: null };
  const failed = outcomes.filter((o) => !o.success).length;
  if (failed * 2 > sent) return { saturated: true, reason: `${failed} of ${sent} requests failed` };
  const ok = outcomes.filter((o) => o.success && o.ttftMs !== null && o.e2elMs !== null).sort((a, b) => a.sentMs - b.sentMs);
  if (ok.length >= 16) {
    const q = Math.floor(ok.length / 4);
    const first = ok.slice(0, q);
    const last = ok.slice(ok.length - q);
    const med = (xs: TimedOutcome[], f: (o: TimedOutcome) => number): number => percentile(xs.map(f), 50);
    const t0 = med(first, (o) => o.ttftMs!);
    const t1 = med(last, (o) => o.ttftMs!);
    if (t1 >= 4 * t0 && t1 - t0 >= 250) return { saturated: true, reason: `queue growing: TTFT p50 ${ms(t0)} in the first quarter, ${ms(t1)} in the last` };
    const e0 = med(first, (o) => o.e2elMs!);
    const e1 = med(last, (o) => o.e2elMs!);
    if (e1 >= 2 * e0 && e1 - e0 >= 1000) return { saturated: true, reason: `queue growing: E2EL p50 ${ms(e0)} in the first quarter, ${ms(e1)} in the last` };
  }
  const start = Math.min(...outcomes.map((o) => o.startAt));
  const end = Math.max(...outcomes.map((o) => o.endAt));
  const durationS = (end - start) / 1000;
  const window = sent / offeredRate;
  const achieved = durationS > 0 ? (sent - failed) / durationS : 0;
  if (durationS > 2 * window && achieved < offeredRate / 2) {
    return { saturated: true, reason: `achieved ${achieved.toFixed(2)} req/s of ${offeredRate} offered` };
  }
  return { saturated: false, reason: null };
}
