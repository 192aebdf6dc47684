/** Start a proxy in-process against given upstreams, with a captured log; stop everything afterwards. */
import { request as httpRequest } from 'node:http';
import { startProxy, type ProxyHandle, type ProxyMode } from '../../src/proxy/server.js';
import { defaultConfig, type ProxyConfig } from '../../src/config/schema.js';
import { startFakeEngine, type FakeEngine, type FakeEngineOptions } from './fake-engine.js';

export interface Rig {
  proxy: ProxyHandle;
  producers: FakeEngine[];
  consumers: FakeEngine[];
  /** The engines of a single-stage rig. */
  engines: FakeEngine[];
  lines: string[];
  close(): Promise<void>;
}

export type RigOptions = Partial<Omit<ProxyConfig, 'timeouts'>> & {
  timeouts?: Partial<ProxyConfig['timeouts']>;
  mode?: ProxyMode;
  connector?: string | null;
  engineApiKey?: string;
  producer?: FakeEngineOptions | FakeEngineOptions[];
  consumer?: FakeEngineOptions | FakeEngineOptions[];
  /** Single-stage: the engines (default one). */
  engine?: FakeEngineOptions | FakeEngineOptions[];
};

export async function rig(o: RigOptions = {}): Promise<Rig> {
  const list = (x: FakeEngineOptions | FakeEngineOptions[] | undefined): FakeEngineOptions[] =>
    x === undefined ? [{}] : Array.isArray(x) ? x : [x];
  const single = o.mode === 'single-stage';
  const producers = single ? [] : await Promise.all(list(o.producer).map((x) => startFakeEngine(x)));
  const consumers = single ? [] : await Promise.all(list(o.consumer).map((x) => startFakeEngine(x)));
  const engines = single ? await Promise.all(list(o.engine).map((x) => startFakeEngine(x))) : [];
  const lines: string[] = [];
  const base = defaultConfig().proxy;
  const { producer: _p, consumer: _c, engine: _e, timeouts, mode: _m, connector, ...rest } = o;
  const common = { ...base, host: '127.0.0.1', port: 0, rateLimit: 0, log: (l: string) => lines.push(l), ...rest, timeouts: { ...base.timeouts, ...timeouts } };
  const proxy = await startProxy(
    single
      ? { ...common, mode: 'single-stage', engines: engines.map((e, i) => ({ name: `engine-${i}`, url: e.url })), connector: null }
      : {
          ...common,
          connector: connector === undefined ? 'SharedStorageConnector' : connector,
          producers: producers.map((e, i) => ({ name: `producer-${i}`, url: e.url })),
          consumers: consumers.map((e, i) => ({ name: `consumer-${i}`, url: e.url })),
        },
  );
  return {
    proxy,
    producers,
    consumers,
    engines,
    lines,
    async close() {
      await proxy.close();
      await Promise.all([...producers, ...consumers, ...engines].map((e) => e.close()));
    },
  };
}

export const chat = (extra: Record<string, unknown> = {}): Record<string, unknown> => ({
  model: 'm',
  messages: [{ role: 'user', content: 'hello' }],
  max_tokens: 4,
  ...extra,
});

export async function post(
  url: string,
  body: unknown,
  headers: Record<string, string> = {},
  signal?: AbortSignal,
): Promise<{ status: number; headers: Headers; text: string; json: any }> {
  const r = await fetch(url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', ...headers },
    body: typeof body === 'string' ? body : JSON.stringify(body),
    signal,
  });
  const text = await r.text();
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch {
    json = undefined;
  }
  return { status: r.status, headers: r.headers, text, json };
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/** Poll until `pred()` holds (robust on a loaded machine, unlike fixed sleeps). */
export async function until(pred: () => boolean, timeoutMs = 5000, what = 'condition'): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(5);
  }
}

/** vLLM's 400 for a body that is not application/json (its validation handler's envelope, type "Bad Request"). */
export const MEDIA_TYPE_400 = JSON.stringify({
  error: { message: `["Unsupported Media Type: Only 'application/json' is allowed"]`, type: 'Bad Request', param: null, code: 400 },
});

/** POST with exactly the given headers (fetch would add a content type of its own). */
export function rawPost(url: string, path: string, body: string, headers: Record<string, string>): Promise<{ status: number; text: string }> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: u.hostname, port: u.port, path, method: 'POST', headers: { 'content-length': Buffer.byteLength(body), ...headers } }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (text += d));
      res.on('end', () => resolve({ status: res.statusCode!, text }));
    });
    req.on('error', reject);
    req.end(body);
  });
}
