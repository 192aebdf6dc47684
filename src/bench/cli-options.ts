/** Parsing and validating `pd bench` command-line values (UsageError with a fix for anything wrong). */
import { UsageError } from '../util/errors.js';
import type { DatasetSpec } from './dataset.js';
import type { GoodputSlos } from './result.js';

export function parsePositive(name: string, value: string | undefined, opts: { int?: boolean; allowInf?: boolean } = {}): number | undefined {
  if (value === undefined) return undefined;
  if (opts.allowInf && value.toLowerCase() === 'inf') return Infinity;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || (opts.int && !Number.isInteger(n))) {
    throw new UsageError(`${name} must be a positive ${opts.int ? 'integer' : 'number'}${opts.allowInf ? ' or inf' : ''}, got "${value}"`);
  }
  return n;
}

/** vLLM's --goodput syntax: KEY:VALUE pairs, keys ttft/tpot/e2el, values in ms. */
export function parseGoodput(pairs: readonly string[] | undefined): GoodputSlos | null {
  if (!pairs || pairs.length === 0) return null;
  const out: GoodputSlos = {};
  for (const pair of pairs.flatMap((p) => p.split(/[\s,]+/)).filter(Boolean)) {
    const [k, v, extra] = pair.split(':');
    const n = Number(v);
    if (extra !== undefined || !k || v === undefined || !Number.isFinite(n) || n < 0) {
      throw new UsageError(`--goodput ${pair} is not KEY:MS`, { hint: 'e.g. --goodput ttft:500 tpot:50 (keys ttft, tpot, e2el; values in ms, ≥ 0)' });
    }
    if (k !== 'ttft' && k !== 'tpot' && k !== 'e2el') throw new UsageError(`--goodput: unknown metric "${k}"`, { hint: 'use ttft, tpot or e2el' });
    out[k] = n;
  }
  return out;
}

export function parsePercentiles(value: string | undefined): number[] | undefined {
  if (value === undefined) return undefined;
  const ps = value.split(',').map((s) => Number(s.trim()));
  if (ps.length === 0 || ps.some((p) => !Number.isFinite(p) || p < 0 || p > 100)) {
    throw new UsageError(`--percentiles "${value}" is not a comma-separated list of numbers in 0..100`, { hint: 'e.g. --percentiles 50,90,99,99.9' });
  }
  return ps;
}

export function parseDataset(opts: { dataset?: string; datasetPath?: string; inputLen: number; outputLen: number; outputLenGiven: boolean }): DatasetSpec {
  const kind = opts.dataset ?? (opts.datasetPath ? (opts.datasetPath.endsWith('.jsonl') ? 'jsonl' : 'sharegpt') : 'random');
  if (kind === 'random') {
    if (opts.datasetPath) throw new UsageError('--dataset random takes no --dataset-path', { hint: 'use --dataset sharegpt or jsonl for a file' });
    return { kind: 'random', inputLen: opts.inputLen, outputLen: opts.outputLen };
  }
  if (kind !== 'sharegpt' && kind !== 'jsonl') throw new UsageError(`--dataset ${kind} is not known`, { hint: 'use random, sharegpt or jsonl' });
  if (!opts.datasetPath) throw new UsageError(`--dataset ${kind} needs --dataset-path FILE`);
  return { kind, path: opts.datasetPath, outputLen: opts.outputLenGiven ? opts.outputLen : undefined };
}
