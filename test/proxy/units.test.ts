import { test, describe } from 'node:test';
import assert from 'node:assert/strict';
import { TokenBucket } from '../../src/proxy/token-bucket.js';
import { Admission, AdmissionRejected } from '../../src/proxy/admission.js';
import { Balancer } from '../../src/proxy/balancer.js';
import { downstreamResponseHeaders, stripHopByHop, upstreamRequestHeaders } from '../../src/proxy/headers.js';
import {
  BadRequestBody,
  decodeBody,
  extractKvTransferParams,
  parseClientBody,
  prefillBody,
  usesKvTransferParams,
} from '../../src/proxy/stage-bodies.js';
import { parseEngineUrl, type EngineState } from '../../src/proxy/engine.js';
import { proxyOptionsFromConfig, engineBaseUrl } from '../../src/proxy/options.js';
import { formatAccessLine } from '../../src/proxy/access-log.js';
import { openAiErrorBody, sseErrorEvent } from '../../src/proxy/openai-error.js';
import { configSchema, defaultConfig } from '../../src/config/schema.js';

describe('TokenBucket', () => {
  test('starts full (burst), then admits at the rate over time', () => {
    let now = 0;
    const b = new TokenBucket({ rate: 10, burst: 3, now: () => now });
    assert.equal(b.tryTake(), 0);
    assert.equal(b.tryTake(), 0);
    assert.equal(b.tryTake(), 0);
    const wait = b.tryTake();
    assert.ok(wait > 0 && wait <= 100, `wait ${wait}`);
    // over 10 simulated seconds exactly 100 more tokens are granted
    let granted = 0;
    for (let t = 1; t <= 10_000; t++) {
      now = t;
      while (b.tryTake() === 0) granted++;
    }
    assert.equal(granted, 100);
  });

  test('never stores more than burst', () => {
    let now = 0;
    const b = new TokenBucket({ rate: 100, burst: 5, now: () => now });
    now = 60_000;
    let n = 0;
    while (b.tryTake() === 0) n++;
    assert.equal(n, 5);
  });

  test('reserve queues waiters FIFO in the future and respects maxWait; refund returns a token', () => {
    const now = 0;
    const b = new TokenBucket({ rate: 4, burst: 1, now: () => now });
    assert.equal(b.reserve(), 0);
    assert.equal(b.reserve(), 250);
    assert.equal(b.reserve(), 500);
    assert.equal(b.reserve(600), null); // would be 750 ms
    b.refund();
    assert.equal(b.reserve(600), 500);
  });

  test('burst defaults to the rate (at least 1) and a zero rate is refused', () => {
    assert.equal(new TokenBucket({ rate: 40 }).burst, 40);
    assert.equal(new TokenBucket({ rate: 0.5 }).burst, 1);
    assert.throws(() => new TokenBucket({ rate: 0 }), RangeError);
  });
});

describe('Admission', () => {
  test('bounds concurrency, queues FIFO, refuses beyond the queue', async () => {
    const a = new Admission({ maxConcurrent: 2, queueSize: 2, queueMs: 10_000 });
    assert.ok(a.tryAcquire());
    assert.ok(a.tryAcquire());
    assert.equal(a.tryAcquire(), false);
    const order: number[] = [];
    const p1 = a.acquire().then(() => order.push(1));
    const p2 = a.acquire().then(() => order.push(2));
    await assert.rejects(a.acquire(), (e: unknown) => e instanceof AdmissionRejected && e.reason === 'queue_full');
    assert.equal(a.queued, 2);
    a.release();
    await p1;
    assert.equal(a.inFlight, 2);
    a.release();
    await p2;
    assert.deepEqual(order, [1, 2]);
    a.release();
    a.release();
    assert.equal(a.inFlight, 0);
    assert.equal(a.queued, 0);
  });

  test('queue wait times out, and an aborted waiter leaves the queue', async () => {
    const a = new Admission({ maxConcurrent: 1, queueSize: 5, queueMs: 30 });
    assert.ok(a.tryAcquire());
    await assert.rejects(a.acquire(), (e: unknown) => (e as AdmissionRejected).reason === 'queue_timeout');
    const ac = new AbortController();
    const p = a.acquire(ac.signal);
    assert.equal(a.queued, 1);
    ac.abort();
    await assert.rejects(p, (e: unknown) => (e as AdmissionRejected).reason === 'aborted');
    assert.equal(a.queued, 0);
    a.release();
    assert.equal(a.inFlight, 0);
  });

  test('a newcomer does not jump the queue', async () => {
    const a = new Admission({ maxConcurrent: 1, queueSize: 5, queueMs: 10_000 });
    assert.ok(a.tryAcquire());
    const p = a.acquire();
    a.release(); // slot handed to the waiter
    assert.equal(a.tryAcquire(), false);
    await p;
    a.release();
    assert.ok(a.tryAcquire());
    a.release();
  });

  test('close() refuses waiters', async () => {
    const a = new Admission({ maxConcurrent: 1, queueSize: 5, queueMs: 10_000 });
    a.tryAcquire();
    const p = a.acquire();
    a.close();
    await assert.rejects(p, (e: unknown) => (e as AdmissionRejected).reason === 'closed');
  });
});

