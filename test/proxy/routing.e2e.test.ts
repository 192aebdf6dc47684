/** Routes, stage bodies on the wire, status/header pass-through, request ids, Server-Timing, auth, bad input. */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { rig, post, type Rig } from './harness.js';
import { completionJson } from './fake-engine.js';

describe('two-stage routing', () => {
  let r: Rig;
  before(async () => {
    r = await rig();
  });
  after(() => r.close());

  test('chat stream: prefill body forced, decode body = client bytes, SSE passes through with headers', async () => {
    const raw = '{"model":"m","messages":[{"role":"user","content":"hi"}],"stream":true,"max_tokens":3,"max_completion_tokens":3,"stream_options":{"include_usage":true},"min_tokens":2}';
    const res = await post(r.proxy.url + '/v1/chat/completions', raw);
    assert.equal(res.status, 200);
    assert.match(res.headers.get('content-type')!, /^text\/event-stream/);
    assert.equal((res.text.match(/^data: \{/gm) ?? []).length, 3);
    assert.ok(res.text.endsWith('data: [DONE]\n\n'));
    const p = r.producers[0]!.calls().at(-1)!;
    const c = r.consumers[0]!.calls().at(-1)!;
    assert.equal(p.url, '/v1/chat/completions');
    assert.deepEqual(p.json, {
      model: 'm',
      messages: [{ role: 'user', content: 'hi' }],
      stream: false,
      max_tokens: 1,
      max_completion_tokens: 1,
    });
    assert.equal(c.url, '/v1/chat/completions');
    assert.equal(c.body, raw, 'decode gets the exact client bytes');
    // request id: same on both stages and back to the client
    const id = res.headers.get('x-request-id');
    assert.ok(id && id.length > 8);
    assert.equal(p.headers['x-request-id'], id);
    assert.equal(c.headers['x-request-id'], id);
    const st = res.headers.get('server-timing')!;
    assert.match(st, /prefill;dur=\d+(\.\d+)?/);
    assert.match(st, /decode;dur=\d+(\.\d+)?/);
    assert.ok(r.lines.some((l) => l.includes(id) && l.includes('/v1/chat/completions') && l.includes(' 200 ')));
  });

  test('completions non-stream: fields the client omitted stay omitted; client request id is reused', async () => {
    const res = await post(r.proxy.url + '/v1/completions', { model: 'm', prompt: 'abc' }, { 'x-request-id': 'my-id-1' });
    assert.equal(res.status, 200);
    assert.equal(res.json.object, 'text_completion');
    assert.equal(res.headers.get('x-request-id'), 'my-id-1');
    const p = r.producers[0]!.calls().at(-1)!;
    const c = r.consumers[0]!.calls().at(-1)!;
    assert.deepEqual(p.json, { model: 'm', prompt: 'abc', max_tokens: 1, stream: false });
    assert.deepEqual(c.json, { model: 'm', prompt: 'abc' });
    assert.equal(p.headers['x-request-id'], 'my-id-1');
    assert.equal(c.headers['x-request-id'], 'my-id-1');
    assert.equal(p.headers.authorization, undefined, 'no Authorization when there is none');
  });

  test('client Authorization is forwarded to both stages', async () => {
    await post(r.proxy.url + '/v1/completions', { prompt: 'a' }, { authorization: 'Bearer client-key' });
    assert.equal(r.producers[0]!.calls().at(-1)!.headers.authorization, 'Bearer client-key');
    assert.equal(r.consumers[0]!.calls().at(-1)!.headers.authorization, 'Bearer client-key');
  });

  test('hop-by-hop headers are not forwarded upstream', async () => {
    const body = JSON.stringify({ prompt: 'a' });
    await new Promise<void>((resolve, reject) => {
      const u = new URL(r.proxy.url);
      const req = httpRequest(
        {
          host: u.hostname,
          port: u.port,
          path: '/v1/completions',
          method: 'POST',
          headers: { 'content-type': 'application/json', connection: 'keep-alive, x-drop-me', 'x-drop-me': '1', 'keep-alive': 'timeout=5', 'x-keep': 'yes', 'content-length': Buffer.byteLength(body) },
        },
        (res) => {
          res.resume();
          res.on('end', resolve);
        },
      );
      req.on('error', reject);
      req.end(body);
    });
    const c = r.consumers[0]!.calls().at(-1)!;
    assert.equal(c.headers['x-drop-me'], undefined);
    assert.equal(c.headers['x-keep'], 'yes');
    assert.notEqual(c.headers['keep-alive'], 'timeout=5');
  });

  test('GET /v1/models comes from a decode engine; other /v1/* are forwarded to it', async () => {
    const m = await fetch(r.proxy.url + '/v1/models');
    assert.equal(m.status, 200);
    assert.equal(((await m.json()) as { data: { id: string }[] }).data[0]!.id, 'fake-model');
    assert.equal(r.consumers[0]!.calls().at(-1)!.url, '/v1/models');
    const t = await post(r.proxy.url + '/v1/tokenize?x=1', { prompt: 'a' });
    assert.equal(t.status, 404);
    assert.equal(r.consumers[0]!.calls().at(-1)!.url, '/v1/tokenize?x=1');
    assert.equal(r.consumers[0]!.calls().at(-1)!.body, '{"prompt":"a"}');
    assert.ok(!r.producers[0]!.calls().some((x) => x.url.startsWith('/v1/tokenize')));
  });

  test('/health is 200 with healthy engines; /metrics is Prometheus text', async () => {
    const h = await fetch(r.proxy.url + '/health');
    assert.equal(h.status, 200);
    const m = await fetch(r.proxy.url + '/metrics');
    assert.equal(m.status, 200);
    assert.match(m.headers.get('content-type')!, /text\/plain/);
    const text = await m.text();
    assert.match(text, /pd_proxy_requests_total\{route="\/v1\/chat\/completions",status="200"\} \d+/);
    assert.match(text, /pd_proxy_in_flight 0/);
    assert.match(text, /pd_proxy_queue_depth 0/);
    assert.match(text, /pd_proxy_engine_healthy\{engine="producer-0",role="producer"\} 1/);
  });

  test('unknown non-/v1 route is a 404 in the OpenAI error shape', async () => {
    const res = await fetch(r.proxy.url + '/nope');
    assert.equal(res.status, 404);
    const j = (await res.json()) as { error: { message: string; code: number } };
    assert.equal(j.error.code, 404);
  });
});

describe('bad input never reaches an engine', () => {
  let r: Rig;
  before(async () => {
    r = await rig({ maxBodyBytes: 1024 });
  });
  after(() => r.close());

  const cases: [string, string, string, number, RegExp][] = [
    ['invalid JSON', '/v1/chat/completions', '{"messages": [', 400, /not valid JSON/],
    ['array body', '/v1/chat/completions', '[{"role":"user"}]', 400, /JSON object/],
    ['number body', '/v1/completions', '42', 400, /JSON object/],
    ['missing messages', '/v1/chat/completions', '{"model":"m"}', 400, /"messages" is required/],
    ['missing prompt', '/v1/completions', '{"model":"m","messages":[]}', 400, /"prompt" is required/],
    ['empty body', '/v1/completions', '', 400, /empty/],
    ['too large', '/v1/completions', JSON.stringify({ prompt: 'x'.repeat(5000) }), 413, /larger than/],
  ];
  for (const [name, path, body, status, re] of cases) {
    test(name, async () => {
      const before = r.producers[0]!.calls().length + r.consumers[0]!.calls().length;
      const res = await post(r.proxy.url + path, body);
      assert.equal(res.status, status);
      assert.equal(res.json.error.code, status);
      assert.match(res.json.error.message, re);
      assert.equal(r.producers[0]!.calls().length + r.consumers[0]!.calls().length, before);
    });
  }

  test('a chunked body over the limit (no Content-Length) is refused with 413', async () => {
    const status = await new Promise<number>((resolve, reject) => {
      const u = new URL(r.proxy.url);
      const req = httpRequest({ host: u.hostname, port: u.port, path: '/v1/completions', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
        res.resume();
        resolve(res.statusCode!);
      });
      req.on('error', reject);
      req.write('{"prompt":"' + 'y'.repeat(800));
      req.write('y'.repeat(800));
      req.end('"}');
    });
    assert.equal(status, 413);
    assert.equal(r.producers[0]!.calls().length, 0);
  });

  test('still serving after all that', async () => {
    const res = await post(r.proxy.url + '/v1/completions', { prompt: 'ok' });
    assert.equal(res.status, 200);
  });
});

describe('proxy API key and engine API key', () => {
  let r: Rig;
  before(async () => {
    r = await rig({ apiKey: 'sekret', engineApiKey: 'engine-key' });
  });
  after(() => r.close());

  test('401 without or with a wrong bearer token, in the OpenAI error shape', async () => {
    const a = await post(r.proxy.url + '/v1/completions', { prompt: 'a' });
    assert.equal(a.status, 401);
    assert.equal(a.json.error.code, 401);
    const b = await post(r.proxy.url + '/v1/completions', { prompt: 'a' }, { authorization: 'Bearer nope' });
    assert.equal(b.status, 401);
    const m = await fetch(r.proxy.url + '/v1/models');
    assert.equal(m.status, 401);
    assert.equal(r.producers[0]!.calls().length, 0);
    assert.equal((await fetch(r.proxy.url + '/health')).status, 200, '/health stays open');
  });

  test('the right token passes; engines get the engine key instead of the client\'s', async () => {
    const ok = await post(r.proxy.url + '/v1/completions', { prompt: 'a' }, { authorization: 'Bearer sekret' });
    assert.equal(ok.status, 200);
    assert.equal(r.producers[0]!.calls().at(-1)!.headers.authorization, 'Bearer engine-key');
    assert.equal(r.consumers[0]!.calls().at(-1)!.headers.authorization, 'Bearer engine-key');
  });
});

describe('engine status codes pass through', () => {
  let r: Rig;
  const err400 = JSON.stringify({ error: { message: 'This model\'s maximum context length is 10 tokens', type: 'BadRequestError', param: null, code: 400 } });
  before(async () => {
    r = await rig({
      producer: {
        handler: (rec, _req, res) => {
          if (rec.json?.prompt === 'bad') res.writeHead(400, { 'content-type': 'application/json', 'x-engine': 'p' }).end(err400);
          else res.writeHead(200, { 'content-type': 'application/json' }).end(completionJson(rec.json));
        },
      },
      consumer: {
        handler: (rec, _req, res) => {
          if (rec.json?.prompt === 'busy') res.writeHead(503, { 'content-type': 'application/json' }).end('{"error":{"message":"overloaded","type":"ServiceUnavailableError","param":null,"code":503}}');
          else res.writeHead(200, { 'content-type': 'application/json' }).end(completionJson(rec.json));
        },
      },
    });
  });
  after(() => r.close());

  test('a stage 1 error is returned with its status and body, and decode is not called', async () => {
    const before = r.consumers[0]!.calls().length;
    const res = await post(r.proxy.url + '/v1/completions', { prompt: 'bad' });
    assert.equal(res.status, 400);
    assert.equal(res.text, err400);
    assert.equal(res.headers.get('x-engine'), 'p');
    assert.match(res.headers.get('content-type')!, /application\/json/);
    assert.equal(r.consumers[0]!.calls().length, before);
  });

  test('a stage 2 status passes through', async () => {
    const res = await post(r.proxy.url + '/v1/completions', { prompt: 'busy' });
    assert.equal(res.status, 503);
    assert.equal(res.json.error.message, 'overloaded');
  });
});
