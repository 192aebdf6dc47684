/** Finding what to benchmark: the target base URL and the model it serves. */
import { request } from 'undici';
import { RuntimeError, UsageError } from '../util/errors.js';
import { readStackState } from '../stack/state.js';

/** Normalise a base URL (no trailing slash, no /v1 suffix). */
export function normaliseTarget(url: string): string {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError(`--target ${url} is not a URL`, { hint: 'e.g. --target http://127.0.0.1:8000' });
  }
  if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new UsageError(`--target must be http(s), got ${u.protocol}`);
  let path = u.pathname.replace(/\/+$/, '');
  if (path.endsWith('/v1')) path = path.slice(0, -3);
  return `${u.origin}${path}`;
}

/** --target, else the running stack's proxy URL. */
export async function resolveTarget(target: string | undefined, stateDir: string): Promise<string> {
  if (target) return normaliseTarget(target);
  const state = await readStackState(stateDir);
  if (state?.proxy?.url) return normaliseTarget(state.proxy.url.replace('0.0.0.0', '127.0.0.1'));
  throw new RuntimeError('no running stack to benchmark', {
    hint: 'start one with `pd up` (or `pd up --simulate`), or pass --target http://HOST:PORT for any OpenAI-compatible server',
  });
}

export interface ServedModel {
  /** Name to send in requests (`id`). */
  name: string;
  /** Model path/id (`root`, else `id`), recorded as model_id like vLLM. */
  root: string;
}

/** The first model of GET /v1/models (as `vllm bench serve` does when --model is not given). */
export async function firstServedModel(target: string, apiKey?: string): Promise<ServedModel> {
  const url = `${target}/v1/models`;
  let res;
  try {
    res = await request(url, {
      headers: apiKey ? { authorization: `Bearer ${apiKey}` } : {},
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
  } catch (e) {
    throw new RuntimeError(`cannot reach ${url}: ${(e as Error).message}`, {
      hint: 'is the stack up (`pd status`)? pass --target to benchmark another server',
    });
  }
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new RuntimeError(`${url} answered HTTP ${res.statusCode}`, { details: [text.slice(0, 300)], hint: 'pass --model NAME to skip the lookup' });
  let data: { data?: Array<{ id?: string; root?: string | null }> };
  try {
    data = JSON.parse(text) as typeof data;
  } catch {
    throw new RuntimeError(`${url} did not return JSON`, { hint: 'pass --model NAME to skip the lookup' });
  }
  const first = data.data?.[0];
  if (!first?.id) throw new RuntimeError(`no models listed at ${url}`, { hint: 'pass --model NAME' });
  return { name: first.id, root: first.root ?? first.id };
}

/**
 * What serves `target`: 'simulated' or 'real' when it is the running stack's proxy or one of its engines (the
 * state file says whether `pd up --simulate` started it), else 'unknown'.
 */
export async function servedBy(target: string, stateDir: string | undefined): Promise<'simulated' | 'real' | 'unknown'> {
  if (!stateDir) return 'unknown';
  const state = await readStackState(stateDir).catch(() => null);
  if (!state) return 'unknown';
  const port = new URL(target).port;
  const ports = [state.proxy?.port, ...state.engines.map((e) => e.port)].filter((p) => p !== undefined).map(String);
  return ports.includes(port) ? (state.simulate ? 'simulated' : 'real') : 'unknown';
}
