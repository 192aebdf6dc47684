/**
 * Counts the connector's events and errors in engine log lines (vLLM's own wording). A KV cache hit is a load:
 * the scheduler's "Inject KV cache of N tokens" (vllm/v1/core/sched/scheduler.py via the connector), which vLLM
 * logs only when the connector supplies tokens beyond the local prefix cache. "External Cache Hit!" is only the
 * connector's lookup (example_connector.py logs it even when the local prefix cache already holds those tokens),
 * so it is counted apart.
 */

export interface LogCounters {
  /** KV loads from the connector (Inject KV cache lines). */
  cacheHits: number;
  /** Connector lookups that found a stored entry (External Cache Hit! lines). */
  lookupHits: number;
  injectedTokens: number;
  kvSaves: number;
  errors: number;
}

export function emptyCounters(): LogCounters {
  return { cacheHits: 0, lookupHits: 0, injectedTokens: 0, kvSaves: 0, errors: 0 };
}

const INJECT = /Inject KV cache of (\d+) tokens/;

export type LogEvent = 'lookup-hit' | 'cache-hit' | 'save' | 'error';

/** Update the counters for one line and return what it was, if anything. */
export function watchLine(line: string, c: LogCounters): LogEvent | null {
  if (line.includes('External Cache Hit!')) {
    c.lookupHits++;
    return 'lookup-hit';
  }
  const inject = INJECT.exec(line);
  if (inject) {
    c.cacheHits++;
    c.injectedTokens += Number(inject[1]);
    return 'cache-hit';
  }
  if (/Saving KV cache|save_kv_layer|Saved KV cache/i.test(line)) {
    c.kvSaves++;
    return 'save';
  }
  if (/^(\(\w+ pid=\d+\) )?ERROR\b|Traceback \(most recent call last\)|^ERROR:/.test(line)) {
    c.errors++;
    return 'error';
  }
  return null;
}
