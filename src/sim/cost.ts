/**
 * The step-time model. Simulated numbers are a model, not a measurement; docs/simulator.md states the equations:
 *
 *   prefill = prefillMsPerToken x prefill tokens / TP
 *   decode  = itlMs / TP x load(running / PP) + context tokens x KV bytes per token per GPU / HBM bandwidth
 *             (only when something decodes; load(n) grows linearly from 1 at one request to
 *             timeFactorUnderLoad at max-num-seqs)
 *   comm    = 2 x layers / PP x allReduceUs (TP > 1: two all-reduces per layer per step)
 *   pipe    = (PP - 1) x ppHopMs
 *   io      = KV loaded or pulled this step (bytes / storage or NIXL bandwidth)
 *   step    = (prefill + decode + comm + pipe + io) x jitter x slowdown
 */
import type { SimKnobs } from './knobs.js';

export interface CostModel {
  tp: number;
  pp: number;
  /** Model layers (all-reduces per step). */
  layers: number;
  kvBytesPerTokenPerGpu: number;
  /** HBM bandwidth, bytes per ms. */
  hbmBytesPerMs: number;
  /** One all-reduce, ms. */
  allReduceMs: number;
  /** One pipeline stage boundary, ms. */
  ppHopMs: number;
}

export interface StepLoad {
  prefillTokens: number;
  decodeSeqs: number;
  contextTokens: number;
  running: number;
  maxNumSeqs: number;
  ioMs: number;
}

/** Load factor of a batch: 1 with one request, timeFactorUnderLoad at max-num-seqs. */
export function loadFactor(n: number, maxNumSeqs: number, timeFactorUnderLoad: number): number {
  if (n <= 1 || maxNumSeqs <= 1) return 1;
  return 1 + ((Math.max(timeFactorUnderLoad, 0) - 1) * Math.min(n - 1, maxNumSeqs - 1)) / (maxNumSeqs - 1);
}

export function stepMs(c: CostModel, k: SimKnobs, l: StepLoad): number {
  const prefill = (k.prefillMsPerToken * l.prefillTokens) / c.tp;
  let decode = 0;
  if (l.decodeSeqs > 0) {
    decode = (k.itlMs / c.tp) * loadFactor(l.running / c.pp, l.maxNumSeqs / c.pp, k.timeFactorUnderLoad);
    if (k.itlMs > 0 && c.hbmBytesPerMs !== Infinity) decode += (l.contextTokens * c.kvBytesPerTokenPerGpu) / c.hbmBytesPerMs;
  }
  const busy = prefill + decode;
  if (busy === 0 && l.ioMs === 0) return 0;
  const comm = c.tp > 1 ? (2 * c.layers * c.allReduceMs) / c.pp : 0;
  const pipe = (c.pp - 1) * c.ppHopMs;
  return busy + comm + pipe + l.ioMs;
}
