/**
 * Open-loop arrival times, fixed before the first send (as `vllm bench serve` get_request does):
 * gaps are Gamma(shape=burstiness, scale=1/(rate*burstiness)) — exponential (Poisson process) when
 * burstiness is 1 — accumulated, then rescaled so the last arrival lands exactly at n/rate seconds.
 * rate=Infinity sends everything at t=0; burstiness=Infinity gives constant gaps of 1/rate.
 */
import { UsageError } from '../util/errors.js';

/** A small seeded PRNG (sfc32) so schedules are reproducible from `seed`. Returns floats in [0, 1). */
export function seededRandom(seed: number): () => number {
  let a = 0x9e3779b9 ^ seed;
  let b = 0x243f6a88 ^ (seed * 31);
  let c = 0xb7e15162;
  let d = seed | 0;
  const next = (): number => {
    a |= 0; b |= 0; c |= 0; d |= 0;
    const t = (((a + b) | 0) + d) | 0;
    d = (d + 1) | 0;
    a = b ^ (b >>> 9);
    b = (c + (c << 3)) | 0;
    c = (c << 21) | (c >>> 11);
    c = (c + t) | 0;
    return (t >>> 0) / 4294967296;
  };
  for (let i = 0; i < 12; i++) next();
  return next;
}

function standardNormal(rand: () => number): number {
  let u = 0;
  while (u === 0) u = rand();
  const v = rand();
  return Math.sqrt(-2 * Math.log(u)) * Math.cos(2 * Math.PI * v);
}

/** Gamma(shape, scale) by Marsaglia–Tsang (with the shape<1 boost). */
export function sampleGamma(shape: number, scale: number, rand: () => number): number {
  if (shape < 1) {
    let u = 0;
    while (u === 0) u = rand();
    return sampleGamma(shape + 1, scale, rand) * Math.pow(u, 1 / shape);
  }
  const d = shape - 1 / 3;
  const c = 1 / Math.sqrt(9 * d);
  for (;;) {
    let x: number;
    let v: number;
    do {
      x = standardNormal(rand);
      v = 1 + c * x;
    } while (v <= 0);
    v = v * v * v;
    const u = rand();
    if (u < 1 - 0.0331 * x * x * x * x) return d * v * scale;
    if (Math.log(u) < 0.5 * x * x + d * (1 - v + Math.log(v))) return d * v * scale;
  }
}

export interface ArrivalOptions {
  /** Number of requests. */
  count: number;
  /** Requests per second; Infinity = all at once. */
  rate: number;
  /** Gamma shape (1 = Poisson). */
  burstiness?: number;
  seed?: number;
}

/** Arrival offsets in milliseconds from the run start, non-decreasing. */
export function arrivalOffsetsMs(opts: ArrivalOptions): number[] {
  const { count, rate } = opts;
  const burstiness = opts.burstiness ?? 1;
  if (!(rate > 0)) throw new UsageError(`request rate must be positive (got ${rate})`, { hint: 'use --rate 8, or --flood for all at once' });
  if (!(burstiness > 0)) throw new UsageError(`burstiness must be positive (got ${burstiness})`);
  if (count <= 0) return [];
  if (rate === Infinity) return new Array<number>(count).fill(0);
  const rand = seededRandom(opts.seed ?? 0);
  const theta = 1 / (rate * burstiness);
  const out = new Array<number>(count);
  let acc = 0;
  for (let i = 0; i < count; i++) {
    acc += burstiness === Infinity ? 1 / rate : sampleGamma(burstiness, theta, rand);
    out[i] = acc;
  }
  // Rescale so the schedule spans exactly count/rate seconds (vLLM does the same to stabilise throughput).
  const factor = acc > 0 ? count / rate / acc : 1;
  for (let i = 0; i < count; i++) out[i] = out[i]! * factor * 1000;
  return out;
}
