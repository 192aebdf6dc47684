/**
 * The HTTP routes of vLLM's OpenAI server (vllm/entrypoints/openai/api_server.py): health, models, version,
 * metrics, tokenize, and the two generation routes handed to Generation.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { SimContext } from './context.js';
import type { Generation } from './generate.js';
import { errorBody } from './protocol.js';
import { validationError } from './request.js';
import { parseJson, readBody, type Responder } from './respond.js';
import { tokenize, tokenizeChat, detokenize } from './tokenizer.js';

export class HttpApi {
  constructor(
    private readonly ctx: SimContext,
    private readonly r: Responder,
    private readonly generation: Generation,
  ) {}

  handle(req: IncomingMessage, res: ServerResponse): void {
    const url = req.url ?? '/';
    const q = url.indexOf('?');
    const path = q >= 0 ? url.slice(0, q) : url;
    const method = req.method ?? 'GET';
    const o = this.ctx.opts;
    const r = this.r;
    if (o.apiKeys.length > 0 && path.startsWith('/v1') && method !== 'OPTIONS') {
      const auth = req.headers.authorization ?? '';
      if (!o.apiKeys.some((k) => auth === `Bearer ${k}`)) {
        req.resume();
        return r.send(req, res, 401, { error: 'Unauthorized' });
      }
    }
    if (path === '/v1/completions' || path === '/v1/chat/completions') {
      if (method !== 'POST') return r.methodNotAllowed(req, res);
      if (!isJson(req)) return this.unsupportedMediaType(req, res);
      return void this.generation.generate(req, res, path === '/v1/chat/completions' ? 'chat' : 'completion');
    }
    switch (path) {
      case '/health':
        if (method !== 'GET' && method !== 'HEAD') return r.methodNotAllowed(req, res);
        return r.send(req, res, this.ctx.isDead() ? 503 : 200, null);
      case '/ping':
        return r.send(req, res, this.ctx.isDead() ? 503 : 200, null);
      case '/load':
        return r.send(req, res, 200, { server_load: this.ctx.inflight.size });
      case '/version':
        return r.send(req, res, 200, { version: o.knobs.vllmVersion });
      case '/v1/models':
        if (method !== 'GET' && method !== 'HEAD') return r.methodNotAllowed(req, res);
        return r.send(req, res, 200, this.models());
      case '/metrics':
        void this.ctx.metrics.text().then(
          (t) => r.send(req, res, 200, t, 'text/plain; version=0.0.4; charset=utf-8'),
          (e: Error) => r.send(req, res, 500, errorBody(e.message, 500)),
        );
        return;
      case '/tokenize':
      case '/detokenize':
        if (method !== 'POST') return r.methodNotAllowed(req, res);
        if (!isJson(req)) return this.unsupportedMediaType(req, res);
        return void this.tokenizeRoute(req, res, path === '/tokenize');
      default:
        req.resume();
        return r.send(req, res, 404, { detail: 'Not Found' });
    }
  }

  /**
   * vLLM's validate_json_request dependency (vllm/entrypoints/utils.py) on every JSON route raises
   * RequestValidationError(["Unsupported Media Type: Only 'application/json' is allowed"]), which the server's
   * validation handler answers 400 in its error envelope, type "Bad Request" (vllm/entrypoints/openai/api_server.py).
   */
  private unsupportedMediaType(req: IncomingMessage, res: ServerResponse): void {
    req.resume();
    this.r.send(req, res, 400, errorBody(`["Unsupported Media Type: Only 'application/json' is allowed"]`, 400, 'Bad Request'));
  }

  models(): unknown {
    const created = Math.floor(Date.now() / 1000);
    const o = this.ctx.opts;
    return {
      object: 'list',
      data: o.servedModelNames.map((name) => ({
        id: name,
        object: 'model',
        created,
        owned_by: 'vllm',
        root: o.model,
        parent: null,
        max_model_len: this.ctx.maxModelLen,
        permission: [
          {
            id: `modelperm-${randomUUID().replace(/-/g, '')}`,
            object: 'model_permission',
            created,
            allow_create_engine: false,
            allow_sampling: true,
            allow_logprobs: true,
            allow_search_indices: false,
            allow_view: true,
            allow_fine_tuning: false,
            organization: '*',
            group: null,
            is_blocking: false,
          },
        ],
      })),
    };
  }

  private async tokenizeRoute(req: IncomingMessage, res: ServerResponse, tok: boolean): Promise<void> {
    try {
      const body = parseJson(await readBody(req)) as Record<string, unknown>;
      if (tok) {
        let ids: number[];
        if (Array.isArray(body.messages)) ids = tokenizeChat(body.messages as never, body.add_generation_prompt !== false);
        else if (typeof body.prompt === 'string') ids = tokenize(body.prompt);
        else throw validationError("[{'type': 'missing', 'loc': ('body', 'prompt'), 'msg': 'Field required'}]");
        return this.r.send(req, res, 200, { count: ids.length, max_model_len: this.ctx.maxModelLen, tokens: ids, token_strs: null });
      }
      if (!Array.isArray(body.tokens)) throw validationError("[{'type': 'missing', 'loc': ('body', 'tokens'), 'msg': 'Field required'}]");
      return this.r.send(req, res, 200, { prompt: detokenize(body.tokens as number[]) });
    } catch (e) {
      this.r.sendError(req, res, e);
    }
  }
}

/** The media type before any ";" is exactly application/json (case-insensitive), as validate_json_request compares it. */
export function isJson(req: IncomingMessage): boolean {
  const ct = (req.headers['content-type'] ?? '').toLowerCase();
  return ct.split(';', 1)[0] === 'application/json';
}