describe('Balancer', () => {
  const eng = (name: string, inFlight = 0, healthy = true): EngineState =>
    ({ name, healthy, inFlight }) as unknown as EngineState;

  test('round-robin rotates over healthy engines', () => {
    const es = [eng('a'), eng('b', 0, false), eng('c')];
    const b = new Balancer('round-robin');
    assert.deepEqual([1, 2, 3, 4].map(() => b.pick(es)!.name), ['a', 'c', 'a', 'c']);
  });

  test('least-in-flight picks the idlest and rotates ties', () => {
    const es = [eng('a', 3), eng('b', 1), eng('c', 1)];
    const b = new Balancer('least-in-flight');
    const first = b.pick(es)!.name;
    assert.ok(first === 'b' || first === 'c');
    es[0]!.inFlight = 0;
    assert.equal(b.pick(es)!.name, 'a');
    const ties = [eng('x'), eng('y')];
    const bt = new Balancer('least-in-flight');
    assert.notEqual(bt.pick(ties)!.name, bt.pick(ties)!.name);
  });

  test('exclude and no healthy engine', () => {
    const es = [eng('a'), eng('b')];
    const b = new Balancer('round-robin');
    assert.equal(b.pick(es, es[0])!.name, 'b');
    assert.equal(b.pick([eng('a', 0, false)]), undefined);
    assert.equal(b.pick([es[0]!], es[0]), undefined);
  });
});

describe('headers', () => {
  test('hop-by-hop and Connection-listed headers are stripped', () => {
    const h = stripHopByHop({
      connection: 'keep-alive, x-secret',
      'keep-alive': 'timeout=5',
      'transfer-encoding': 'chunked',
      upgrade: 'h2c',
      te: 'trailers',
      'proxy-authorization': 'x',
      'x-secret': '1',
      'content-type': 'application/json',
    });
    assert.deepEqual(h, { 'content-type': 'application/json' });
  });

  test('upstream request headers: request id, engine key replaces client auth, none when neither', () => {
    const client = { host: 'proxy:8000', authorization: 'Bearer client', 'content-length': '99', connection: 'close', 'x-custom': 'y' };
    const a = upstreamRequestHeaders(client, { requestId: 'rid', contentLength: 10 });
    assert.deepEqual(a, { authorization: 'Bearer client', 'x-custom': 'y', 'x-request-id': 'rid', 'content-length': '10' });
    const b = upstreamRequestHeaders(client, { requestId: 'rid', engineApiKey: 'ek' });
    assert.equal(b.authorization, 'Bearer ek');
    const c = upstreamRequestHeaders({ host: 'x' }, { requestId: 'rid' });
    assert.equal('authorization' in c, false);
  });

  test('downstream headers drop hop-by-hop and add extras', () => {
    const h = downstreamResponseHeaders(
      { 'content-type': 'text/event-stream', 'transfer-encoding': 'chunked', connection: 'keep-alive', 'x-engine': 'a' },
      { 'x-request-id': 'r' },
    );
    assert.deepEqual(h, { 'content-type': 'text/event-stream', 'x-engine': 'a', 'x-request-id': 'r' });
  });
});

