import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { assertSameShape, fixture, postJson, sseData } from './sse.js';
import { promptOfLength } from '../../src/sim/tokenizer.js';

const MODEL = 'Qwen/Qwen3-4B-Instruct-2507';

describe('HTTP conformance with vLLM shapes', () => {
  let sim: SimHandle;
  before(async () => {
    sim = await startSim({ model: '/mnt/models/Qwen3-4B-Instruct-2507', args: ['--served-model-name', MODEL, '--max-model-len', '512', '--api-key', 'sekret', '--enable-request-id-headers'] });
  });
  after(async () => {
    await sim.stop();
  });
  const auth = { authorization: 'Bearer sekret' };

  test('/health is 200 with an empty body; /version, /metrics and /health stay open with --api-key', async () => {
    const h = await fetch(`${sim.url}/health`);
    assert.equal(h.status, 200);
    assert.equal(await h.text(), '');
    assert.equal((await fetch(`${sim.url}/health`, { method: 'HEAD' })).status, 200);
    assert.equal((await fetch(`${sim.url}/health`, { method: 'POST' })).status, 405);
    assert.equal((await fetch(`${sim.url}/nope`)).status, 404);
    const v = await fetch(`${sim.url}/version`);
    assertSameShape(await v.json(), fixture('version.json'));
    const m = await fetch(`${sim.url}/metrics`);
    assert.equal(m.status, 200);
    const text = await m.text();
    for (const name of ['vllm:num_requests_running', 'vllm:num_requests_waiting', 'vllm:prompt_tokens_total', 'vllm:generation_tokens_total', 'vllm:time_to_first_token_seconds_bucket', 'vllm:e2e_request_latency_seconds_bucket', 'vllm:request_success_total'])
      assert.match(text, new RegExp(`^${name}\\{`, 'm'), name);
  });

  test('/v1/* needs the API key: 401 {"error":"Unauthorized"}', async () => {
    const r = await fetch(`${sim.url}/v1/models`);
    assert.equal(r.status, 401);
    assert.deepEqual(await r.json(), { error: 'Unauthorized' });
    const bad = await postJson(`${sim.url}/v1/completions`, { prompt: 'x' }, { authorization: 'Bearer nope' });
    assert.equal(bad.status, 401);
  });

  test('/v1/models has vLLM\'s shape with max_model_len and the served name', async () => {
    const r = await fetch(`${sim.url}/v1/models`, { headers: auth });
    const body = (await r.json()) as { data: Array<{ id: string; max_model_len: number; root: string }> };
    assertSameShape(body, fixture('models.json'));
    assert.equal(body.data[0]!.id, MODEL);
    assert.equal(body.data[0]!.max_model_len, 512);
    assert.equal(body.data[0]!.root, '/mnt/models/Qwen3-4B-Instruct-2507');
  });

  test('non-streaming completion: shape, id from X-Request-Id, usage, finish_reason length', async () => {
    const r = await postJson(`${sim.url}/v1/completions`, { model: MODEL, prompt: promptOfLength(20), max_tokens: 7 }, { ...auth, 'x-request-id': 'req-42' });
    assert.equal(r.status, 200);
    assertSameShape(r.json, fixture('completion.json'));
    assert.equal(r.json.id, 'cmpl-req-42');
    assert.equal(r.headers.get('x-request-id'), 'req-42'); // --enable-request-id-headers
    assert.equal(r.json.model, MODEL);
    assert.deepEqual([r.json.usage.prompt_tokens, r.json.usage.completion_tokens, r.json.usage.total_tokens], [20, 7, 27]);
    assert.equal(r.json.choices[0].finish_reason, 'length');
    assert.match(r.headers.get('content-type') ?? '', /application\/json/);
  });

  test('prompt may be a list of strings or token ids; temperature 0 is deterministic', async () => {
    const two = await postJson(`${sim.url}/v1/completions`, { prompt: ['a b c', 'd e'], max_tokens: 2 }, auth);
    assert.equal(two.json.choices.length, 2);
    assert.deepEqual(two.json.choices.map((c: { index: number }) => c.index), [0, 1]);
    const ids = await postJson(`${sim.url}/v1/completions`, { prompt: [1, 2, 3, 70000], max_tokens: 2 }, auth);
    assert.equal(ids.json.usage.prompt_tokens, 4);
    const a = await postJson(`${sim.url}/v1/completions`, { prompt: 'same prompt', max_tokens: 8, temperature: 0 }, auth);
    const b = await postJson(`${sim.url}/v1/completions`, { prompt: 'same prompt', max_tokens: 8, temperature: 0 }, auth);
    assert.equal(a.json.choices[0].text, b.json.choices[0].text);
  });

  test('non-streaming chat: shape, chatcmpl id, stop strings set finish_reason stop and stop_reason', async () => {
    const r = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL, messages: [{ role: 'user', content: 'hi' }], max_tokens: 5 }, auth);
    assertSameShape(r.json, fixture('chat.json'));
    assert.match(r.json.id, /^chatcmpl-[0-9a-f]{32}$/);
    assert.equal(r.json.usage.completion_tokens, 5);
    // A stop string taken from a first answer stops the second one there.
    const first = await postJson(`${sim.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'stop test' }], max_tokens: 6, temperature: 0 }, auth);
    const word = (first.json.choices[0].message.content as string).split(' ')[3]!;
    const second = await postJson(`${sim.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'stop test' }], max_tokens: 6, temperature: 0, stop: [word] }, auth);
    assert.equal(second.json.choices[0].finish_reason, 'stop');
    assert.equal(second.json.choices[0].stop_reason, word);
    assert.ok(!(second.json.choices[0].message.content as string).includes(word));
  });

  test('streaming chat: role chunk first (no role on completions), content chunks, final usage chunk, [DONE]', async () => {
    const r = await postJson(`${sim.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'hi' }], max_tokens: 3, stream: true, stream_options: { include_usage: true } }, auth);
    assert.equal(r.status, 200);
    assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
    const data = sseData(r.text);
    assert.equal(data.at(-1), '[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assertSameShape(chunks[0], fixture('chat-chunk-role.json'));
    assertSameShape(chunks[1], fixture('chat-chunk-content.json'));
    assertSameShape(chunks[3], fixture('chat-chunk-final.json'));
    assertSameShape(chunks[4], fixture('usage-chunk.json'));
    assert.equal(chunks.length, 5);
    assert.equal(chunks[3].choices[0].finish_reason, 'length');
    assert.deepEqual(chunks[4].usage, { prompt_tokens: chunks[4].usage.prompt_tokens, total_tokens: chunks[4].usage.prompt_tokens + 3, completion_tokens: 3 });
    assert.ok(chunks.every((c: { id: string }) => c.id === chunks[0].id));
  });

  test('streaming completion: no role chunk, every chunk has all fields, usage only when asked', async () => {
    const r = await postJson(`${sim.url}/v1/completions`, { prompt: 'hello', max_tokens: 4, stream: true }, { ...auth, 'x-request-id': 'abc' });
    const data = sseData(r.text);
    assert.equal(data.at(-1), '[DONE]');
    const chunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.equal(chunks.length, 4);
    for (const c of chunks.slice(0, 3)) assertSameShape(c, fixture('completion-chunk.json'));
    assert.deepEqual(Object.keys(chunks[3].choices[0]), Object.keys(chunks[0].choices[0]));
    assert.equal(chunks[0].id, 'cmpl-abc');
    assert.equal(chunks[3].choices[0].finish_reason, 'length');
  });

  test('errors: vLLM envelope and messages', async () => {
    const nf = await postJson(`${sim.url}/v1/completions`, { model: 'gpt-4', prompt: 'x' }, auth);
    assert.equal(nf.status, 404);
    assertSameShape(nf.json, fixture('error-404.json'));
    assert.equal(nf.json.error.message, 'The model `gpt-4` does not exist.');

    const badJson = await postJson(`${sim.url}/v1/completions`, '{"prompt": ', auth);
    assert.equal(badJson.status, 400);
    assert.match(badJson.json.error.message, /JSON decode error/);

    const missing = await postJson(`${sim.url}/v1/chat/completions`, { model: MODEL }, auth);
    assert.equal(missing.status, 400);
    assert.match(missing.json.error.message, /'messages'/);
    assert.match(missing.json.error.message, /Field required/);

    // pydantic v2's wording for a value of the wrong type, as vLLM returns it.
    const hot = await postJson(`${sim.url}/v1/completions`, { prompt: 'x', temperature: 'hot' }, auth);
    assert.equal(hot.status, 400);
    assert.match(hot.json.error.message, /'type': 'float_parsing', 'loc': \('body', 'temperature'\), 'msg': 'Input should be a valid number, unable to parse string as a number', 'input': 'hot'/);

    const so = await postJson(`${sim.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }], stream_options: { include_usage: true } }, auth);
    assert.equal(so.status, 400);
    assert.match(so.json.error.message, /Stream options can only be defined when `stream=True`\./);

    const minmax = await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 2, min_tokens: 5 }, auth);
    assert.equal(minmax.status, 400);
    // vLLM >= 0.14 raises VLLMValidationError(parameter=...): the message names it and so does `param`.
    assert.equal(minmax.json.error.message, 'min_tokens must be less than or equal to max_tokens=2, got 5. (parameter=min_tokens, value=5)');
    assert.equal(minmax.json.error.param, 'min_tokens');

    const tooLong = await postJson(`${sim.url}/v1/completions`, { prompt: promptOfLength(600), max_tokens: 1 }, auth);
    assert.equal(tooLong.status, 400);
    assert.equal(tooLong.json.error.message, "This model's maximum context length is 512 tokens. However, your request has 600 input tokens. Please reduce the length of the input messages. (parameter=input_tokens, value=600)");

    const tooMany = await postJson(`${sim.url}/v1/completions`, { prompt: promptOfLength(100), max_tokens: 500 }, auth);
    assert.equal(tooMany.status, 400);
    assert.equal(tooMany.json.error.message, "'max_tokens' or 'max_completion_tokens' is too large: 500. This model's maximum context length is 512 tokens and your request has 100 input tokens (500 > 512 - 100). (parameter=max_tokens, value=500)");
    assert.equal(tooMany.json.error.param, 'max_tokens');
    assert.equal(tooMany.json.error.type, 'BadRequestError');
    assert.equal(tooMany.json.error.code, 400);
  });

  // Content-Type of JSON routes. vllm/entrypoints/utils.py validate_json_request (a dependency of /v1/completions,
  // /v1/chat/completions, /tokenize, /detokenize …): `content_type.split(";", maxsplit=1)[0]` of the lower-cased
  // header must be exactly "application/json", else RequestValidationError(["Unsupported Media Type: Only
  // 'application/json' is allowed"]), answered with 400 and vLLM's error envelope (type "Bad Request").
  // The API-key middleware runs first (401 before 400).
  const REFUSAL = { error: { message: `["Unsupported Media Type: Only 'application/json' is allowed"]`, type: 'Bad Request', param: null, code: 400 } };
  const postAs = (path: string, contentType: string | null, withKey = true): Promise<Response> => {
    const headers: Record<string, string> = withKey ? { ...auth } : {};
    if (contentType !== null) headers['content-type'] = contentType;
    return fetch(`${sim.url}${path}`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'hello', max_tokens: 1 }) });
  };

  test('Content-Type: a generation request without application/json is refused with 400 in vLLM\'s envelope', async () => {
    for (const ct of [null, 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonl', 'application/json ; charset=utf-8']) {
      const r = await postAs('/v1/completions', ct);
      assert.equal(r.status, 400, String(ct));
      assert.deepEqual(await r.json(), REFUSAL);
    }
    // curl -d sends application/x-www-form-urlencoded: refused on every JSON route.
    for (const path of ['/v1/chat/completions', '/tokenize', '/detokenize']) {
      const r = await postAs(path, 'application/x-www-form-urlencoded');
      assert.equal(r.status, 400, path);
      assert.deepEqual(await r.json(), REFUSAL);
    }
  });

  test('Content-Type: application/json with parameters and in any case is accepted; the API key is checked first', async () => {
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'Application/JSON']) assert.equal((await postAs('/v1/completions', ct)).status, 200, ct);
    assert.equal((await postAs('/v1/completions', 'text/plain', false)).status, 401);
  });

  // Streaming usage. vllm/entrypoints/openai/utils.py should_include_usage (serving_chat.py / serving_completion.py):
  // with stream_options: include_usage = stream_options.include_usage or --enable-force-include-usage,
  // continuous = include_usage and stream_options.continuous_usage_stats; without: include_usage =
  // --enable-force-include-usage, continuous = False. The final usage chunk has `choices: []`; continuous usage puts
  // `usage` on every chunk. vllm/entrypoints/openai/protocol.py: stream_options without stream=True is a 400.
  const chunksOf = (text: string): any[] => sseData(text).slice(0, -1).map((d) => JSON.parse(d));
  const streamBody = (so?: object) => ({ prompt: 'hello there', max_tokens: 3, stream: true, ...(so ? { stream_options: so } : {}) });

  test('stream usage: default none; include_usage: one final usage chunk; continuous_usage_stats: usage on every chunk', async () => {
    const none = chunksOf((await postJson(`${sim.url}/v1/completions`, streamBody(), auth)).text);
    assert.ok(none.every((c) => c.usage === null || c.usage === undefined));
    const noInclude = chunksOf((await postJson(`${sim.url}/v1/completions`, streamBody({ include_usage: false, continuous_usage_stats: true }), auth)).text);
    assert.ok(noInclude.every((c) => !c.usage), 'continuous_usage_stats needs include_usage');
    const inc = chunksOf((await postJson(`${sim.url}/v1/completions`, streamBody({ include_usage: true }), auth)).text);
    assert.deepEqual(inc.at(-1).choices, []);
    assert.equal(inc.at(-1).usage.completion_tokens, 3);
    assert.ok(inc.slice(0, -1).every((c) => c.usage === null));
    const cont = chunksOf((await postJson(`${sim.url}/v1/completions`, streamBody({ include_usage: true, continuous_usage_stats: true }), auth)).text);
    assert.deepEqual(cont.slice(0, -1).map((c) => c.usage.completion_tokens), [1, 2, 3]);
  });

  test('errors carry vLLM\'s param: VLLMValidationError(parameter=...) since 0.14; stream_options need stream=True', async () => {
    const r = await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 0 }, auth);
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.error, { message: 'max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)', type: 'BadRequestError', param: 'max_tokens', code: 400 });
    const so = await postJson(`${sim.url}/v1/completions`, { prompt: 'x', stream_options: { include_usage: true } }, auth);
    assert.equal(so.status, 400);
    assert.match(so.json.error.message, /Stream options can only be defined when `stream=True`/);
  });

  test('logs: uvicorn access lines per request', async () => {
    await postJson(`${sim.url}/v1/completions`, { prompt: 'x', max_tokens: 1 }, auth);
    await sim.waitForOutput(/INFO: {5}127\.0\.0\.1:\d+ - "POST \/v1\/completions HTTP\/1\.1" 200 OK/);
    await sim.waitForOutput(/INFO: {5}127\.0\.0\.1:\d+ - "GET \/v1\/models HTTP\/1\.1" 401 Unauthorized/);
  });
});

describe('stream usage with --enable-force-include-usage', () => {
  let forced: SimHandle;
  before(async () => {
    forced = await startSim({ args: ['--enable-force-include-usage'] });
  });
  after(async () => {
    await forced.stop();
  });

  test('the usage chunk comes without stream_options', async () => {
    const data = sseData((await postJson(`${forced.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }], max_tokens: 2, stream: true })).text);
    const forcedChunks = data.slice(0, -1).map((d) => JSON.parse(d));
    assert.deepEqual(forcedChunks.at(-1).choices, []);
    assert.equal(forcedChunks.at(-1).usage.completion_tokens, 2);
  });
});
