/**
 * The proxy's own /health answer. `ok` (200): every engine in rotation. `degraded` (200): some engine is out
 * (failing its /health probe, or marked down for good by its supervisor) but every role still has one in
 * rotation. `unhealthy` (503): some role has none, so requests fail. The body names the engines that are out.
 */
import type { EngineRole, EngineState } from './engine.js';

export type HealthStatus = 'ok' | 'degraded' | 'unhealthy';

export interface EngineHealth {
  name: string;
  role: EngineRole;
  url: string;
  healthy: boolean;
  /** up: in rotation; unhealthy: failing its probe (it comes back when it passes); down: given up on. */
  state: 'up' | 'unhealthy' | 'down';
  /** Why it is down for good (only when state is "down"). */
  reason?: string;
}

export interface HealthReport {
  status: HealthStatus;
  mode: 'two-stage' | 'single-stage';
  /** Engines out of rotation, by name. */
  unhealthy: string[];
  engines: EngineHealth[];
  producers?: { name: string; url: string; healthy: boolean }[];
  consumers?: { name: string; url: string; healthy: boolean }[];
}

function engineHealth(e: EngineState): EngineHealth {
  const h: EngineHealth = {
    name: e.name,
    role: e.role,
    url: e.url,
    healthy: e.healthy,
    state: e.down !== null ? 'down' : e.healthy ? 'up' : 'unhealthy',
  };
  if (e.down !== null) h.reason = e.down;
  return h;
}

/** The report over the engine groups a request needs (producers and consumers, or the engines). */
export function healthReport(mode: HealthReport['mode'], groups: readonly (readonly EngineState[])[]): HealthReport {
  const all = groups.flat();
  const unhealthy = all.filter((e) => !e.healthy).map((e) => e.name);
  const status: HealthStatus = groups.some((g) => !g.some((e) => e.healthy))
    ? 'unhealthy'
    : unhealthy.length > 0
      ? 'degraded'
      : 'ok';
  const report: HealthReport = { status, mode, unhealthy, engines: all.map(engineHealth) };
  if (mode === 'two-stage') {
    const brief = (e: EngineState): { name: string; url: string; healthy: boolean } => ({ name: e.name, url: e.url, healthy: e.healthy });
    report.producers = all.filter((e) => e.role === 'producer').map(brief);
    report.consumers = all.filter((e) => e.role === 'consumer').map(brief);
  }
  return report;
}

export const healthHttpStatus = (r: HealthReport): number => (r.status === 'unhealthy' ? 503 : 200);
