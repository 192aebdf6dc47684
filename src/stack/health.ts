/** Engine readiness: GET /health answers 200 and GET /v1/models lists the model. */
import { httpGet } from '../util/net.js';
import { sleep } from '../util/timers.js';

export interface ProbeResult {
  ok: boolean;
  /** What was seen, for progress output: "connection refused", "health 503", "model not listed yet", … */
  detail: string;
}

function get(url: string, timeoutMs: number, apiKey?: string): Promise<{ status: number; body: string }> {
  return httpGet(url, { timeoutMs, headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {} });
}

export async function probeEngine(baseUrl: string, model: string | null, opts: { timeoutMs?: number; apiKey?: string } = {}): Promise<ProbeResult> {
  const timeoutMs = opts.timeoutMs ?? 2_000;
  try {
    const health = await get(`${baseUrl}/health`, timeoutMs);
    if (health.status !== 200) return { ok: false, detail: `/health answered ${health.status}` };
    if (model === null) return { ok: true, detail: 'healthy' };
    const models = await get(`${baseUrl}/v1/models`, timeoutMs, opts.apiKey);
    // An engine without the route at all (not vLLM's behaviour, but some stand-ins) is judged by /health alone.
    if (models.status === 404 && !/does not exist/.test(models.body)) return { ok: true, detail: 'healthy (no /v1/models route)' };
    if (models.status !== 200) return { ok: false, detail: `/v1/models answered ${models.status}` };
    const ids = (JSON.parse(models.body) as { data?: Array<{ id?: string; root?: string }> }).data ?? [];
    if (!ids.some((m) => m.id === model || m.root === model)) {
      return { ok: false, detail: `/v1/models does not list ${model} (has ${ids.map((m) => m.id).join(', ') || 'none'})` };
    }
    return { ok: true, detail: 'healthy, model listed' };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ECONNREFUSED') return { ok: false, detail: 'not listening yet' };
    return { ok: false, detail: code ?? (e as Error).message };
  }
}

export interface WaitOptions {
  model: string | null;
  deadlineMs: number;
  intervalMs: number;
  apiKey?: string;
  signal?: AbortSignal;
  onProbe?: (r: ProbeResult) => void;
}

/** Poll until healthy, the deadline, or the signal aborts. Resolves with the last probe. */
export async function waitHealthy(baseUrl: string, opts: WaitOptions): Promise<ProbeResult & { timedOut: boolean }> {
  const deadline = Date.now() + opts.deadlineMs;
  let last: ProbeResult = { ok: false, detail: 'not probed' };
  while (!opts.signal?.aborted) {
    last = await probeEngine(baseUrl, opts.model, { apiKey: opts.apiKey, timeoutMs: Math.min(5_000, Math.max(500, opts.intervalMs * 4)) });
    opts.onProbe?.(last);
    if (last.ok) return { ...last, timedOut: false };
    if (Date.now() >= deadline) return { ...last, timedOut: true };
    await sleep(opts.intervalMs, opts.signal);
  }
  return { ...last, timedOut: false };
}
