/**
 * OpenAI request validation and response/chunk shapes as vLLM's entrypoints/openai/protocol.py defines them
 * (field order included: JSON clients diffing against vLLM see the same documents).
 */
import * as z from 'zod';
import { pyRepr } from './kv/nixl.js';

const stop = z.union([z.string(), z.array(z.string())]).nullish();
const streamOptions = z
  .looseObject({ include_usage: z.boolean().nullish(), continuous_usage_stats: z.boolean().nullish() })
  .nullish();

const samplingFields = {
  model: z.string().nullish(),
  max_tokens: z.number().int().nullish(),
  n: z.number().int().nullish(),
  seed: z.number().int().nullish(),
  stop,
  stop_token_ids: z.array(z.number().int()).nullish(),
  stream: z.boolean().nullish(),
  stream_options: streamOptions,
  temperature: z.number().nullish(),
  top_p: z.number().nullish(),
  ignore_eos: z.boolean().nullish(),
  min_tokens: z.number().int().nullish(),
  include_stop_str_in_output: z.boolean().nullish(),
  kv_transfer_params: z.record(z.string(), z.unknown()).nullish(),
  request_id: z.string().nullish(),
  priority: z.number().int().nullish(),
};

export const completionRequestSchema = z.looseObject({
  ...samplingFields,
  prompt: z
    .union([z.string(), z.array(z.string()), z.array(z.number().int()), z.array(z.array(z.number().int()))])
    .nullish(),
  echo: z.boolean().nullish(),
  logprobs: z.number().int().nullish(),
});
export type CompletionRequest = z.infer<typeof completionRequestSchema>;

const message = z.looseObject({
  role: z.string(),
  content: z.union([z.string(), z.array(z.looseObject({ type: z.string().optional(), text: z.string().optional() }))]).nullish(),
  name: z.string().nullish(),
});

export const chatRequestSchema = z.looseObject({
  ...samplingFields,
  messages: z.array(message),
  max_completion_tokens: z.number().int().nullish(),
  add_generation_prompt: z.boolean().nullish(),
  logprobs: z.boolean().nullish(),
  echo: z.boolean().nullish(),
});
export type ChatRequest = z.infer<typeof chatRequestSchema>;

/** pydantic-style rendering of validation issues: `[{'type': 'missing', 'loc': ('body', 'messages'), 'msg': ...}]`. */
export function formatIssues(issues: readonly z.core.$ZodIssue[], body: unknown): string {
  const items = issues.map((i) => {
    const missing = i.code === 'invalid_type' && /received undefined/.test(i.message);
    const loc = ['body', ...i.path.map((p) => (typeof p === 'number' ? p : String(p)))];
    const locRepr = `(${loc.map((x) => (typeof x === 'number' ? String(x) : `'${x}'`)).join(', ')}${loc.length === 1 ? ',' : ''})`;
    let input: unknown = body;
    for (const p of i.path) input = input && typeof input === 'object' ? (input as Record<PropertyKey, unknown>)[p] : undefined;
    const typed = !missing && i.code === 'invalid_type' ? pydanticType((i as { expected?: string }).expected ?? '', input) : null;
    const type = missing ? 'missing' : typed ? typed[0] : i.code;
    const msg = missing ? 'Field required' : typed ? typed[1] : i.message;
    return `{'type': '${type}', 'loc': ${locRepr}, 'msg': '${msg.replace(/'/g, "\\'")}', 'input': ${pyRepr(missing ? body : input)}}`;
  });
  return `[${items.join(', ')}]`;
}

/** pydantic v2's error type and message for a value of the wrong type. */
function pydanticType(expected: string, input: unknown): [string, string] | null {
  const str = typeof input === 'string';
  switch (expected) {
    case 'number':
      return str ? ['float_parsing', 'Input should be a valid number, unable to parse string as a number'] : ['float_type', 'Input should be a valid number'];
    case 'int':
      return str ? ['int_parsing', 'Input should be a valid integer, unable to parse string as an integer'] : ['int_type', 'Input should be a valid integer'];
    case 'boolean':
      return str ? ['bool_parsing', 'Input should be a valid boolean, unable to interpret input'] : ['bool_type', 'Input should be a valid boolean'];
    case 'string':
      return ['string_type', 'Input should be a valid string'];
    case 'array':
      return ['list_type', 'Input should be a valid list'];
    case 'object':
      return ['dict_type', 'Input should be a valid dictionary'];
    default:
      return null;
  }
}

