/**
 * KV cache hits of one run: a counter snapshot before and after, differenced.
 * Sources, first that answers:
 * 1. the consumer engines of the running stack the target belongs to: vLLM's own
 *    `vllm:external_prefix_cache_hits_total` / `…_queries_total` (tokens the connector supplied), which every
 *    connector feeds (vllm/v1/core/sched/scheduler.py counts the connector's matched tokens), so NIXL and P2P
 *    stacks, whose KV loads vLLM does not log at INFO, are counted too;
 * 2. the pd proxy's /metrics `pd_engine_kv_cache_hits_total` of the consumer engines (the supervisor's count of
 *    their "Inject KV cache" log lines: ExampleConnector logs each load), or vLLM's counters on the target itself;
 * 3. the running stack's state file (the same log counts, refreshed every second).
 */
import { request } from 'undici';
import { readStackState } from '../stack/state.js';
import type { KvCacheStats } from './result.js';

export interface KvSnapshot {
  hits: number;
  queries: number | null;
  source: string;
}

async function fromState(stateDir: string): Promise<KvSnapshot | null> {
  const state = await readStackState(stateDir).catch(() => null);
  if (!state || !Array.isArray(state.engines) || state.engines.length === 0) return null;
  const hits = state.engines.filter((e) => e.role === 'consumer').reduce((s, e) => s + (e.cacheHits ?? 0), 0);
  return { hits, queries: null, source: 'pd-state:engine-logs' };
}

/** Sum of every sample of a counter (all label sets) in Prometheus text, or null when absent. */
export function sumCounter(text: string, name: string): number | null {
  let found = false;
  let sum = 0;
  for (const line of text.split('\n')) {
    if (line.startsWith('#') || !line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    const value = Number(line.trim().split(/\s+/).at(rest[0] === '{' ? -1 : 1));
    if (Number.isFinite(value)) {
      found = true;
      sum += value;
    }
  }
  return found ? sum : null;
}

/** pd_engine_kv_cache_hits_total summed over consumer engines (the decode side's KV loads). */
export function sumConsumerHits(text: string): number | null {
  let found = false;
  let sum = 0;
  for (const line of text.split('\n')) {
    const m = /^pd_engine_kv_cache_hits_total\{engine="(consumer-\d+)"\}\s+(\S+)/.exec(line);
    if (!m) continue;
    found = true;
    sum += Number(m[2]);
  }
  return found ? sum : null;
}

async function fromMetrics(target: string): Promise<KvSnapshot | null> {
  const text = await scrape(target);
  if (text === null) return null;
  const pd = sumConsumerHits(text);
  if (pd !== null) return { hits: pd, queries: null, source: `pd-proxy-metrics:${target}` };
  const hits = sumCounter(text, 'vllm:external_prefix_cache_hits_total');
  if (hits === null) return null;
  return { hits, queries: sumCounter(text, 'vllm:external_prefix_cache_queries_total'), source: `metrics:${target}` };
}

async function scrape(url: string): Promise<string | null> {
  try {
    const res = await request(new URL('/metrics', url), { headersTimeout: 3000, bodyTimeout: 3000 });
    if (res.statusCode !== 200) {
      await res.body.dump();
      return null;
    }
    return await res.body.text();
  } catch {
    return null;
  }
}

/** The target is the proxy of the stack in stateDir: same port, on this machine. */
function targetIsStack(target: string, proxy: { port: number }): boolean {
  try {
    const u = new URL(target);
    const port = Number(u.port || (u.protocol === 'https:' ? 443 : 80));
    return port === proxy.port && ['127.0.0.1', 'localhost', '[::1]', '0.0.0.0'].includes(u.hostname);
  } catch {
    return false;
  }
}

/** vLLM's external prefix-cache counters summed over the stack's consumer engines (null unless all answer). */
async function fromConsumerEngines(target: string, stateDir: string): Promise<KvSnapshot | null> {
  const state = await readStackState(stateDir).catch(() => null);
  if (!state?.proxy || !targetIsStack(target, state.proxy)) return null;
  const consumers = state.engines.filter((e) => e.role === 'consumer' && e.url !== '');
  if (consumers.length === 0) return null;
  let hits = 0;
  let queries = 0;
  for (const e of consumers) {
    const text = await scrape(e.url);
    const h = text === null ? null : sumCounter(text, 'vllm:external_prefix_cache_hits_total');
    if (text === null || h === null) return null;
    hits += h;
    queries += sumCounter(text, 'vllm:external_prefix_cache_queries_total') ?? 0;
  }
  return { hits, queries, source: `metrics:consumers of ${stateDir}` };
}

export async function kvSnapshot(opts: { target: string; stateDir?: string }): Promise<KvSnapshot | null> {
  const engines = opts.stateDir ? await fromConsumerEngines(opts.target, opts.stateDir) : null;
  if (engines) return engines;
  const m = await fromMetrics(opts.target);
  if (m) return m;
  return opts.stateDir ? fromState(opts.stateDir) : null;
}

export function kvDelta(before: KvSnapshot | null, after: KvSnapshot | null): KvCacheStats | null {
  if (!before || !after || before.source !== after.source) return null;
  const hits = Math.max(0, after.hits - before.hits);
  const misses =
    before.queries !== null && after.queries !== null ? Math.max(0, after.queries - before.queries - hits) : null;
  // vLLM's vllm:external_prefix_cache_* counters count tokens; pd's own (log lines) count requests.
  return { hits, misses, source: after.source, unit: after.source.startsWith('metrics:') ? 'tokens' : 'requests' };
}
