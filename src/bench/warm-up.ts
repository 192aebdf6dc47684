/**
 * Opens keep-alive connections before the first arrival, so the first requests of a run do not pay a TCP
 * handshake that later ones do not (which shows in the TTFT tail). vLLM's `bench serve` does the same for one
 * connection with its initial test prompt; pd opens as many as the run is likely to use at once, with cheap
 * `GET /v1/models` requests. Failures are ignored: the run itself reports an unreachable target.
 */
import { setMaxListeners } from 'node:events';
import type { Dispatcher } from 'undici';

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
