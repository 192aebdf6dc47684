/**
 * What the proxy refuses itself on the completions and chat routes, so that no engine (above all no prefill) is
 * spent on a request vLLM would refuse:
 * - a Content-Type other than application/json, with vLLM's own 400 (validate_json_request in
 *   vllm/entrypoints/openai/utils.py raises RequestValidationError, answered by the server's validation handler
 *   in vllm/entrypoints/openai/api_server.py with type "Bad Request");
 * - the fields the proxy rewrites or drops for stage 1 (max_tokens, max_completion_tokens, min_tokens, stream,
 *   stream_options) when vLLM would refuse them at stage 2, in vLLM's error shape (type "BadRequestError" and
 *   `param` as its create_error_response fills them, vllm/entrypoints/openai/engine/serving.py). The rules follow
 *   vLLM's request models and SamplingParams._verify_args (vllm/sampling_params.py).
 * Every other field is left for vLLM to validate: stage 1 sends it as the client did, so the producer refuses
 * what the consumer would.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { ProxyFailure } from './failures.js';
import { BadRequestBody, type ClientBody, type Route } from './stage-bodies.js';

/** The media type before any ";" must be exactly application/json (case-insensitive), as vLLM compares it. */
export function isJsonContentType(headers: IncomingHttpHeaders): boolean {
  const ct = headers['content-type'];
  if (ct === 'application/json') return true;
  if (ct === undefined) return false;
  const semi = ct.indexOf(';');
  return (semi < 0 ? ct : ct.slice(0, semi)).toLowerCase() === 'application/json';
}

/** vLLM's answer to a generation request that is not application/json (its message is str(exc.errors())). */
export function unsupportedMediaType(): ProxyFailure {
  return new ProxyFailure('bad_request', `["Unsupported Media Type: Only 'application/json' is allowed"]`, {
    type: 'Bad Request',
  });
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return `${JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v)} (a string)`;
  if (typeof v === 'boolean') return `${v} (a boolean)`;
  if (typeof v === 'number') return String(v);
  return typeof v;
}

/** A token count: absent, null, or a whole number >= `min` (JSON 5.0 is 5, as pydantic takes it). */
function tokenCount(body: ClientBody, field: string, min: number): number | null {
  const v = body[field];
  if (v === undefined || v === null) return null;
  if (typeof v !== 'number' || !Number.isInteger(v))
    throw new BadRequestBody(`${field} must be a whole number, got ${describe(v)}.`, field);
  if (v < min)
    throw new BadRequestBody(
      min === 1 ? `${field} must be at least 1, got ${v}.` : `${field} must be greater than or equal to ${min}, got ${v}.`,
      field,
    );
  return v;
}

/** Check the fields the proxy rewrites or drops for stage 1; throws BadRequestBody naming the field. */
export function checkRewrittenFields(body: ClientBody, route: Route): void {
  const maxTokens = tokenCount(body, 'max_tokens', 1);
  const maxCompletion = tokenCount(body, 'max_completion_tokens', 1);
  const minTokens = tokenCount(body, 'min_tokens', 0);
  const stream = body.stream;
  if (stream !== undefined && stream !== null && typeof stream !== 'boolean')
    throw new BadRequestBody(`stream must be true or false, got ${describe(stream)}.`, 'stream');
  const options = body.stream_options;
  if (options !== undefined && options !== null) {
    if (typeof options !== 'object' || Array.isArray(options))
      throw new BadRequestBody(`stream_options must be an object, got ${describe(options)}.`, 'stream_options');
    if (stream !== true) throw new BadRequestBody('Stream options can only be defined when `stream=True`.', 'stream_options');
  }
  // vLLM's chat request takes max_completion_tokens over max_tokens; a completion request defaults to 16
  // (chat_completion/protocol.py, completion/protocol.py).
  const max = route === 'chat' ? (maxCompletion ?? maxTokens) : (maxTokens ?? 16);
  if (minTokens !== null && max !== null && minTokens > max)
    throw new BadRequestBody(`min_tokens must be less than or equal to max_tokens=${max}, got ${minTokens}.`, 'min_tokens');
}