describe('stage bodies', () => {
  test('validation names the problem', () => {
    const bad = (s: string, route: 'chat' | 'completions', re: RegExp): void =>
      assert.throws(() => parseClientBody(Buffer.from(s), route), (e: unknown) => e instanceof BadRequestBody && re.test(e.message));
    bad('', 'chat', /empty/);
    bad('{nope', 'chat', /not valid JSON/);
    bad('[1]', 'chat', /JSON object.*array/);
    bad('"x"', 'completions', /JSON object.*string/);
    bad('{"model":"m"}', 'completions', /"prompt" is required/);
    bad('{"model":"m"}', 'chat', /"messages" is required/);
    bad('{"messages":"hi"}', 'chat', /must be an array/);
    assert.deepEqual(parseClientBody(Buffer.from('{"prompt":"a"}'), 'completions'), { prompt: 'a' });
  });

  test('prefill body: max_tokens 1, max_completion_tokens only when sent, stream false, no stream_options/min_tokens', () => {
    const client = {
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      max_tokens: 100,
      max_completion_tokens: 100,
      stream: true,
      stream_options: { include_usage: true },
      min_tokens: 5,
      min_completion_tokens: 5,
      temperature: 0,
    };
    const p = JSON.parse(prefillBody(client, 'SharedStorageConnector'));
    assert.deepEqual(p, { model: 'm', messages: client.messages, max_tokens: 1, max_completion_tokens: 1, stream: false, temperature: 0 });
    const q = JSON.parse(prefillBody({ prompt: 'x' }, 'ExampleConnector'));
    assert.deepEqual(q, { prompt: 'x', max_tokens: 1, stream: false });
    assert.equal('kv_transfer_params' in q, false);
    // Every other field goes through as parsed, even one named __proto__ (decode gets the raw bytes with it).
    const odd = parseClientBody(Buffer.from('{"prompt":"x","__proto__":{"a":1},"constructor":2}'), 'completions');
    assert.equal(prefillBody(odd, 'SharedStorageConnector'), '{"prompt":"x","__proto__":{"a":1},"constructor":2,"max_tokens":1,"stream":false}');
  });

  test('Nixl: prefill asks for remote decode; decode gets the returned params', () => {
    assert.ok(usesKvTransferParams('NixlConnector'));
    assert.ok(!usesKvTransferParams('SharedStorageConnector'));
    const p = JSON.parse(prefillBody({ prompt: 'x' }, 'NixlConnector'));
    assert.deepEqual(p.kv_transfer_params, {
      do_remote_decode: true,
      do_remote_prefill: false,
      remote_engine_id: null,
      remote_block_ids: null,
      remote_host: null,
      remote_port: null,
    });
    const params = extractKvTransferParams(JSON.stringify({ id: 'x', kv_transfer_params: { remote_engine_id: 'e', do_remote_prefill: true } }));
    assert.deepEqual(params, { remote_engine_id: 'e', do_remote_prefill: true });
    assert.equal(extractKvTransferParams('{"id":"x"}'), undefined);
    assert.equal(extractKvTransferParams('{"kv_transfer_params":null}'), undefined);
    assert.equal(extractKvTransferParams('garbage'), undefined);
    const raw = Buffer.from('{"prompt":"x","stream":true}');
    const d = JSON.parse(String(decodeBody(raw, { prompt: 'x', stream: true }, params)));
    assert.deepEqual(d, { prompt: 'x', stream: true, kv_transfer_params: params });
  });

  test('decode body keeps the client bytes when nothing is added', () => {
    const raw = Buffer.from('{ "prompt" : "x",\n "max_tokens": 7 }');
    assert.equal(decodeBody(raw, { prompt: 'x', max_tokens: 7 }, undefined), raw);
  });
});

describe('engine URLs and options', () => {
  test('base and full endpoint URLs', () => {
    assert.deepEqual(parseEngineUrl('http://localhost:8100/v1/completions'), { origin: 'http://localhost:8100', prefix: '', url: 'http://localhost:8100' });
    assert.equal(parseEngineUrl('http://h:8200/').url, 'http://h:8200');
    assert.equal(parseEngineUrl('http://h:8200/engine/v1/chat/completions').prefix, '/engine');
    assert.throws(() => parseEngineUrl('localhost:8100'), /unsupported protocol|not a URL/);
    assert.throws(() => parseEngineUrl('nope'), /not a URL/);
  });

  test('proxyOptionsFromConfig maps engines (0.0.0.0 → 127.0.0.1) and proxy fields', () => {
    const config = configSchema.parse({
      engine: { apiKey: 'ek' },
      producers: [{ gpus: [0], port: 8100 }, { gpus: [2], host: '10.0.0.5', port: 8101 }],
      consumers: [{ gpus: [1], port: 8200 }],
      proxy: { port: 9000, rateLimit: 5 },
    });
    const o = proxyOptionsFromConfig(config, 'NixlConnector');
    assert.ok(o.mode === 'two-stage');
    assert.deepEqual(o.producers, [
      { name: 'producer-0', url: 'http://127.0.0.1:8100' },
      { name: 'producer-1', url: 'http://10.0.0.5:8101' },
    ]);
    assert.deepEqual(o.consumers, [{ name: 'consumer-0', url: 'http://127.0.0.1:8200' }]);
    assert.equal(o.port, 9000);
    assert.equal(o.rateLimit, 5);
    assert.equal(o.engineApiKey, 'ek');
    assert.equal(o.connector, 'NixlConnector');
    assert.equal(proxyOptionsFromConfig(defaultConfig(), 'X').engineApiKey, undefined);
    assert.equal(engineBaseUrl({ host: '::', port: 1 }), 'http://[::1]:1');
  });

  test('proxyOptionsFromConfig: an aggregated config gives a single-stage proxy over its engines', () => {
    const config = configSchema.parse({
      topology: 'aggregated',
      engines: [{ gpus: [0], port: 8100 }, { gpus: [1], port: 8101 }],
    });
    const o = proxyOptionsFromConfig(config, 'SharedStorageConnector');
    assert.ok(o.mode === 'single-stage');
    assert.equal(o.connector, null);
    assert.deepEqual(o.engines.map((u) => u.name), ['engine-0', 'engine-1']);
    assert.deepEqual(o.engines.map((u) => u.url), ['http://127.0.0.1:8100', 'http://127.0.0.1:8101']);
  });
});

