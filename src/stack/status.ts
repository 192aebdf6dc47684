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
  /** What the health probe saw ("healthy, model listed", "not listening yet", "/health answered 503", "not running"). */
  healthDetail: string;
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
  /**
   * True when a live stack does not serve as started: an engine left down for good, an engine not healthy while
   * the stack is ready, or the supervisor gone (engines unsupervised, proxy down). `problems` says which and why.
   */
  degraded?: boolean;
  /** One sentence per reason the stack is degraded (empty when it is not). */
  problems: string[];
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
  if (!state) return { running: false, stale: false, problems: [], engines: [] };
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
        healthDetail: probe.detail,
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
  const supervised = supervisorAlive(state);
  const problems = live ? degradation(state.phase, supervised, state.supervisorPid, engines) : [];
  return {
    running: live,
    stale: !live,
    phase: state.phase,
    supervisorPid: state.supervisorPid,
    supervisorAlive: supervised,
    degraded: problems.length > 0,
    problems,
    simulate: state.simulate,
    connector: state.connector,
    model: state.model,
    uptimeSeconds: since(state.startedAt, now) ?? undefined,
    proxy,
    engines,
  };
}

/** Why a live stack is degraded, one sentence per reason; empty when it serves as started. */
export function degradation(
  phase: StackState['phase'],
  supervised: boolean,
  supervisorPid: number | null,
  engines: readonly EngineStatus[],
): string[] {
  const problems: string[] = [];
  if (!supervised) problems.push(`the supervisor (pid ${supervisorPid ?? '?'}) is gone: engines run unsupervised and the proxy is down`);
  for (const e of engines) {
    if (e.status === 'failed') problems.push(`${e.name} is down for good: ${e.downReason ?? 'no reason recorded'}`);
    else if (supervised && (phase === 'ready' || phase === 'degraded') && !e.healthy) {
      const what = e.status === 'restarting' ? `is restarting (${e.restarts} restart${e.restarts === 1 ? '' : 's'} so far)` : `is not healthy (${e.status})`;
      problems.push(`${e.name} ${what}: ${e.healthDetail}`);
    }
  }
  if (supervised && phase === 'degraded' && problems.length === 0) problems.push('the supervisor reports the stack degraded');
  return problems;
}
