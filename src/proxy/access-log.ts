/**
 * One access-log line per proxied request: id, route, status, prefill ms, decode TTFB, total, instances (in
 * single-stage mode: the engine's TTFB and the engine).
 * `text` is for people, `json` for machines (one object per line). Lines to stderr are batched (see batchedStderrSink) so
 * that the synchronous writes of a pipe do not sit on the hot path.
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
  /**
   * The engine of a single-stage proxy (TP, PP, DP). Its line then shows `ttfb` (the engine's time to its response
   * headers, kept in decodeTtfbMs) and `engine` instead of the two stages.
   */
  engine?: string;
  /** why it ended the way it did, when not a plain success (e.g. client_abort, mid_stream_error) */
  note?: string;
}

const ms = (v: number | null): string => (v === null ? '-' : v.toFixed(1));

/** A JSON string literal; the common case (printable ASCII without quotes or backslashes) needs no escaping. */
const PLAIN = /^[\x20-\x7e]*$/;
const jsonStr = (v: string | null): string =>
  v === null ? 'null' : PLAIN.test(v) && !v.includes('"') && !v.includes('\\') ? `"${v}"` : JSON.stringify(v);

/** The current time as ISO 8601, formatted once per millisecond (several requests end in the same one). */
let isoMs = -1;
let iso = '';
function nowIso(): string {
  const t = Date.now();
  if (t !== isoMs) {
    isoMs = t;
    iso = new Date(t).toISOString();
  }
  return iso;
}

export function formatAccessLine(r: AccessRecord, format: 'text' | 'json'): string {
  if (r.engine !== undefined) return singleStageLine(r, r.engine, format);
  if (format === 'json') {
    // Built by hand (one line per request on the hot path): the same object JSON.stringify would give, in a
    // third of the time.
    return (
      `{"time":"${nowIso()}","id":${jsonStr(r.id)},"method":${jsonStr(r.method)},` +
      `"route":${jsonStr(r.route)},"status":${r.status},"queue_ms":${round(r.queueMs)},` +
      `"prefill_ms":${round(r.prefillMs)},"decode_ttfb_ms":${round(r.decodeTtfbMs)},"total_ms":${round(r.totalMs)},` +
      `"producer":${jsonStr(r.producer)},"consumer":${jsonStr(r.consumer)}${r.note ? `,"note":${jsonStr(r.note)}` : ''}}`
    );
  }
  return (
    `${nowIso()} ${r.id} ${r.method} ${r.route} ${r.status} ` +
    `queue=${ms(r.queueMs)}ms prefill=${ms(r.prefillMs)}ms decode_ttfb=${ms(r.decodeTtfbMs)}ms total=${ms(r.totalMs)}ms ` +
    `producer=${r.producer ?? '-'} consumer=${r.consumer ?? '-'}${r.note ? ` note=${r.note}` : ''}`
  );
}

function singleStageLine(r: AccessRecord, engine: string, format: 'text' | 'json'): string {
  if (format === 'json') {
    return (
      `{"time":"${nowIso()}","id":${jsonStr(r.id)},"method":${jsonStr(r.method)},` +
      `"route":${jsonStr(r.route)},"status":${r.status},"queue_ms":${round(r.queueMs)},` +
      `"ttfb_ms":${round(r.decodeTtfbMs)},"total_ms":${round(r.totalMs)},` +
      `"engine":${jsonStr(engine)}${r.note ? `,"note":${jsonStr(r.note)}` : ''}}`
    );
  }
  return (
    `${nowIso()} ${r.id} ${r.method} ${r.route} ${r.status} ` +
    `queue=${ms(r.queueMs)}ms ttfb=${ms(r.decodeTtfbMs)}ms total=${ms(r.totalMs)}ms ` +
    `engine=${engine}${r.note ? ` note=${r.note}` : ''}`
  );
}

function round(v: number | null): number | null {
  return v === null || !Number.isFinite(v) ? null : Math.round(v * 1000) / 1000;
}

/** A line sink that can be flushed (the default stderr sink). */
export interface FlushableSink {
  (line: string): void;
  flush(): void;
  /** Flush and forget the sink (its proxy closed); later lines are written at once. */
  dispose(): void;
}

const liveSinks = new Set<FlushableSink>();
let exitHook = false;

/**
 * A line sink that writes to stderr in batches: when 64 KB are waiting or 50 ms after the first waiting line,
 * whichever comes first (like nginx's `access_log … buffer= flush=`). Writes to a pipe are synchronous in
 * Node, and one per event-loop turn cost ~8% of the proxy's CPU at 6,000 req/s. What is waiting is written
 * when the proxy closes and when the process exits.
 */
export function batchedStderrSink(maxDelayMs = 50, maxBytes = 64 * 1024): FlushableSink {
  // Lines are encoded straight into a buffer (no array of strings to join and re-encode at flush time); a
  // line is added only while the buffer has room for its worst case (3 UTF-8 bytes per UTF-16 unit).
  let buf = Buffer.allocUnsafe(maxBytes);
  let pos = 0;
  let timer: NodeJS.Timeout | null = null;
  let disposed = false;
  const flush = (): void => {
    if (timer !== null) {
      clearTimeout(timer);
      timer = null;
    }
    if (pos === 0) return;
    const out = buf.subarray(0, pos);
    // The stream may still hold `out` after write() returns: never reuse its memory.
    buf = Buffer.allocUnsafe(maxBytes);
    pos = 0;
    process.stderr.write(out);
  };
  const sink = ((line: string) => {
    const worst = line.length * 3 + 1;
    if (disposed || worst > maxBytes) {
      // A late line (after close) or one larger than a whole batch: in order, at once.
      flush();
      process.stderr.write(line + '\n');
      return;
    }
    if (pos + worst > maxBytes) flush();
    pos += buf.write(line, pos, 'utf8');
    buf[pos++] = 0x0a;
    if (pos + 1024 > maxBytes) flush();
    else if (timer === null) {
      timer = setTimeout(flush, maxDelayMs);
      timer.unref();
    }
  }) as FlushableSink;
  sink.flush = flush;
  sink.dispose = () => {
    flush();
    liveSinks.delete(sink);
    disposed = true; // a late line (after close) is written at once instead of waiting for a timer
  };
  liveSinks.add(sink);
  if (!exitHook) {
    exitHook = true;
    process.once('exit', () => {
      for (const s of liveSinks) s.flush();
    });
  }
  return sink;
}
