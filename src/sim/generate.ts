/**
 * A generation request from body to last byte: validation (request.ts), fault injection, the connector's work,
 * the engine, and the answer as one JSON document or as vLLM's SSE stream (`data: {chunk}\n\n` … `data: [DONE]`).
 */
import { STATUS_CODES, type IncomingMessage, type ServerResponse } from 'node:http';
import type { GenParams, Seq, FinishReason, TokenFinish } from './engine.js';
import type { Prep } from './connector.js';
import type { SimContext } from './context.js';
import {
  chatChunk, chatResponse, completionChunk, completionResponse, errorBody, usage, usageChunk, type ChoiceResult, type Usage,
} from './protocol.js';
import type { NixlParams } from './kv/nixl.js';
import { HttpError, badRequest, prepareRequest, type Prepared } from './request.js';
import { FAULT_HEADER, FaultHeaderError, parseFaultHeader, type RequestFault } from './faults.js';
import { parseJson, readBody, type Responder } from './respond.js';
import { mulberry32, type Rng } from './rng.js';
import { compareVersions } from './versions.js';

const ENGINE_DEAD = 'EngineCore encountered an issue. See stack trace (above) for the root cause.';

export class Generation {
  private requests = 0;
  private readonly rng: Rng;

  constructor(
    private readonly ctx: SimContext,
    private readonly r: Responder,
  ) {
    this.rng = mulberry32((ctx.opts.knobs.seed ^ 0x5eed) >>> 0);
  }

  /** Decide injected failures for this request (knobs + header). */
  private injectedStatus(fault: RequestFault): number | null {
    if (fault.status) return fault.status;
    // A request carrying its own X-PD-Sim-Fault is exempt from the engine-wide error rate/period.
    if (Object.keys(fault).length > 0) return null;
    const k = this.ctx.opts.knobs;
    if (k.errorEvery > 0 && this.requests % k.errorEvery === 0) return k.errorStatus;
    if (k.errorRate > 0 && this.rng() < k.errorRate) return k.errorStatus;
    return null;
  }

  /** The body vLLM itself sends for that status where it has one (401 auth, 404 model), else the envelope. */
  private injectedError(status: number, model: string): HttpError {
    if (status === 401) return new HttpError(401, { error: 'Unauthorized' });
    if (status === 404) return new HttpError(404, errorBody(`The model \`${model}-unavailable\` does not exist.`, 404, 'NotFoundError', 'model'));
    return new HttpError(status, errorBody(`Simulated failure (pd vLLM simulator fault injection): ${status} ${STATUS_CODES[status] ?? ''}`.trim(), status));
  }

  async generate(req: IncomingMessage, res: ServerResponse, kind: 'chat' | 'completion'): Promise<void> {
    const ctx = this.ctx;
    const k = ctx.opts.knobs;
    let prepared: Prepared;
    let fault: RequestFault;
    try {
      const text = await readBody(req);
      if (ctx.isDead()) throw new HttpError(500, errorBody(ENGINE_DEAD, 500, 'InternalServerError'));
      try {
        fault = parseFaultHeader(req.headers[FAULT_HEADER]);
      } catch (e) {
        if (e instanceof FaultHeaderError) throw badRequest(e.message);
        throw e;
      }
      prepared = prepareRequest(kind, req, parseJson(text), {
        servedModelNames: ctx.opts.servedModelNames,
        validationParams: compareVersions(k.vllmVersion, '0.14.0') >= 0,
        forceIncludeUsage: ctx.opts.nonDefaultArgs.enable_force_include_usage === true,
        maxModelLen: ctx.maxModelLen,
        stallMs: k.stallMs,
        cutAfter: k.cutAfter,
      });
      this.requests++;
      if (fault.crash) {
        ctx.die('x-pd-sim-fault crash');
        throw new HttpError(500, errorBody(ENGINE_DEAD, 500, 'InternalServerError'));
      }
      const injected = this.injectedStatus(fault);
      if (injected !== null) throw this.injectedError(injected, prepared.model);
      const crashN = k.crashAfterRequests;
      if (crashN > 0 && this.requests >= crashN) setImmediate(() => ctx.die(`crash-after-requests ${crashN}`));
    } catch (e) {
      return this.r.sendError(req, res, e);
    }
    if (fault.stallMs !== undefined) prepared.base.stallMs = fault.stallMs;
    if (fault.slowdown !== undefined) prepared.base.slowdown = fault.slowdown;
    if (fault.cutAfter !== undefined) prepared.cutAfter = fault.cutAfter;
    if (k.logRequests)
      ctx.log.info('logger.py:71', `Received request ${prepared.id}: params: max_tokens=${prepared.base.maxTokens}, prompt_token_ids: ${prepared.prompts[0]!.ids.length} tokens`);
    ctx.inflight.set(res, req);
    res.on('close', () => ctx.inflight.delete(res));
    try {
      await this.run(req, res, prepared);
    } catch (e) {
      if (!res.headersSent) this.r.sendError(req, res, e);
      else res.destroy();
    }
  }

