/**
 * Stream-back: an engine's answer to the client, byte for byte. Nothing parses the body; a stream that breaks
 * after the headers went out ends with an SSE error event (other bodies can only be cut).
 */
import type { OutgoingHttpHeaders, ServerResponse } from 'node:http';
import type { UpstreamResponse } from './upstream-call.js';
import type { EngineState } from './engine.js';
import { downstreamResponseHeaders } from './headers.js';
import { sseErrorEvent } from './openai-error.js';
import { errCode, isTimeout } from './failures.js';
import type { ProxyMetrics } from './metrics.js';

/** How a piped body ended, for the access log (undefined: it ended normally). */
export type PipeNote = 'client_abort' | 'mid_stream_error' | undefined;

export interface PipeDeps {
  metrics: ProxyMetrics;
  decodeIdleMs: number;
}

/** The request being answered: `gone` turns true once its client went away. */
export interface PipeScope {
  readonly gone: boolean;
}

const ERROR_EVENT = Buffer.from('data: {"error"');

/** Return an engine's error answer to the client: its status, headers and body. */
export function passError(res: ServerResponse, up: UpstreamResponse, text: string, extra: OutgoingHttpHeaders): void {
  const headers = downstreamResponseHeaders(up.headers, extra);
  delete headers['content-length'];
  headers['content-length'] = Buffer.byteLength(text);
  if (headers['content-type'] === undefined) headers['content-type'] = 'application/json';
  res.writeHead(up.statusCode, headers);
  res.end(text);
}

/**
 * Copy an upstream body to the client with backpressure. Resolves with a note for the access log.
 * `onErrorEvent` is called once when the body carries an SSE error event (`data: {"error"`), the way vLLM
 * reports a generation that failed after its 200 (e.g. a KV load failure with kv_load_failure_policy=fail).
 *
 * Writes are corked until the end of the current tick, so that what one upstream read delivers (often the
 * last tokens, the usage chunk, [DONE] and the end of the body together) goes to the client in one system call
 * instead of one per chunk plus one for the end; a streamed token is never held past the read it came in.
 */
export function pipeBody(
  up: UpstreamResponse,
  res: ServerResponse,
  engine: EngineState,
  stage: 'decode' | 'forward' | 'engine',
  deps: PipeDeps,
  scope: PipeScope,
  onErrorEvent?: (scope: PipeScope) => void,
): Promise<PipeNote> {
  return new Promise((resolve) => {
    const body = up.body;
    let last: Buffer | undefined;
    let prev: Buffer | undefined;
    let corked = false;
    let watch = onErrorEvent;
    const uncork = (): void => {
      corked = false;
      res.uncork();
    };
    const onDrain = (): void => body.resume();
    res.on('drain', onDrain);
    body.pipe({
      data: (chunk) => {
        prev = last;
        last = chunk;
        if (watch !== undefined && chunk.indexOf(ERROR_EVENT) >= 0) {
          watch(scope);
          watch = undefined;
        }
        if (!corked) {
          corked = true;
          res.cork();
          process.nextTick(uncork);
        }
        return res.write(chunk);
      },
      end: () => {
        res.off('drain', onDrain);
        res.end();
        resolve(undefined);
      },
      error: (err) => {
        res.off('drain', onDrain);
        if (scope.gone || res.destroyed) return resolve('client_abort');
        deps.metrics.upstreamErrors.inc({ engine: engine.name, stage, kind: errCode(err) || 'stream_error' });
        deps.metrics.midStreamErrors.inc();
        const ct = String(up.headers['content-type'] ?? '');
        if (ct.includes('text/event-stream')) {
          let tail = '';
          if (last !== undefined) {
            const t = prev !== undefined ? Buffer.concat([prev.subarray(-2), last]) : last;
            tail = t.subarray(-2).toString('latin1');
          }
          const sep = last === undefined || tail === '\n\n' ? '' : tail.endsWith('\n') ? '\n' : '\n\n';
          const reason = isTimeout(err) ? `no data for ${deps.decodeIdleMs} ms (proxy.timeouts.decodeIdleMs)` : err.message;
          const who = stage === 'engine' ? 'engine' : 'decode engine';
          res.end(sep + sseErrorEvent(502, `The ${who} ${engine.name} failed mid-stream: ${reason}`));
        } else {
          res.destroy(err);
        }
        resolve('mid_stream_error');
      },
    });
  });
}

/** What streamBack records on the request: how its body ended. */
export interface StreamBackScope extends PipeScope {
  readonly res: ServerResponse;
  readonly rec: { note?: string };
}

/**
 * Answer the client with an engine's response: its status and headers (plus `extra`), then its body, piped. The
 * note goes to the access record, a client abort to the metrics; whatever happens, the engine's body is released
 * and its in-flight count dropped.
 */
export async function streamBack(
  up: { engine: EngineState; res: UpstreamResponse },
  scope: StreamBackScope,
  stage: 'decode' | 'forward' | 'engine',
  deps: PipeDeps,
  extra: OutgoingHttpHeaders,
  onErrorEvent?: (scope: PipeScope) => void,
): Promise<void> {
  try {
    scope.res.writeHead(up.res.statusCode, downstreamResponseHeaders(up.res.headers, extra));
    const note = await pipeBody(up.res, scope.res, up.engine, stage, deps, scope, onErrorEvent);
    if (note) scope.rec.note = note;
    if (note === 'client_abort') deps.metrics.clientAborts.inc({ stage });
  } finally {
    up.res.body.cancel(); // only does something if writeHead threw before the body was piped
    up.engine.inFlight--;
  }
}
