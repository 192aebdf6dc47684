/**
 * The soak's client: chat completions through the proxy (streaming or not), each judged against the proxy's
 * contract. A request either succeeds, fails cleanly (an HTTP error status, or an SSE error event that ends the
 * stream), is aborted by the client on purpose, or is lost: no response, hung past its deadline, a body cut
 * without an error, or an answer that is not what the API promises. Lost requests are the bugs the soak hunts.
 */
import { Agent, request } from 'undici';
import { createParser } from 'eventsource-parser';

export type Outcome = 'ok' | 'failed-clean' | 'aborted' | 'lost';

export interface Result {
  outcome: Outcome;
  /** What was seen: "200", "502", "sse-error", "ECONNRESET", "deadline", "truncated" … */
  detail: string;
  stream: boolean;
  ms: number;
}

export interface LoadOptions {
  baseUrl: string;
  model: string;
  /** A request not settled after this long is lost (hung). */
  deadlineMs: number;
  /** Fraction of requests the client aborts on purpose, at a random moment of their first second. */
  abortRate: number;
  random: () => number;
}

const PROMPTS = [
  'Explain prefill/decode disaggregation in two sentences.',
  'Write a haiku about GPUs that never sleep.',
  'List three reasons a KV cache transfer might be slow, with one fix each, and keep it short please.',
  'What is the capital of France? Answer with one word.',
];

export class LoadClient {
  readonly agent = new Agent({ connections: 512, keepAliveTimeout: 10_000, pipelining: 1 });
  constructor(private readonly o: LoadOptions) {}

  async send(): Promise<Result> {
    const { o } = this;
    const stream = o.random() < 0.5;
    const abortAfter = o.random() < o.abortRate ? Math.floor(o.random() * 1000) : null;
    const body = JSON.stringify({
      model: o.model,
      messages: [{ role: 'user', content: PROMPTS[Math.floor(o.random() * PROMPTS.length)]! }],
      max_tokens: 8 + Math.floor(o.random() * 56),
      stream,
      ...(stream ? { stream_options: { include_usage: true } } : {}),
    });
    const t0 = performance.now();
    const ac = new AbortController();
    let why: 'client' | 'deadline' | null = null;
    const deadline = setTimeout(() => {
      why = 'deadline';
      ac.abort();
    }, o.deadlineMs);
    const aborter = abortAfter === null ? null : setTimeout(() => {
      why ??= 'client';
      ac.abort();
    }, abortAfter);
    const done = (outcome: Outcome, detail: string): Result => ({ outcome, detail, stream, ms: performance.now() - t0 });
    try {
      const res = await request(`${o.baseUrl}/v1/chat/completions`, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json' },
        body,
        signal: ac.signal,
        headersTimeout: o.deadlineMs,
        bodyTimeout: o.deadlineMs,
      });
      const text = await readBody(res.body);
      if (res.statusCode !== 200) return done('failed-clean', String(res.statusCode));
      return stream ? judgeStream(text, done) : judgeJson(text, done);
    } catch (e) {
      if (why === 'client') return done('aborted', 'client abort');
      if (why === 'deadline') return done('lost', 'deadline');
      return done('lost', (e as NodeJS.ErrnoException).code ?? (e as Error).message);
    } finally {
      clearTimeout(deadline);
      if (aborter) clearTimeout(aborter);
    }
  }

  close(): Promise<void> {
    return this.agent.close();
  }
}

async function readBody(body: AsyncIterable<Buffer>): Promise<string> {
  let text = '';
  for await (const chunk of body) text += chunk.toString('utf8');
  return text;
}

function judgeJson(text: string, done: (o: Outcome, d: string) => Result): Result {
  try {
    const j = JSON.parse(text) as { object?: string; choices?: Array<{ message?: { content?: unknown } }> };
    if (j.object === 'chat.completion' && typeof j.choices?.[0]?.message?.content === 'string') return done('ok', '200');
    return done('lost', 'not a chat.completion');
  } catch {
    return done('lost', 'truncated json');
  }
}

/** A stream succeeds with chunks then `[DONE]`; it fails cleanly with an error event (then `[DONE]` or the end). */
function judgeStream(text: string, done: (o: Outcome, d: string) => Result): Result {
  let chunks = 0;
  let error: string | null = null;
  let sawDone = false;
  let afterDone = false;
  const parser = createParser({
    onEvent: (ev) => {
      if (sawDone) afterDone = true;
      if (ev.data === '[DONE]') {
        sawDone = true;
        return;
      }
      try {
        const j = JSON.parse(ev.data) as { error?: { message?: string }; object?: string };
        if (j.error) error = j.error.message ?? 'error';
        else if (j.object === 'chat.completion.chunk') chunks++;
      } catch {
        error ??= 'unparsable event';
      }
    },
  });
  parser.feed(text);
  if (afterDone) return done('lost', 'data after [DONE]');
  if (error !== null && error !== 'unparsable event') return done('failed-clean', 'sse-error');
  if (error !== null) return done('lost', 'unparsable event');
  if (!sawDone) return done('lost', chunks > 0 ? 'truncated stream' : 'empty stream');
  return chunks > 0 ? done('ok', '200') : done('lost', 'no chunks');
}
