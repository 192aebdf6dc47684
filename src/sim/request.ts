/**
 * Turn an OpenAI request body into what the engine needs, with vLLM's validation rules and error messages
 * (protocol validators, context-length checks, sampling-parameter checks, model name, request id).
 */
import type { IncomingMessage } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { GenParams } from './engine.js';
import { chatRequestSchema, completionRequestSchema, errorBody, formatIssues, type ChatRequest, type CompletionRequest } from './protocol.js';
import { pyRepr } from './kv/nixl.js';
import { detokenize, tokenize, tokenizeChat, VOCAB_SIZE } from './tokenizer.js';

export interface RequestContext {
  servedModelNames: string[];
  /**
   * vLLM >= 0.14 raises request validation errors as VLLMValidationError(message, parameter=, value=)
   * (vllm/exceptions.py): the message gains " (parameter=X, value=V)" and the error's `param` is X.
   */
  validationParams: boolean;
  /** --enable-force-include-usage: usage in every stream's last chunk (vllm/entrypoints/openai/utils.py should_include_usage). */
  forceIncludeUsage: boolean;
  maxModelLen: number;
  stallMs: number;
  cutAfter: number;
}

export class HttpError extends Error {
  constructor(readonly status: number, readonly body: unknown) {
    super(typeof body === 'string' ? body : JSON.stringify(body));
  }
}
export const badRequest = (msg: string): HttpError => new HttpError(400, errorBody(msg, 400));
export const validationError = (msg: string): HttpError => new HttpError(400, errorBody(msg, 400, 'Bad Request'));

export interface Prepared {
  kind: 'chat' | 'completion';
  id: string;
  created: number;
  model: string;
  stream: boolean;
  includeUsage: boolean;
  continuousUsage: boolean;
  echo: boolean;
  prompts: Array<{ ids: number[]; text: string }>;
  n: number;
  base: Omit<GenParams, 'promptIds' | 'externalTokens' | 'kvTransferTokens' | 'kvCostScale'>;
  kvParams: unknown;
  cutAfter: number;
}

