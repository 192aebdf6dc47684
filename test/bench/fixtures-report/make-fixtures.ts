/**
 * Regenerates the synthetic run results in this directory (committed as golden fixtures):
 *   node --import tsx test/bench/fixtures-report/make-fixtures.ts
 * Two sets shaped like the reference real-GPU sheet: pd-disaggregation (slow shared-storage prefill, with the
 * proxy's stage split and KV cache counts) and tensor-parallelism (no split), steady 2..32 req/s plus flood.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseRunResult } from '../../../src/bench/result.js';

const here = new URL('.', import.meta.url).pathname;
const RATES = [2, 4, 8, 16, 32];

interface Shape {
  ttft: number[]; // median TTFT per rate, then flood
  tpot: number[];
  itl: number[];
  split: boolean;
}

const shapes: Record<string, Shape> = {
  'pd-disaggregation': {
    ttft: [13153.23, 13798.63, 24530.77, 61688.49, 52468.87, 58000.5],
    tpot: [24.62, 27.88, 29.3, 29.15, 29.79, 30.1],
    itl: [24.1, 27.73, 27.5, 27.21, 27.24, 28.0],
    split: true,
  },
  'tensor-parallelism': {
    ttft: [43.25, 53.64, 74.58, 19217.28, 52453.3, 33497.64],
    tpot: [10.06, 14.63, 23.14, 50.11, 50.41, 46.2],
    itl: [10.08, 14.29, 22.16, 46.46, 46.43, 43.7],
    split: false,
  },
};

function stats(median: number, spread: number) {
  return { mean: +(median * 1.02).toFixed(4), median, std: +(median * 0.1).toFixed(4), p90: +(median * (1 + spread * 0.6)).toFixed(4), p95: +(median * (1 + spread * 0.8)).toFixed(4), p99: +(median * (1 + spread)).toFixed(4) };
}

let minute = 0;
for (const [set, shape] of Object.entries(shapes)) {
  const dir = join(here, 'results', set);
  mkdirSync(dir, { recursive: true });
  const points = [...RATES.map((r) => ({ rate: r })), { rate: null }];
  points.forEach(({ rate }, i) => {
    const flood = rate === null;
    const numPrompts = flood ? 1024 : Math.ceil(90 * rate);
    const failed = flood ? 19 : 0;
    const completed = numPrompts - failed;
    const duration = flood ? 25.3 : 90 + shape.ttft[i]! / 1000;
    const out = completed * 512;
    const r: Record<string, unknown> = {
      date: `20251014-2${String(10 + minute).padStart(2, '0')}000`,
      endpoint_type: 'openai-chat',
      backend: 'openai-chat',
      label: null,
      model_id: 'Qwen/Qwen3-4B-Instruct-2507',
      tokenizer_id: 'Qwen/Qwen3-4B-Instruct-2507',
      num_prompts: numPrompts,
      request_rate: flood ? 'inf' : rate,
      burstiness: 1,
      max_concurrency: null,
      duration,
      completed,
      failed,
      total_input_tokens: completed * 32,
      total_output_tokens: out,
      request_throughput: completed / duration,
      request_goodput: null,
      output_throughput: out / duration,
      total_token_throughput: (out + completed * 32) / duration,
      max_output_tokens_per_s: (out / duration) * 1.4,
      max_concurrent_requests: flood ? completed : Math.ceil(rate * 20),
    };
    for (const [metric, arr, spread] of [['ttft', shape.ttft, 0.5], ['tpot', shape.tpot, 0.05], ['itl', shape.itl, 0.6], ['e2el', shape.ttft.map((t, j) => t + 511 * shape.tpot[j]!), 0.3]] as const) {
      const s = stats(arr[i]!, spread);
      r[`mean_${metric}_ms`] = s.mean;
      r[`median_${metric}_ms`] = s.median;
      r[`std_${metric}_ms`] = s.std;
      r[`p50_${metric}_ms`] = s.median;
      r[`p90_${metric}_ms`] = s.p90;
      r[`p95_${metric}_ms`] = s.p95;
      r[`p99_${metric}_ms`] = s.p99;
    }
    const prefill = shape.ttft[i]! * 0.97;
    Object.assign(r, {
      pd_version: '0.1.0',
      pd_started_at: new Date(Date.UTC(2025, 9, 14, 20, 10 + minute++)).toISOString(),
      pd_set: set,
      pd_run_name: flood ? 'flood-n1024' : `steady-rate${rate}`,
      pd_run_kind: flood ? 'flood' : 'steady',
      pd_target: 'http://127.0.0.1:8000',
      pd_endpoint: 'chat',
      pd_engine: 'builtin',
      pd_offered_rate: rate,
      pd_good_request_fraction: completed / numPrompts,
      pd_goodput_slos: null,
      pd_error_kinds: flood ? { http_503: failed } : {},
      pd_usage_source: 'server',
      pd_send_lateness_ms: { mean: 0.2, p50: 0.1, p99: 1.4, max: 3.2 },
      pd_stage_split: shape.split
        ? {
            samples: completed,
            prefill_ms: { mean: prefill * 1.01, median: prefill, p99: prefill * 1.4 },
            decode_ttfb_ms: { mean: shape.ttft[i]! * 0.031, median: shape.ttft[i]! * 0.03, p99: shape.ttft[i]! * 0.05 },
          }
        : null,
      pd_kv_cache: shape.split ? { hits: completed, misses: 0, source: 'proxy-metrics' } : null,
      pd_partial: false,
      pd_itl_per_token_ms: null,
      pd_percentiles: [50, 90, 95, 99],
      pd_input_len: 32,
      pd_output_len: 512,
      pd_dataset: 'random',
      pd_seed: 0,
      pd_sent: numPrompts,
    });
    parseRunResult(r, `${set}/${String(r.pd_run_name)}`);
    writeFileSync(join(dir, `${String(r.pd_run_name)}.json`), JSON.stringify(r, null, 2) + '\n');
  });
}
