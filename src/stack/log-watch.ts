/** Counts the connector's events and errors in engine log lines (vLLM's own wording). */

export interface LogCounters {
  cacheHits: number;
  injectedTokens: number;
  kvSaves: number;
  errors: number;
}

export function emptyCounters(): LogCounters {
  return { cacheHits: 0, injectedTokens: 0, kvSaves: 0, errors: 0 };
}

const INJECT = /Inject KV cache of (\d+) tokens/;

export type LogEvent = 'cache-hit' | 'inject' | 'save' | 'error';

/** Update the counters for one line and return what it was, if anything. */
export function watchLine(line: string, c: LogCounters): LogEvent | null {
  if (line.includes('External Cache Hit!')) {
    c.cacheHits++;
    return 'cache-hit';
  }
  const inject = INJECT.exec(line);
  if (inject) {
    c.injectedTokens += Number(inject[1]);
    return 'inject';
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
