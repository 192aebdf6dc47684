/**
 * The janitor as a unit of a running stack: keeps the shared storage within kv.cache (maxBytes / maxAgeSeconds)
 * while the stack runs, and counts its evictions on the proxy's /metrics.
 */
import client from 'prom-client';
import { budgetIsActive } from '../config/schema.js';
import type { StackPlan } from '../stack/plan/build.js';
import type { SupervisorUnit, UnitContext } from '../stack/supervisor/supervisor.js';
import { startJanitor, type Janitor } from './janitor.js';

/** The janitor unit when the plan's connector writes shared storage and a budget is set; else none. */
export function janitorUnits(plan: StackPlan): SupervisorUnit[] {
  if (plan.sharedStoragePath === null || !budgetIsActive(plan.config.kv.cache)) return [];
  const path = plan.sharedStoragePath;
  let janitor: Janitor | null = null;
  return [
    {
      name: 'kv-cache-janitor',
      start(ctx: UnitContext) {
        const evictions = new client.Counter({
          name: 'pd_kv_cache_evictions_total',
          help: 'KV cache entries removed by the janitor to keep kv.cache within budget',
          labelNames: ['reason'],
          registers: [ctx.proxy.registry],
        });
        const evictedBytes = new client.Counter({
          name: 'pd_kv_cache_evicted_bytes_total',
          help: 'Bytes freed by the janitor',
          registers: [ctx.proxy.registry],
        });
        janitor = startJanitor({
          path,
          budget: plan.config.kv.cache,
          log: (line) => ctx.notice(line),
          onEvict: (e) => {
            evictions.inc({ reason: e.reason });
            evictedBytes.inc(e.bytes);
          },
        });
      },
      async stop() {
        await janitor?.stop();
      },
    },
  ];
}
