/** The terminal result block, laid out like `vllm bench serve`'s "Serving Benchmark Result". */
import { percentileOf, type LatencyMetric, type RunResult } from './result.js';

const line = (label: string, value: string | number): string => `${label.padEnd(40)} ${String(value)}`;
const f2 = (n: number | null | undefined): string => (typeof n === 'number' ? n.toFixed(2) : 'n/a');
const header = (title: string, fill: string): string => {
  const total = 50 - title.length;
  const left = Math.floor(total / 2);
  return fill.repeat(Math.max(0, left)) + title + fill.repeat(Math.max(0, total - left));
};

export function formatSummary(r: RunResult): string {
  const out: string[] = [];
  out.push(header(' Serving Benchmark Result ', '='));
  out.push(line('Set / run:', `${r.pd_set} / ${r.pd_run_name}${r.pd_partial ? ' (PARTIAL: interrupted)' : ''}`));
  out.push(line('Successful requests:', r.completed));
  out.push(line('Failed requests:', r.failed));
  if (r.failed > 0) out.push(line('Failure kinds:', Object.entries(r.pd_error_kinds).map(([k, v]) => `${k}=${v}`).join(' ')));
  if (r.max_concurrency !== null) out.push(line('Maximum request concurrency:', r.max_concurrency));
  if (r.request_rate !== 'inf') out.push(line('Request rate configured (RPS):', f2(r.request_rate)));
  out.push(line('Benchmark duration (s):', f2(r.duration)));
  out.push(line('Total input tokens:', r.total_input_tokens));
  out.push(line('Total generated tokens:', r.total_output_tokens));
  out.push(line('Request throughput (req/s):', f2(r.request_throughput)));
  if (r.request_goodput !== null) out.push(line('Request goodput (req/s):', f2(r.request_goodput)));
  out.push(line('Good request fraction:', f2(r.pd_good_request_fraction)));
  out.push(line('Output token throughput (tok/s):', f2(r.output_throughput)));
  out.push(line('Peak output token throughput (tok/s):', f2(r.max_output_tokens_per_s)));
  out.push(line('Peak concurrent requests:', f2(r.max_concurrent_requests)));
  out.push(line('Total token throughput (tok/s):', f2(r.total_token_throughput)));
  if (r.pd_usage_source === 'chunks') out.push(line('Token counts:', 'counted from chunks (server sent no usage)'));
  const metric = (m: LatencyMetric, name: string, title: string): void => {
    const rec = r as Record<string, unknown>;
    if (typeof rec[`mean_${m}_ms`] !== 'number') return;
    out.push(header(title, '-'));
    out.push(line(`Mean ${name} (ms):`, f2(rec[`mean_${m}_ms`] as number)));
    out.push(line(`Median ${name} (ms):`, f2(rec[`median_${m}_ms`] as number)));
    for (const p of r.pd_percentiles) {
      const v = percentileOf(r, m, p);
      if (v !== undefined && p !== 50) out.push(line(`P${p} ${name} (ms):`, f2(v)));
    }
  };
  metric('ttft', 'TTFT', 'Time to First Token');
  metric('tpot', 'TPOT', 'Time per Output Token (excl. 1st token)');
  metric('itl', 'ITL', 'Inter-token Latency');
  metric('e2el', 'E2EL', 'End-to-end Latency');
  if (r.pd_stage_split) {
    const s = r.pd_stage_split;
    out.push(header('PD Stage Split (Server-Timing)', '-'));
    out.push(line('Mean / P99 prefill (ms):', `${f2(s.prefill_ms.mean)} / ${f2(s.prefill_ms.p99)}`));
    out.push(line('Mean / P99 decode TTFB (ms):', `${f2(s.decode_ttfb_ms.mean)} / ${f2(s.decode_ttfb_ms.p99)}`));
  }
  out.push(header('Client', '-'));
  const l = r.pd_send_lateness_ms;
  if (l) {
    out.push(line('Send lateness p50 / p99 / max (ms):', `${f2(l.p50)} / ${f2(l.p99)} / ${f2(l.max)}`));
    if (l.p99 > 5) out.push(line('WARNING:', 'the client fell behind its send schedule'));
  } else out.push(line('Send lateness:', `not measured (${r.pd_engine} engine)`));
  if (r.pd_kv_cache) out.push(line('KV cache hits:', `${r.pd_kv_cache.hits}${r.pd_kv_cache.misses !== null ? ` (misses ${r.pd_kv_cache.misses})` : ''}${r.pd_kv_cache.unit ? ` ${r.pd_kv_cache.unit}` : ''} [${r.pd_kv_cache.source}]`));
  out.push('='.repeat(50));
  return out.join('\n') + '\n';
}
