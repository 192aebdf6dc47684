/**
 * One streamed request against an OpenAI-compatible endpoint, timed like `vllm bench serve`
 * (lib/endpoint_request_func.py) with one deliberate difference: TTFT is measured to the first chunk that
 * carries generated output (text, content or reasoning), not to the first chunk with `choices` — so the
 * role-only chat chunk and the usage chunk never count. ITL gaps and E2EL likewise run between/to output chunks.
 */
import { performance } from 'node:perf_hooks';
import { TextDecoder } from 'node:util';
import type { Dispatcher } from 'undici';
import { createParser } from 'eventsource-parser';
import { stageTimes } from './server-timing.js';

export type Endpoint = 'chat' | 'completions';

export interface ChatMessage {
  role: string;
  content: string;
}

export interface PromptSpec {
  /** Text (chat or completions) or token ids (completions only). */
  prompt: string | number[];
  /** Chat: the whole conversation to send (system prompt, earlier turns); default one user message of `prompt`. */
  messages?: ChatMessage[];
  /** Input length the dataset promised (replaced by the server's usage.prompt_tokens when present). */
  promptLen: number;
  /** max_tokens / max_completion_tokens. */
  outputLen: number;
  /** Chat: the token count each text should have (the prompt, or each message), for exact-length alignment. */
  textTokens?: number[];
  /** prefix-sharing: which shared prompt; multi-turn: which conversation. */
  group?: number;
  /** multi-turn: the turn (1-based). */
  turn?: number;
}

export interface RequestSettings {
  endpoint: Endpoint;
  model: string;
  ignoreEos: boolean;
  /** Path prefix of the base URL (e.g. "" or "/proxy"); the endpoint path is appended. */
  basePath: string;
  apiKey?: string;
  /** Merged into every body after pd's own fields (sampling flags, --extra-body), as vLLM does. */
  extraBody?: Record<string, unknown> | null;
  /** Extra headers (--header); x-request-id is set per request on top of them, as vLLM does. */
  headers?: Record<string, string> | null;
  /** x-request-id of request i is `${requestIdPrefix}${i}`; none sent when unset. */
  requestIdPrefix?: string | null;
  /** Keep generated texts (large runs can turn this off). */
  keepText?: boolean;
}

export interface RequestOutcome {
  success: boolean;
  status: number | null;
  error: string;
  errorKind: string | null;
  promptLen: number;
  /** Output tokens: server usage when sent, else the number of output chunks. */
  outputTokens: number;
  usageSource: 'server' | 'chunks' | null;
  /** performance.now() when handed to the socket. */
  startAt: number;
  /** performance.now() when the response ended (or failed). */
  endAt: number;
  ttftMs: number | null;
  e2elMs: number | null;
  itlMs: number[];
  /** Tokens in each output chunk after the first (same length as itlMs). */
  chunkTokens: number[];
  generatedText: string;
  serverTiming: string | null;
  prefillMs: number | null;
  decodeTtfbMs: number | null;
}

export function endpointPath(endpoint: Endpoint): string {
  return endpoint === 'chat' ? '/v1/chat/completions' : '/v1/completions';
}

export function buildBody(settings: RequestSettings, spec: PromptSpec): Record<string, unknown> {
  // One object, filled in vLLM's key order (no spreads: this runs for every request of a run).
  const body: Record<string, unknown> = { model: settings.model, stream: true, stream_options: { include_usage: true } };
  if (settings.ignoreEos) body.ignore_eos = true;
  if (settings.endpoint === 'chat') {
    body.messages = spec.messages ?? [{ role: 'user', content: typeof spec.prompt === 'string' ? spec.prompt : spec.prompt.join(' ') }];
    body.max_completion_tokens = spec.outputLen;
  } else {
    body.prompt = spec.prompt;
    body.max_tokens = spec.outputLen;
  }
  if (settings.extraBody) Object.assign(body, settings.extraBody);
  return body;
}

interface Chunk {
  choices?: Array<{
    text?: string | null;
    delta?: { content?: string | null; reasoning_content?: string | null; reasoning?: string | null };
    logprobs?: { tokens?: unknown[]; content?: unknown[] } | null;
  }>;
  usage?: { prompt_tokens?: number; completion_tokens?: number } | null;
  error?: unknown;
  object?: string;
  message?: string;
}

function chunkOutput(c: Chunk, endpoint: Endpoint): string {
  const choice = c.choices?.[0];
  if (!choice) return '';
  if (endpoint === 'completions') return choice.text ?? '';
  const d = choice.delta;
  if (!d) return choice.text ?? '';
  return (d.content ?? '') + (d.reasoning_content ?? d.reasoning ?? '');
}

