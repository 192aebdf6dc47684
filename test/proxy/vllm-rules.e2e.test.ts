/**
 * What vLLM enforces, the proxy enforces before spending an engine: the JSON content type (vLLM's
 * validate_json_request, vllm/entrypoints/openai/utils.py) and the fields the proxy rewrites for stage 1
 * (vllm/sampling_params.py, the request models in vllm/entrypoints/openai/{completion,chat_completion}/protocol.py). And what vLLM answers
 * when a generation fails after the prefill (a KV load with kv_load_failure_policy=fail) is counted and logged.
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { rig, chat, post, rawPost, MEDIA_TYPE_400, type Rig } from './harness.js';
import { sseChunk } from './fake-engine.js';

describe('content type: refused with vLLM\'s 400 before any engine', () => {
  let r: Rig;
  before(async () => {
    r = await rig();
  });
  after(() => r.close());

  const body = JSON.stringify({ model: 'm', prompt: 'hi', messages: [{ role: 'user', content: 'hi' }], max_tokens: 3 });
  const refused: [string, Record<string, string>][] = [
    ['no Content-Type', {}],
    ['curl -d (form encoded)', { 'content-type': 'application/x-www-form-urlencoded' }],
    ['text/plain', { 'content-type': 'text/plain' }],
    ['a space before the parameters', { 'content-type': 'application/json ; charset=utf-8' }],
    ['application/jsonl', { 'content-type': 'application/jsonl' }],
  ];
  for (const path of ['/v1/completions', '/v1/chat/completions']) {
    for (const [name, headers] of refused) {
      test(`${path}, ${name}`, async () => {
        const before = r.producers[0]!.calls().length + r.consumers[0]!.calls().length;
        const res = await rawPost(r.proxy.url, path, body, headers);
        assert.equal(res.status, 400);
        assert.equal(res.text, MEDIA_TYPE_400);
        assert.equal(r.producers[0]!.calls().length + r.consumers[0]!.calls().length, before, 'no engine saw it');
      });
    }
  }

  test('application/json with parameters or in capitals is accepted', async () => {
    for (const ct of ['application/json; charset=utf-8', 'Application/JSON'])
      assert.equal((await rawPost(r.proxy.url, '/v1/completions', body, { 'content-type': ct })).status, 200, ct);
  });
});

describe('fields the proxy rewrites are checked by the proxy', () => {
  let r: Rig;
  before(async () => {
    r = await rig();
  });
  after(() => r.close());

  const cases: [string, '/v1/completions' | '/v1/chat/completions', Record<string, unknown>, string, RegExp][] = [
    ['max_tokens as a string', '/v1/completions', { max_tokens: '12' }, 'max_tokens', /whole number/],
    ['negative max_tokens', '/v1/completions', { max_tokens: -1 }, 'max_tokens', /at least 1, got -1/],
    ['zero max_tokens', '/v1/chat/completions', { max_tokens: 0 }, 'max_tokens', /at least 1, got 0/],
    ['fractional max_tokens', '/v1/completions', { max_tokens: 1.5 }, 'max_tokens', /whole number, got 1\.5/],
    ['max_tokens true', '/v1/completions', { max_tokens: true }, 'max_tokens', /boolean/],
    ['max_completion_tokens as a string', '/v1/chat/completions', { max_completion_tokens: 'x' }, 'max_completion_tokens', /whole number/],
    ['negative min_tokens', '/v1/completions', { min_tokens: -1 }, 'min_tokens', /greater than or equal to 0/],
    ['min_tokens above max_tokens', '/v1/completions', { max_tokens: 5, min_tokens: 6 }, 'min_tokens', /max_tokens=5, got 6/],
    ['min_tokens above the completions default of 16', '/v1/completions', { max_tokens: null, min_tokens: 17 }, 'min_tokens', /max_tokens=16/],
    ['stream as a string', '/v1/chat/completions', { stream: 'true' }, 'stream', /true or false/],
    ['stream as a number', '/v1/completions', { stream: 1 }, 'stream', /true or false/],
    ['stream_options as an array', '/v1/chat/completions', { stream: true, stream_options: [] }, 'stream_options', /an object/],
    ['stream_options as a string', '/v1/completions', { stream: true, stream_options: 'usage' }, 'stream_options', /an object/],
    ['stream_options without stream', '/v1/completions', { stream_options: { include_usage: true } }, 'stream_options', /stream=True/],
  ];
  for (const [name, path, fields, param, re] of cases) {
    test(name, async () => {
      const base = path === '/v1/completions' ? { model: 'm', prompt: 'hi', max_tokens: 4 } : chat();
      const before = r.producers[0]!.calls().length + r.consumers[0]!.calls().length;
      const res = await post(r.proxy.url + path, { ...base, ...fields });
      assert.equal(res.status, 400, res.text);
      assert.deepEqual(Object.keys(res.json.error), ['message', 'type', 'param', 'code']);
      assert.equal(res.json.error.type, 'BadRequestError');
      assert.equal(res.json.error.code, 400);
      assert.equal(res.json.error.param, param);
      assert.match(res.json.error.message, re);
      assert.equal(r.producers[0]!.calls().length + r.consumers[0]!.calls().length, before, 'no engine saw it');
    });
  }

  test('what vLLM accepts passes: 5.0, nulls, stream_options with stream', async () => {
    for (const fields of [{ max_tokens: 5.0 }, { max_tokens: null, stream: null, stream_options: null }, { stream: true, stream_options: { include_usage: true } }]) {
      const res = await post(r.proxy.url + '/v1/chat/completions', { ...chat(), ...fields });
      assert.equal(res.status, 200, `${JSON.stringify(fields)}: ${res.text}`);
    }
  });
});

describe('a generation that fails after the prefill is counted and logged', () => {
  test('a 500 from the consumer (non-streaming) and an error event in its stream', async () => {
    const failure = { error: { message: 'Internal server error', type: 'InternalServerError', param: null, code: 500 } };
    const r = await rig({
      connector: 'NixlConnector',
      producer: { kvTransferParams: { remote_engine_id: 'p', remote_block_ids: [1] } },
      consumer: {
        handler: (rec, _req, res) => {
          if (rec.url === '/health') return void res.writeHead(200).end();
          if (rec.json?.stream !== true) return void res.writeHead(500, { 'content-type': 'application/json' }).end(JSON.stringify(failure));
          res.writeHead(200, { 'content-type': 'text/event-stream; charset=utf-8' });
          res.write(sseChunk(rec.json, 0));
          // vLLM (json.dumps) writes the error object with a space after the colon
          res.end(`data: {"error": {"message": "Internal server error", "type": "InternalServerError", "param": null, "code": 500}}\n\ndata: [DONE]\n\n`);
        },
      },
    });
    try {
      const a = await post(r.proxy.url + '/v1/completions', { prompt: 'a', max_tokens: 3 });
      assert.equal(a.status, 500);
      assert.deepEqual(a.json, failure, 'the engine\'s answer passes through');
      const b = await post(r.proxy.url + '/v1/chat/completions', chat({ stream: true }));
      assert.equal(b.status, 200);
      assert.match(b.text, /"Internal server error"/);
      const m = await (await fetch(r.proxy.url + '/metrics')).text();
      assert.match(m, /pd_proxy_decode_failures_total\{how="status"\} 1/);
      assert.match(m, /pd_proxy_decode_failures_total\{how="stream"\} 1/);
      const warnings = r.lines.filter((l) => l.startsWith('warning:') && l.includes('kv_load_failure_policy=fail'));
      assert.equal(warnings.length, 2, r.lines.join('\n'));
      assert.match(warnings[0]!, /consumer-0 failed request \S+ after its prefill on producer-0 \(HTTP 500\)/);
    } finally {
      await r.close();
    }
  });
});
