/**
 * The proxy's own errors use vLLM's / OpenAI's error shape:
 * `{"error":{"message":"...","type":"BadRequestError","param":null,"code":400}}`.
 */
const TYPES: Record<number, string> = {
  400: 'BadRequestError',
  401: 'AuthenticationError',
  403: 'PermissionDeniedError',
  404: 'NotFoundError',
  405: 'MethodNotAllowedError',
  413: 'RequestTooLargeError',
  429: 'RateLimitError',
  500: 'InternalServerError',
  502: 'BadGatewayError',
  503: 'ServiceUnavailableError',
  504: 'GatewayTimeoutError',
};

export function errorType(status: number): string {
  return TYPES[status] ?? (status >= 500 ? 'InternalServerError' : 'BadRequestError');
}

export function openAiErrorBody(status: number, message: string, param: string | null = null, type = errorType(status)): string {
  return JSON.stringify({ error: { message, type, param, code: status } });
}

/** The SSE event that ends a stream that failed midway (then `data: [DONE]`, as vLLM does). */
export function sseErrorEvent(status: number, message: string): string {
  return `data: ${openAiErrorBody(status, message)}\n\ndata: [DONE]\n\n`;
}
