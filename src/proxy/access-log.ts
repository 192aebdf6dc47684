/**
 * One access-log line per proxied request: id, route, status, prefill ms, decode TTFB, total, instances.
 * `text` is for people, `json` for machines (one object per line). Lines are batched per tick so that the
 * synchronous stderr writes of a pipe do not sit on the hot path.
 */
export type AccessLogFormat = 'text' | 'json' | 'off';

export interface AccessRecord {
  id: string;
  method: string;
  route: string;
  status: number;
  /** ms in the admission queue and rate limiter */
  queueMs: number | null;
  prefillMs: number | null;
  decodeTtfbMs: number | null;
  totalMs: number;
  producer: string | null;
  consumer: string | null;
  /** why it ended the way it did, when not a plain success (e.g. client_abort, mid_stream_error) */
  note?: string;
}

const ms = (v: number | null): string => (v === null ? '-' : v.toFixed(1));

export function formatAccessLine(r: AccessRecord, format: 'text' | 'json'): string {
  if (format === 'json') {
    return JSON.stringify({
      time: new Date().toISOString(),
      id: r.id,
      method: r.method,
      route: r.route,
      status: r.status,
      queue_ms: round(r.queueMs),
      prefill_ms: round(r.prefillMs),
      decode_ttfb_ms: round(r.decodeTtfbMs),
      total_ms: round(r.totalMs),
      producer: r.producer,
      consumer: r.consumer,
      ...(r.note ? { note: r.note } : {}),
    });
  }
  return (
    `${new Date().toISOString()} ${r.id} ${r.method} ${r.route} ${r.status} ` +
    `queue=${ms(r.queueMs)}ms prefill=${ms(r.prefillMs)}ms decode_ttfb=${ms(r.decodeTtfbMs)}ms total=${ms(r.totalMs)}ms ` +
    `producer=${r.producer ?? '-'} consumer=${r.consumer ?? '-'}${r.note ? ` note=${r.note}` : ''}`
  );
}

function round(v: number | null): number | null {
  return v === null ? null : Math.round(v * 1000) / 1000;
}

/** A line sink that writes to stderr in batches (one write per event-loop turn). */
export function batchedStderrSink(): (line: string) => void {
  let buf: string[] = [];
  let scheduled = false;
  const flush = (): void => {
    scheduled = false;
    const out = buf.join('\n') + '\n';
    buf = [];
    process.stderr.write(out);
  };
  return (line: string) => {
    buf.push(line);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}
