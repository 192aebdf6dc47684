/** `pd status`: the state file plus live health probes of each engine and the proxy. */
import { readStackState, stateIsLive, supervisorAlive, type StackState } from './state.js';
import { ownership } from './identity.js';
import { probeEngine } from './health.js';

export interface EngineStatus {
  name: string;
  role: string;
  gpus: number[];
  port: number;
  pid: number | null;
  uptimeSeconds: number | null;
  status: string;
  healthy: boolean;
  restarts: number;
  /** Why the supervisor left it down for good, when it did. */
  downReason: string | null;
  cacheHits: number;
  logFile: string;
}

export interface StackStatus {
  running: boolean;
  stale: boolean;
  phase?: StackState['phase'];
  supervisorPid?: number | null;
  /** True when the stack serves with an engine left down for good (or an engine is not healthy). */
  degraded?: boolean;
  /** False when the supervisor died (e.g. SIGKILL) but engines are still running unsupervised. */
  supervisorAlive?: boolean;
  simulate?: boolean;
  connector?: string | null;
  model?: string;
  uptimeSeconds?: number;
  proxy?: (NonNullable<StackState['proxy']> & { healthy: boolean }) | null;
  engines: EngineStatus[];
}

const since = (iso: string | null, now: number): number | null => (iso ? Math.max(0, Math.round((now - Date.parse(iso)) / 1000)) : null);

export async function stackStatus(stateDir: string): Promise<StackStatus> {
  const state = await readStackState(stateDir);
  if (!state) return { running: false, stale: false, engines: [] };
  const live = stateIsLive(state);
  const now = Date.now();
  const engines = await Promise.all(
    state.engines.map(async (e) => {
      const alive = e.pid !== null && ownership({ pid: e.pid, startTime: e.startTime }, state.stackId) === 'ours';
      const probe = alive ? await probeEngine(e.url, null, { timeoutMs: 1_000 }) : { ok: false, detail: 'not running' };
      return {
        name: e.name,
        role: e.role,
        gpus: e.gpus,
        port: e.port,
        pid: e.pid,
        uptimeSeconds: alive ? since(e.startedAt, now) : null,
        status: alive || e.status === 'restarting' || e.status === 'failed' ? e.status : 'exited',
        healthy: probe.ok,
        restarts: e.restarts,
        downReason: e.downReason,
        cacheHits: e.cacheHits,
        logFile: e.logFile,
      };
    }),
  );
  let proxy: StackStatus['proxy'] = null;
  if (state.proxy) {
    const probe = live && supervisorAlive(state) ? await probeEngine(state.proxy.url, null, { timeoutMs: 1_000 }) : { ok: false, detail: '' };
    proxy = { ...state.proxy, healthy: probe.ok };
  }
  return {
    running: live,
    stale: !live,
    phase: state.phase,
    supervisorPid: state.supervisorPid,
    supervisorAlive: supervisorAlive(state),
    degraded: live && (state.phase === 'degraded' || (state.phase === 'ready' && engines.some((e) => !e.healthy))),
    simulate: state.simulate,
    connector: state.connector,
    model: state.model,
    uptimeSeconds: since(state.startedAt, now) ?? undefined,
    proxy,
    engines,
  };
}
