/** Durations on the command line: `90s`, `30m`, `2h`, `7d`, `500ms`, or combined like `1h30m`. */
import { UsageError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1_000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
type Unit = keyof typeof UNIT_MS;

const WHOLE = /^(?:\d+(?:\.\d+)?(?:ms|s|m|h|d|w))+$/;
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d|w)/g;

/**
 * Parse a duration into milliseconds. A bare number is refused (ambiguous unit).
 * @param what names the flag in the error message, e.g. `--older-than`.
 */
export function parseDuration(text: string, what = 'duration'): number {
  const s = text.trim().toLowerCase();
  if (!WHOLE.test(s)) {
    throw new UsageError(`${what} ${JSON.stringify(text)} is not a duration`, {
      hint: 'Use a number with a unit: 90s, 30m, 2h, 7d (units ms, s, m, h, d, w; combine like 1h30m).',
    });
  }
  let ms = 0;
  for (const [, n, unit] of s.matchAll(PART)) ms += Number(n) * UNIT_MS[unit as Unit];
  return Math.round(ms);
}
