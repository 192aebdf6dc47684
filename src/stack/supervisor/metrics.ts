/**
 * The stack's own Prometheus series on the proxy's /metrics: engine up/down, restarts, and the connector events
 * counted from engine logs. Read from the engines' state when scraped, so no per-line work is done for them.
 */
import client, { type Registry } from 'prom-client';
import type { EngineRunner } from './engine-runner.js';

export function registerEngineMetrics(registry: Registry, engines: readonly EngineRunner[]): void {
  const registers = [registry];
  const counter = (name: string, help: string, value: (e: EngineRunner) => number): void => {
    new client.Counter({
      name,
      help,
      labelNames: ['engine'],
      registers,
      collect() {
        this.reset();
        for (const e of engines) this.inc({ engine: e.name }, value(e));
      },
    });
  };
  counter('pd_engine_restarts_total', 'Engine restarts by the supervisor', (e) => e.state.restarts);
  counter('pd_engine_kv_cache_hits_total', 'KV cache loads from the connector (Inject KV cache lines in engine logs)', (e) => e.counters.cacheHits);
  counter('pd_engine_kv_lookup_hits_total', 'Connector lookups that found a stored entry (External Cache Hit! lines)', (e) => e.counters.lookupHits);
  counter('pd_engine_kv_injected_tokens_total', 'Tokens reported by Inject KV cache lines', (e) => e.counters.injectedTokens);
  counter('pd_engine_log_errors_total', 'ERROR lines and tracebacks in engine logs', (e) => e.counters.errors);
  new client.Gauge({
    name: 'pd_engine_up',
    help: '1 when the engine process is running and healthy',
    labelNames: ['engine', 'role'],
    registers,
    collect() {
      for (const e of engines) this.set({ engine: e.name, role: e.plan.role }, e.state.status === 'healthy' ? 1 : 0);
    },
  });
}