function inBandError(c: Chunk): string | null {
  if (c.error !== undefined && c.error !== null) {
    const e = c.error as { message?: unknown };
    return typeof e === 'object' && typeof e.message === 'string' ? e.message : JSON.stringify(c.error);
  }
  if (c.object === 'error') return typeof c.message === 'string' ? c.message : 'error';
  return null;
}

export function errorKindOf(e: unknown): string {
  const code = (e as { code?: string }).code ?? '';
  const name = (e as { name?: string }).name ?? '';
  if (name === 'AbortError' || code === 'UND_ERR_ABORTED') return 'aborted';
  if (code === 'ECONNREFUSED' || code === 'ENOTFOUND' || code === 'EHOSTUNREACH' || code === 'UND_ERR_CONNECT_TIMEOUT') return 'connect';
  if (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET' || code === 'EPIPE') return 'reset';
  if (code === 'UND_ERR_HEADERS_TIMEOUT' || code === 'UND_ERR_BODY_TIMEOUT') return 'timeout';
  return 'other';
}

const STREAM = { stream: true } as const;

/** The headers every request of a run shares, made once per settings object. */
const headersCache = new WeakMap<RequestSettings, Record<string, string>>();
function baseHeaders(settings: RequestSettings): Record<string, string> {
  let h = headersCache.get(settings);
  if (!h) {
    h = { 'content-type': 'application/json', accept: 'text/event-stream' };
    if (settings.apiKey) h.authorization = `Bearer ${settings.apiKey}`;
    // --header overrides pd's defaults; the request id is set last (vllm/benchmarks/lib/endpoint_request_func.py,
    // _update_headers_common).
    if (settings.headers) for (const [k, v] of Object.entries(settings.headers)) h[k.toLowerCase()] = v;
    headersCache.set(settings, h);
  }
  return h;
}

/** Headers of one request: the shared ones plus its x-request-id when ids are on. */
export function requestHeaders(settings: RequestSettings, requestId: string | null): Record<string, string> {
  const h = baseHeaders(settings);
  return requestId === null ? h : { ...h, 'x-request-id': requestId };
}

function headerValue(h: Record<string, string | string[] | undefined>, name: string): string | null {
  const v = h[name];
  if (v === undefined) return null;
  return Array.isArray(v) ? v.join(', ') : v;
}

/** Send one request and time it. Never throws: failures come back as `success: false` with a kind. */
export async function sendRequest(
  dispatcher: Dispatcher,
  settings: RequestSettings,
  spec: PromptSpec,
  signal?: AbortSignal,
  /** Called after each piece of the response is handled (the generator sends due requests from it). */
  onIo?: () => void,
  /** Sent as x-request-id (and kept in the outcome). */
  requestId: string | null = null,
): Promise<RequestOutcome> {
  const body = JSON.stringify(buildBody(settings, spec));
  const headers = requestHeaders(settings, requestId);
  const out: RequestOutcome = {
    success: false,
    status: null,
    error: '',
    errorKind: null,
    promptLen: spec.promptLen,
    outputTokens: 0,
    usageSource: null,
    startAt: 0,
    endAt: 0,
    ttftMs: null,
    e2elMs: null,
    itlMs: [],
    chunkTokens: [],
    generatedText: '',
    serverTiming: null,
    prefillMs: null,
    decodeTtfbMs: null,
  };
  const fail = (kind: string, message: string): RequestOutcome => {
    out.success = false;
    out.errorKind = kind;
    out.error = message;
    out.endAt = performance.now();
    return out;
  };

  let first = true;
  let chunkCount = 0;
  let usageCompletion: number | null = null;
  let usagePrompt: number | null = null;
  let prevContinuousUsage: number | null = null;
  let inBand = null as string | null;
  let badJson = null as string | null;
  const texts: string[] = [];
  const keepText = settings.keepText !== false;
  const parser = createParser({
    onEvent(ev) {
      const data = ev.data;
      if (data === '[DONE]' || inBand !== null) return;
      let c: Chunk;
      try {
        c = JSON.parse(data) as Chunk;
      } catch {
        badJson ??= data.slice(0, 200);
        return;
      }
      const errMsg = inBandError(c);
      if (errMsg !== null) {
        inBand = errMsg;
        return;
      }
      const text = chunkOutput(c, settings.endpoint);
      let tokens = 1;
      if (c.usage && typeof c.usage.completion_tokens === 'number') {
        if (text !== '' && prevContinuousUsage !== null) tokens = Math.max(1, c.usage.completion_tokens - prevContinuousUsage);
        prevContinuousUsage = c.usage.completion_tokens;
        usageCompletion = c.usage.completion_tokens;
        if (typeof c.usage.prompt_tokens === 'number') usagePrompt = c.usage.prompt_tokens;
      } else {
        const lp = c.choices?.[0]?.logprobs;
        const n = lp ? (lp.tokens?.length ?? lp.content?.length) : undefined;
        if (typeof n === 'number' && n > 0) tokens = n;
      }
      if (text === '') return;
      chunkCount++;
      if (first) {
        first = false;
        out.ttftMs = now - st;
      } else {
        out.itlMs.push(now - last);
        out.chunkTokens.push(tokens);
      }
      last = now;
      if (keepText) texts.push(text);
    },
  });
  // SSE reads nearly always end on a line break, so they decode on their own; a TextDecoder (which keeps
  // a multi-byte character split across reads) is only made when one does not.
  let decoder: TextDecoder | null = null;
  const decode = (chunk: Buffer): string => {
    if (decoder === null && chunk[chunk.length - 1]! < 0x80) return chunk.toString('utf8');
    decoder ??= new TextDecoder();
    return decoder.decode(chunk, STREAM);
  };

  // undici's handler API rather than request() + a Readable body: no stream object, no promise per chunk and
  // far less garbage per request, which is what lets one process drive thousands of streams per second
  // without GC pauses making its sends late.
  const st = performance.now();
  out.startAt = st;
  let last = st;
  let now = st;
  let errorBody = '';
  let transportError: unknown = null;
  let headersSeen = false;
  await new Promise<void>((resolve) => {
    let controller: Dispatcher.DispatchController | null = null;
    let settled = false;
    const reason = (): Error => (signal?.reason as Error | undefined) ?? new DOMException('This operation was aborted', 'AbortError');
    // Before undici calls onRequestStart (the request still waits for a socket) there is no controller:
    // settle now, and abort the request the moment it would start.
    const onAbort = (): void => (controller ? controller.abort(reason()) : finish(reason()));
    const finish = (err: unknown): void => {
      if (settled) return;
      settled = true;
      transportError = err;
      signal?.removeEventListener('abort', onAbort);
      resolve();
    };
    if (signal?.aborted) return finish(reason());
    signal?.addEventListener('abort', onAbort, { once: true });
    const handler: Dispatcher.DispatchHandler = {
      onRequestStart(c) {
        controller = c;
        if (settled) c.abort(reason());
      },
      onResponseStart(_c, statusCode, headers) {
        if (statusCode < 200) return; // 1xx informational
        headersSeen = true;
        out.status = statusCode;
        out.serverTiming = headerValue(headers, 'server-timing');
      },
      onResponseData(c, chunk) {
        if (out.status !== 200) {
          if (errorBody.length < 500) errorBody += chunk.toString('utf8');
          return;
        }
        now = performance.now();
        parser.feed(decode(chunk));
        if (inBand !== null) c.abort(new Error('in-band error'));
        onIo?.();
      },
      onResponseEnd() {
        finish(null);
        onIo?.();
      },
      onResponseError(_c, err) {
        finish(err);
      },
    };
    try {
      dispatcher.dispatch({ path: settings.basePath + endpointPath(settings.endpoint), method: 'POST', headers, body }, handler);
    } catch (e) {
      finish(e);
    }
  });
  if (out.serverTiming) {
    const t = stageTimes(out.serverTiming);
    out.prefillMs = t.prefillMs;
    out.decodeTtfbMs = t.decodeTtfbMs;
  }
  if (!headersSeen) {
    const e = transportError ?? new Error('no response');
    return fail(errorKindOf(e), e instanceof Error ? e.message : 'no response');
  }
  if (out.status !== 200) {
    const text = errorBody.slice(0, 500).trim();
    return fail(`http_${out.status}`, `HTTP ${out.status}${text ? `: ${text}` : ''}`);
  }
  if (inBand === null) {
    if (decoder !== null) parser.feed((decoder as TextDecoder).decode());
    parser.reset({ consume: true });
  }
  if (transportError !== null && inBand === null) {
    const e = transportError;
    return fail(errorKindOf(e) === 'other' ? 'stream' : errorKindOf(e), `stream broke: ${e instanceof Error ? e.message : 'unknown error'}`);
  }
  out.endAt = performance.now();
  out.generatedText = texts.join('');
  if (inBand !== null) return fail('in_band_error', `in-band error: ${inBand}`);
  if (first) {
    return fail(badJson !== null ? 'bad_json' : 'no_output', badJson !== null ? `unparseable chunk: ${badJson}` : 'the stream carried no generated output');
  }
  out.success = true;
  out.e2elMs = last - st;
  if (usagePrompt !== null) out.promptLen = usagePrompt;
  if (usageCompletion !== null) {
    out.outputTokens = usageCompletion;
    out.usageSource = 'server';
  } else {
    out.outputTokens = chunkCount;
    out.usageSource = 'chunks';
  }
  return out;
}
