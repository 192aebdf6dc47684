/**
 * Opens keep-alive connections before the first arrival, so the first requests of a run do not pay a TCP
 * handshake that later ones do not (which shows in the TTFT tail). vLLM's `bench serve` does the same for one
 * connection with its initial test prompt; pd opens as many as the run is likely to use at once, with cheap
 * `GET /v1/models` requests. Failures are ignored: the run itself reports an unreachable target.
 */
import { setMaxListeners } from 'node:events';
import type { Dispatcher } from 'undici';
import { sendRequest, type PromptSpec, type RequestSettings } from './request.js';

/** How many connections to open: the concurrency cap when there is one, else up to 64 (never more than requests). */
export function warmConnectionCount(count: number, maxConcurrency: number | null | undefined): number {
  return Math.max(0, Math.min(count, maxConcurrency ?? 64));
}

export async function warmConnections(
  dispatcher: Dispatcher,
  basePath: string,
  n: number,
  apiKey?: string,
  timeoutMs = 5_000,
  stopSignal?: AbortSignal,
): Promise<void> {
  if (n <= 0 || stopSignal?.aborted) return;
  const headers: Record<string, string> = apiKey ? { authorization: `Bearer ${apiKey}` } : {};
  const signal = stopSignal ? AbortSignal.any([AbortSignal.timeout(timeoutMs), stopSignal]) : AbortSignal.timeout(timeoutMs);
  setMaxListeners(n + 1, signal); // one listener per warm-up request
  const one = async (): Promise<void> => {
    try {
      const res = await dispatcher.request({ path: `${basePath}/v1/models`, method: 'GET', headers, signal });
      await res.body.dump();
    } catch {
      /* ignored: warming is best effort */
    }
  };
  // The signal cannot cancel a request that is still connecting (undici acts on it once the request starts),
  // so the wait itself ends on it too: a target that drops packets costs timeoutMs, not the connect timeout.
  const bound = new Promise<void>((resolve) => signal.addEventListener('abort', () => resolve(), { once: true }));
  await Promise.race([Promise.all(Array.from({ length: n }, one)), bound]);
}

/**
 * vLLM's --num-warmups: `n` requests sent before the measured run (cycling over `prompts`), at most
 * `maxConcurrency` at a time, their results discarded (vllm/benchmarks/serve.py, benchmark()). They take the
 * engines' start transient (first batches, graph captures, allocator growth) out of the measured run.
 */
export async function warmRequests(
  dispatcher: Dispatcher,
  settings: RequestSettings,
  prompts: readonly PromptSpec[],
  n: number,
  maxConcurrency: number | null,
  signal?: AbortSignal,
): Promise<{ ok: number; failed: number }> {
  let next = 0;
  let ok = 0;
  let failed = 0;
  const worker = async (): Promise<void> => {
    while (next < n && !signal?.aborted) {
      const i = next++;
      const settingsNoText = { ...settings, keepText: false };
      const o = await sendRequest(dispatcher, settingsNoText, prompts[i % prompts.length]!, signal, undefined, settings.requestIdPrefix ? settings.requestIdPrefix + i : null);
      if (o.success) ok++;
      else failed++;
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, maxConcurrency ?? n) }, worker));
  return { ok, failed };
}
