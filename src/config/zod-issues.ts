/** Turn zod issues into one line each that names the field and says how to fix it. */
import type { z } from 'zod';
import { configSchema } from './schema.js';

export function formatPath(path: ReadonlyArray<PropertyKey>): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out === '' ? String(key) : `.${String(key)}`;
  }
  return out === '' ? '(top level)' : out;
}

function levenshtein(a: string, b: string): number {
  const dp = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    let prev = dp[0]!;
    dp[0] = i;
    for (let j = 1; j <= b.length; j++) {
      const tmp = dp[j]!;
      dp[j] = Math.min(dp[j]! + 1, dp[j - 1]! + 1, prev + (a[i - 1]!.toLowerCase() === b[j - 1]!.toLowerCase() ? 0 : 1));
      prev = tmp;
    }
  }
  return dp[b.length]!;
}

interface ZodLike {
  def?: { type?: string; innerType?: ZodLike; element?: ZodLike; shape?: Record<string, ZodLike> };
  shape?: Record<string, ZodLike>;
}

function unwrap(s: ZodLike | undefined): ZodLike | undefined {
  let cur = s;
  for (let i = 0; i < 10 && cur?.def?.innerType; i++) cur = cur.def.innerType;
  return cur;
}

/** The keys that the object schema at `path` accepts (for did-you-mean hints). */
export function knownKeysAt(path: ReadonlyArray<PropertyKey>): string[] {
  let node: ZodLike | undefined = unwrap(configSchema);
  for (const key of path) {
    if (!node) return [];
    if (typeof key === 'number') node = unwrap(node.def?.element);
    else node = unwrap(node.shape?.[String(key)] ?? node.def?.shape?.[String(key)]);
  }
  const shape = node?.shape ?? node?.def?.shape;
  return shape ? Object.keys(shape) : [];
}

export function suggest(word: string, candidates: string[]): string | undefined {
  let best: string | undefined;
  let bestScore = Infinity;
  for (const c of candidates) {
    const d = levenshtein(word, c);
    if (d < bestScore) {
      bestScore = d;
      best = c;
    }
  }
  return best !== undefined && bestScore <= Math.max(2, Math.floor(word.length / 3)) ? best : undefined;
}

export function formatZodIssue(issue: z.core.$ZodIssue): string {
  const where = formatPath(issue.path);
  switch (issue.code) {
    case 'unrecognized_keys': {
      const known = knownKeysAt(issue.path);
      return issue.keys
        .map((k) => {
          const s = suggest(k, known);
          const field = formatPath([...issue.path, k]);
          return `${field}: unknown field${s ? ` (did you mean "${s}"?)` : ''}${known.length ? `; allowed here: ${known.join(', ')}` : ''}`;
        })
        .join('\n');
    }
    case 'too_big':
    case 'too_small': {
      const i = issue;
      if (i.origin === 'number' && /port/i.test(String(issue.path[issue.path.length - 1] ?? ''))) {
        return `${where}: port must be a whole number between 1 and 65535`;
      }
      return `${where}: ${issue.message}`;
    }
    case 'invalid_type': {
      const received = (issue as { input?: unknown }).input;
      const got = received === undefined ? 'nothing' : Array.isArray(received) ? 'an array' : typeof received;
      return `${where}: expected ${issue.expected}, got ${got}`;
    }
    case 'invalid_value':
      return `${where}: ${issue.message}`;
    default:
      return `${where}: ${issue.message}`;
  }
}

export function formatZodIssues(issues: ReadonlyArray<z.core.$ZodIssue>): string[] {
  return issues.flatMap((i) => formatZodIssue(i).split('\n'));
}