export interface ErrorBody {
  error: { message: string; type: string; param: string | null; code: number };
}

const ERROR_TYPES: Record<number, string> = {
  400: 'BadRequestError',
  401: 'UnauthorizedError',
  404: 'NotFoundError',
  429: 'RateLimitError',
  500: 'InternalServerError',
  503: 'ServiceUnavailableError',
};

export function errorBody(message: string, code = 400, type = ERROR_TYPES[code] ?? 'InternalServerError', param: string | null = null): ErrorBody {
  return { error: { message, type, param, code } };
}

export interface Usage {
  prompt_tokens: number;
  total_tokens: number;
  completion_tokens: number;
  prompt_tokens_details: null;
}

export function usage(prompt: number, completion: number): Usage {
  return { prompt_tokens: prompt, total_tokens: prompt + completion, completion_tokens: completion, prompt_tokens_details: null };
}

export interface ChoiceResult {
  index: number;
  text: string;
  finishReason: string;
  stopReason: string | number | null;
}

export function completionResponse(
  id: string, created: number, model: string, choices: ChoiceResult[], u: Usage, kvTransferParams: unknown,
): unknown {
  return {
    id,
    object: 'text_completion',
    created,
    model,
    choices: choices.map((c) => ({
      index: c.index,
      text: c.text,
      logprobs: null,
      finish_reason: c.finishReason,
      stop_reason: c.stopReason,
      token_ids: null,
      prompt_logprobs: null,
      prompt_token_ids: null,
    })),
    service_tier: null,
    system_fingerprint: null,
    usage: u,
    kv_transfer_params: kvTransferParams ?? null,
  };
}

export function chatResponse(
  id: string, created: number, model: string, choices: ChoiceResult[], u: Usage, kvTransferParams: unknown,
): unknown {
  return {
    id,
    object: 'chat.completion',
    created,
    model,
    choices: choices.map((c) => ({
      index: c.index,
      message: {
        role: 'assistant',
        content: c.text,
        refusal: null,
        annotations: null,
        audio: null,
        function_call: null,
        tool_calls: [],
        reasoning_content: null,
      },
      logprobs: null,
      finish_reason: c.finishReason,
      stop_reason: c.stopReason,
      token_ids: null,
    })),
    service_tier: null,
    system_fingerprint: null,
    usage: u,
    prompt_logprobs: null,
    prompt_token_ids: null,
    kv_transfer_params: kvTransferParams ?? null,
  };
}

/** Completions stream chunk (vLLM dumps it with exclude_unset=False: every field present). */
export function completionChunk(
  id: string, created: number, model: string, index: number, text: string,
  finishReason: string | null, stopReason: string | number | null, u: Usage | null,
): string {
  return JSON.stringify({
    id,
    object: 'text_completion',
    created,
    model,
    choices: [{ index, text, logprobs: null, finish_reason: finishReason, stop_reason: stopReason, prompt_token_ids: null, token_ids: null }],
    usage: u && { prompt_tokens: u.prompt_tokens, total_tokens: u.total_tokens, completion_tokens: u.completion_tokens },
  });
}

/**
 * Chat stream chunk. vLLM dumps it with exclude_unset=True, so only the fields its code passes appear: the role
 * chunk has `prompt_token_ids` (null without return_token_ids), token chunks `token_ids`, the last one `stop_reason`.
 */
export function chatChunk(
  id: string, created: number, model: string, index: number, delta: Record<string, string>,
  finishReason: string | null, stopReason: string | number | null | undefined, u: Usage | null,
): string {
  const role = delta.role !== undefined;
  const choice: Record<string, unknown> = { index, delta, logprobs: null, finish_reason: finishReason };
  if (stopReason !== undefined) choice.stop_reason = stopReason;
  if (!role) choice.token_ids = null;
  const chunk: Record<string, unknown> = { id, object: 'chat.completion.chunk', created, model, choices: [choice] };
  if (u) chunk.usage = { prompt_tokens: u.prompt_tokens, total_tokens: u.total_tokens, completion_tokens: u.completion_tokens };
  if (role) chunk.prompt_token_ids = null;
  return JSON.stringify(chunk);
}

/** The final `choices: []` usage chunk of a stream with stream_options.include_usage. */
export function usageChunk(id: string, object: string, created: number, model: string, u: Usage): string {
  return JSON.stringify({
    id,
    object,
    created,
    model,
    choices: [],
    usage: { prompt_tokens: u.prompt_tokens, total_tokens: u.total_tokens, completion_tokens: u.completion_tokens },
  });
}