  private async run(req: IncomingMessage, res: ServerResponse, p: Prepared): Promise<void> {
    const ctx = this.ctx;
    const prep: Array<{ ids: number[]; text: string; c: Prep }> = [];
    for (const pr of p.prompts) prep.push({ ...pr, c: await ctx.connector.prepare(p.id, p.kvParams) });
    if (res.destroyed) return;
    const m = ctx.metrics;
    const total = prep.length * p.n;
    const promptTokens = prep.reduce((a, x) => a + x.ids.length, 0) * p.n;
    const genCounts = new Array<number>(total).fill(0);
    const roleSent = new Array<boolean>(total).fill(false);
    const results: ChoiceResult[] = [];
    const seqs: Seq[] = [];
    let kvOut: NixlParams | null = null;
    let failed = false;
    const pending: Array<Promise<unknown>> = [];
    let done = 0;
    let closed = false;
    let streamed = 0;
    const u = (): Usage => usage(promptTokens, genCounts.reduce((a, b) => a + b, 0));
    const write = (data: string): void => {
      if (!closed) res.write(`data: ${data}\n\n`);
    };
    if (p.stream) {
      res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8', server: 'uvicorn', ...this.r.requestIdHeader(req) });
      res.flushHeaders();
      this.r.access(req, 200);
    }
    const finishAll = (): void => {
      if (failed) {
        // A request that finished with an error (vLLM's GenerationError: "Internal server error", 500).
        ctx.log.error('serving_engine.py:1', `Request ${p.id} failed with an internal error during generation`);
        const err = errorBody('Internal server error', 500, 'InternalServerError');
        if (!p.stream) return this.r.send(req, res, 500, err);
        write(JSON.stringify(err));
        write('[DONE]');
        res.end();
        return;
      }
      if (p.stream) {
        if (p.includeUsage) write(usageChunk(p.id, p.kind === 'chat' ? 'chat.completion.chunk' : 'text_completion', p.created, p.model, u()));
        write('[DONE]');
        res.end();
        return;
      }
      results.sort((a, b) => a.index - b.index);
      const body = p.kind === 'chat'
        ? chatResponse(p.id, p.created, p.model, results, u(), kvOut)
        : completionResponse(p.id, p.created, p.model, results, u(), kvOut);
      this.r.send(req, res, 200, body);
    };

    await new Promise<void>((resolve) => {
      res.on('close', () => {
        if (done < total) {
          closed = true;
          for (const s of seqs) {
            if (s && !s.finished) {
              for (const e of ctx.engines) e.abort(s);
              m.abort();
            }
          }
          ctx.log.info('async_llm.py:452', `Aborted request ${p.id}.`);
        }
        resolve();
      });
      let idx = 0;
      for (const pr of prep) {
        for (let j = 0; j < p.n; j++) {
          const i = idx++;
          let text = p.echo ? pr.text : '';
          const params: GenParams = { ...p.base, promptIds: pr.ids, admit: (local) => ctx.connector.admission(pr.c, pr.ids, local) };
          const sink = {
            onToken: (_id: number, delta: string, tokIndex: number, fin: TokenFinish | null): void => {
              genCounts[i]!++;
              if (!p.stream) {
                text += delta;
                return;
              }
              if (closed) return;
              if (p.cutAfter > 0 && streamed >= p.cutAfter) {
                closed = true;
                ctx.log.warning('sim.py:1', `Cutting the stream of ${p.id} after ${streamed} tokens (fault injection)`);
                res.destroy();
                return;
              }
              streamed++;
              const cu = p.continuousUsage ? usage(pr.ids.length, genCounts[i]!) : null;
              const reason = fin ? fin.reason : null;
              if (p.kind === 'chat') {
                if (!roleSent[i]) {
                  roleSent[i] = true;
                  write(chatChunk(p.id, p.created, p.model, i, { role: 'assistant', content: '' }, null, undefined,
                    p.continuousUsage ? usage(pr.ids.length, 0) : null));
                }
                write(chatChunk(p.id, p.created, p.model, i, { content: delta }, reason, fin ? fin.stopReason : undefined, cu));
              } else {
                const echo = p.echo && tokIndex === 0 ? pr.text : '';
                write(completionChunk(p.id, p.created, p.model, i, echo + delta, reason, fin ? fin.stopReason : null, cu));
              }
            },
            onFinish: (reason: FinishReason, stopReason: string | number | null, seq: Seq): void => {
              if (reason === 'abort') return;
              if (reason === 'error') failed = true;
              else {
                m.observeRequest(seq.times, pr.ids.length, genCounts[i]!, reason);
                // NIXL hands out its params only for a prefill capped by its length (request_finished).
                if (reason === 'length' || !pr.c.remoteDecode)
                  pending.push(ctx.connector.afterPrefill(pr.c, pr.ids, p.kind === 'chat' ? p.id : `${p.id}-${i}`).then((params) => {
                    if (params) kvOut = params;
                  }));
              }
              if (!p.stream) results.push({ index: i, text, finishReason: reason, stopReason });
              if (++done === total) {
                void Promise.all(pending).then(() => {
                  if (!closed) finishAll();
                  resolve();
                });
              }
            },
          };
          const engine = ctx.pickEngine();
          const direct = ctx.zero && !p.stream && params.stallMs === 0 && (ctx.connector.kind === 'none' || ctx.connector.kind === 'other');
          seqs[i] = direct ? engine.runNow(params, sink) : engine.submit(params, sink);
        }
      }
    });
  }
}

/** What a dead engine answers to requests in flight (vllm/v1/engine/exceptions.py EngineDeadError). */
export function engineDeadBody(): ReturnType<typeof errorBody> {
  return errorBody(ENGINE_DEAD, 500, 'InternalServerError');
}
