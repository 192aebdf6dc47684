/**
 * The foreground view of a serving stack: engine and proxy lines with a coloured prefix (the proxy's own /health
 * probes hidden; they stay in the log files), supervisor notices, and one summary line every few seconds while
 * requests flow: req/s, in flight, queued, KV hits, prefill and decode p50.
 */
import type { ChalkInstance } from 'chalk';
import type { Registry } from 'prom-client';
import type { Supervisor } from '../stack/supervisor/supervisor.js';

const PALETTE = ['cyan', 'magenta', 'yellow', 'green', 'blue', 'red'] as const;

/** `producer-0 | line` with a stable colour per source. */
export function prefixer(names: readonly string[], colours: ChalkInstance | null): (source: string, line: string) => string {
  const all = [...names, 'proxy'];
  const width = Math.max(...all.map((n) => n.length));
  return (source, line) => {
    const i = Math.max(0, all.indexOf(source));
    const label = `${source.padEnd(width)} |`;
    const coloured = colours ? colours[PALETTE[i % PALETTE.length]!](label) : label;
    return `${coloured} ${line}\n`;
  };
}

/** uvicorn's access line for the proxy's background /health probe: noise in a terminal. */
export function isProbeLine(line: string): boolean {
  return /"GET \/health HTTP\/1\.[01]" 200/.test(line);
}

interface Buckets {
  bounds: number[];
  counts: Map<string, number[]>;
}

/** Cumulative bucket counts of the proxy's stage histogram, per stage. */
async function stageBuckets(registry: Registry): Promise<Buckets> {
  const metrics = await registry.getMetricsAsJSON();
  const stage = metrics.find((m) => m.name === 'pd_proxy_stage_duration_seconds');
  const counts = new Map<string, number[]>();
  const bounds: number[] = [];
  for (const v of (stage?.values ?? []) as Array<{ labels: Record<string, string | number>; value: number; metricName?: string }>) {
    if (v.metricName !== 'pd_proxy_stage_duration_seconds_bucket') continue;
    const le = v.labels.le === '+Inf' ? Infinity : Number(v.labels.le);
    const name = String(v.labels.stage);
    if (!counts.has(name)) counts.set(name, []);
    counts.get(name)!.push(v.value);
    if (name === 'prefill') bounds.push(le);
  }
  return { bounds, counts };
}

/** The median of the observations between two cumulative snapshots (upper bucket bound), or null. */
export function windowP50(bounds: readonly number[], before: readonly number[] | undefined, after: readonly number[] | undefined): number | null {
  if (!after) return null;
  const diff = after.map((c, i) => c - (before?.[i] ?? 0));
  const total = diff[diff.length - 1] ?? 0;
  if (total <= 0) return null;
  const idx = diff.findIndex((c) => c >= total / 2);
  const bound = bounds[idx];
  return bound === undefined || !Number.isFinite(bound) ? null : bound;
}

const ms = (s: number | null): string => (s === null ? '-' : s < 1 ? `≤${Math.round(s * 1000)} ms` : `≤${s.toFixed(1)} s`);

export function attachServingView(
  supervisor: Supervisor,
  opts: { write: (text: string) => void; note: (text: string) => void; colours: ChalkInstance | null; summaryEveryMs: number },
): () => void {
  const prefix = prefixer(
    supervisor.engines.map((e) => e.name),
    opts.colours,
  );
  const onLine = (name: string, line: string): void => {
    if (!isProbeLine(line)) opts.write(prefix(name, line));
  };
  const onProxy = (line: string): void => opts.write(prefix('proxy', line));
  supervisor.events.on('line', onLine);
  supervisor.events.on('proxy-line', onProxy);

  const proxy = supervisor.proxyHandle;
  let lastTotal = proxy?.stats().requestsTotal ?? 0;
  let lastHits = 0;
  let lastBuckets: Buckets | null = null;
  let busy = false;
  const timer = setInterval(() => {
    if (!proxy || busy) return;
    busy = true;
    void stageBuckets(proxy.registry)
      .then((b) => {
        const s = proxy.stats();
        const done = s.requestsTotal - lastTotal;
        const hits = supervisor.engines.reduce((n, e) => n + (e.plan.role === 'consumer' ? e.counters.cacheHits : 0), 0);
        if (done > 0 || s.inFlight > 0 || s.queued > 0) {
          const kv = supervisor.plan.sharedStoragePath !== null && done > 0 ? ` · KV hits ${Math.round((100 * (hits - lastHits)) / done)}%` : '';
          const prefill = windowP50(b.bounds, lastBuckets?.counts.get('prefill'), b.counts.get('prefill'));
          const decode = windowP50(b.bounds, lastBuckets?.counts.get('decode_ttfb'), b.counts.get('decode_ttfb'));
          const stages = supervisor.plan.proxy.mode === 'two-stage' ? ` · prefill p50 ${ms(prefill)} · decode TTFB p50 ${ms(decode)}` : '';
          opts.note(`${s.reqPerSec.toFixed(1)} req/s · ${s.inFlight} in flight · ${s.queued} queued${kv}${stages}`);
        }
        lastTotal = s.requestsTotal;
        lastHits = hits;
        lastBuckets = b;
      })
      .catch(() => undefined)
      .finally(() => (busy = false));
  }, opts.summaryEveryMs);
  timer.unref();
  return () => {
    clearInterval(timer);
    supervisor.events.off('line', onLine);
    supervisor.events.off('proxy-line', onProxy);
  };
}