describe('formats', () => {
  test('access log lines (text and JSON) carry id, route, status, stage times and instances', () => {
    const r = { id: 'rid', method: 'POST', route: '/v1/completions', status: 200, queueMs: 0, prefillMs: 12.34, decodeTtfbMs: 5.6, totalMs: 40, producer: 'producer-0', consumer: 'consumer-1' };
    const t = formatAccessLine(r, 'text');
    for (const s of ['rid', '/v1/completions', ' 200 ', 'prefill=12.3ms', 'decode_ttfb=5.6ms', 'total=40.0ms', 'producer=producer-0', 'consumer=consumer-1'])
      assert.ok(t.includes(s), `${s} in ${t}`);
    const j = JSON.parse(formatAccessLine(r, 'json'));
    assert.equal(j.id, 'rid');
    assert.equal(j.prefill_ms, 12.34);
    assert.equal(j.decode_ttfb_ms, 5.6);
    assert.equal(j.consumer, 'consumer-1');
  });

  test('JSON access lines are valid JSON whatever the strings hold (hand-built, so escaping is checked here)', () => {
    const base = { method: 'POST', route: '/v1/x', status: 499, queueMs: null, prefillMs: Number.NaN, decodeTtfbMs: 1 / 3, totalMs: 2, producer: null, consumer: 'c"1' };
    for (const id of ['plain', 'q"uote', 'back\\slash', 'tab\there', 'é-ünïcode', '\u2028line', '']) {
      const r = { ...base, id, route: `/v1/${id}`, note: `n${id}` };
      const j = JSON.parse(formatAccessLine(r, 'json'));
      assert.deepEqual(
        { ...j, time: undefined },
        { time: undefined, id, method: 'POST', route: `/v1/${id}`, status: 499, queue_ms: null, prefill_ms: null, decode_ttfb_ms: 0.333, total_ms: 2, producer: null, consumer: 'c"1', note: `n${id}` },
      );
      assert.ok(!Number.isNaN(Date.parse(j.time)));
    }
    // No note, no "note" key.
    assert.equal('note' in JSON.parse(formatAccessLine({ ...base, id: 'x' }, 'json')), false);
  });

  test('OpenAI error shape and the SSE error event', () => {
    assert.deepEqual(JSON.parse(openAiErrorBody(503, 'busy')), { error: { message: 'busy', type: 'ServiceUnavailableError', param: null, code: 503 } });
    const ev = sseErrorEvent(502, 'boom');
    assert.match(ev, /^data: \{"error":\{"message":"boom"/);
    assert.ok(ev.endsWith('data: [DONE]\n\n'));
  });
});

test('access log to stderr: lines are batched (timer or size), nothing is lost at exit', async () => {
  const { spawnSync } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const mod = fileURLToPath(new URL('../../src/proxy/access-log.ts', import.meta.url));
  // A child writes 3 lines, checks that none reached stderr synchronously, waits past the delay, writes
  // 2,000 more lines (over the size threshold) and 1 last line, then exits without waiting.
  const script = `
    import { batchedStderrSink } from ${JSON.stringify(mod)};
    import { fstatSync } from 'node:fs';
    const sink = batchedStderrSink(30, 16 * 1024);
    sink('a1'); sink('a2'); sink('a3');
    process.stdout.write('queued\\n');
    await new Promise((r) => setTimeout(r, 100));
    for (let i = 0; i < 2000; i++) sink('b' + i);
    sink('ünï ☃ \u{1F600}');
    sink('x'.repeat(20000));
    sink('last');
  `;
  const r = spawnSync(process.execPath, ['--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  const lines = r.stderr.split('\n').filter(Boolean);
  assert.deepEqual(lines.slice(0, 3), ['a1', 'a2', 'a3']);
  assert.equal(lines.length, 3 + 2000 + 3, 'every line written, the last ones at exit');
  assert.deepEqual(lines.slice(3, 2003), Array.from({ length: 2000 }, (_, i) => 'b' + i));
  // Multi-byte characters survive the byte buffer; a line larger than a batch keeps its place.
  assert.deepEqual(lines.slice(-3), ['ünï ☃ \u{1F600}', 'x'.repeat(20000), 'last']);
});