export function prepareRequest(kind: 'chat' | 'completion', req: IncomingMessage, raw: unknown, ctx: RequestContext): Prepared {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    throw validationError(`[{'type': 'model_attributes_type', 'loc': ('body',), 'msg': 'Input should be a valid dictionary or object to extract fields from', 'input': ${pyRepr(raw)}}]`);
  const parsed = kind === 'chat' ? chatRequestSchema.safeParse(raw) : completionRequestSchema.safeParse(raw);
  if (!parsed.success) throw validationError(formatIssues(parsed.error.issues, raw));
  const r = parsed.data as Record<string, unknown> & ChatRequest & CompletionRequest;
  /** A VLLMValidationError of `parameter` (a plain 400 before vLLM 0.14). */
  const invalid = (message: string, parameter: string, value: unknown): HttpError =>
    ctx.validationParams
      ? new HttpError(400, errorBody(`${message} (parameter=${parameter}, value=${String(value)})`, 400, 'BadRequestError', parameter))
      : badRequest(message);
  const valueError = (m: string): HttpError =>
    validationError(`[{'type': 'value_error', 'loc': ('body',), 'msg': 'Value error, ${m}', 'input': ${pyRepr(raw)}}]`);
  if (r.stream_options != null && !r.stream) throw valueError('Stream options can only be defined when `stream=True`.');
  if (r.model != null && r.model !== '' && !ctx.servedModelNames.includes(r.model))
    throw new HttpError(404, errorBody(`The model \`${r.model}\` does not exist.`, 404, 'NotFoundError', 'model'));

  // Prompts.
  let prompts: Array<{ ids: number[]; text: string }>;
  if (kind === 'chat') {
    const ids = tokenizeChat(r.messages as never, r.add_generation_prompt !== false);
    prompts = [{ ids, text: '' }];
  } else {
    const p = r.prompt;
    if (p == null || (Array.isArray(p) && p.length === 0)) throw badRequest('Either prompt or prompt_embeds must be provided and non-empty.');
    if (typeof p === 'string') prompts = [{ ids: tokenize(p), text: p }];
    else if (typeof p[0] === 'string') prompts = (p as string[]).map((t) => ({ ids: tokenize(t), text: t }));
    else if (typeof p[0] === 'number') prompts = [{ ids: p as number[], text: detokenize(p as number[]) }];
    else prompts = (p as number[][]).map((ids) => ({ ids, text: detokenize(ids) }));
  }
  const n = r.n ?? 1;
  if (n < 1) throw invalid(`n must be at least 1, got ${n}.`, 'n', n);
  const requested = kind === 'chat' ? (r.max_completion_tokens ?? r.max_tokens ?? null) : (r.max_tokens ?? 16);
  if (requested !== null && requested < 1) throw invalid(`max_tokens must be at least 1, got ${requested}.`, 'max_tokens', requested);
  if (r.temperature != null && r.temperature < 0) throw invalid(`temperature must be non-negative, got ${r.temperature}.`, 'temperature', r.temperature);
  let maxTokens = 0;
  for (const pr of prompts) {
    if (pr.ids.length === 0) throw badRequest('The decoder prompt cannot be empty');
    for (const id of pr.ids) if (id < 0 || id >= VOCAB_SIZE) throw badRequest(`Token id ${id} is out of vocabulary`);
    const L = pr.ids.length;
    if (L >= ctx.maxModelLen || (requested === null && L >= ctx.maxModelLen))
      throw invalid(
        `This model's maximum context length is ${ctx.maxModelLen} tokens. However, your request has ${L} input tokens. Please reduce the length of the input messages.`,
        'input_tokens',
        L,
      );
    if (requested !== null && L + requested > ctx.maxModelLen)
      throw invalid(
        `'max_tokens' or 'max_completion_tokens' is too large: ${requested}. This model's maximum context length is ${ctx.maxModelLen} tokens and your request has ${L} input tokens (${requested} > ${ctx.maxModelLen} - ${L}).`,
        'max_tokens',
        requested,
      );
    maxTokens = requested ?? ctx.maxModelLen - L;
  }
  const minTokens = r.min_tokens ?? 0;
  if (minTokens < 0) throw invalid(`min_tokens must be greater than or equal to 0, got ${minTokens}.`, 'min_tokens', minTokens);
  if (minTokens > maxTokens) throw invalid(`min_tokens must be less than or equal to max_tokens=${maxTokens}, got ${minTokens}.`, 'min_tokens', minTokens);
  const stop = r.stop == null ? [] : typeof r.stop === 'string' ? [r.stop] : r.stop;
  const headerId = req.headers['x-request-id'];
  const baseId = (typeof headerId === 'string' && headerId) || r.request_id || randomUUID().replace(/-/g, '');
  return {
    kind,
    id: `${kind === 'chat' ? 'chatcmpl' : 'cmpl'}-${baseId}`,
    created: Math.floor(Date.now() / 1000),
    model: r.model || ctx.servedModelNames[0]!,
    stream: r.stream === true,
    ...includeUsage(r.stream_options, ctx.forceIncludeUsage),
    echo: kind === 'completion' && r.echo === true,
    prompts,
    n,
    base: {
      maxTokens,
      minTokens,
      ignoreEos: r.ignore_eos === true,
      stop,
      stopTokenIds: r.stop_token_ids ?? [],
      includeStopStrInOutput: r.include_stop_str_in_output === true,
      seed: r.seed ?? null,
      temperature: r.temperature ?? null,
      stallMs: ctx.stallMs,
      slowdown: 1,
    },
    kvParams: r.kv_transfer_params,
    cutAfter: ctx.cutAfter,
  };
}

/** vLLM's should_include_usage: the final usage chunk, and usage on every chunk (continuous_usage_stats). */
export function includeUsage(
  so: { include_usage?: boolean | null; continuous_usage_stats?: boolean | null } | null | undefined,
  force: boolean,
): { includeUsage: boolean; continuousUsage: boolean } {
  if (so) {
    const include = so.include_usage === true || force;
    return { includeUsage: include, continuousUsage: include && so.continuous_usage_stats === true };
  }
  return { includeUsage: force, continuousUsage: false };
}
