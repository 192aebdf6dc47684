import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { Pool } from 'undici';
import { startFixedUpstream, type FixedUpstream, type FixedUpstreamOptions } from './fixed-upstream.ts';
import { sendRequest, type RequestSettings } from '../../src/bench/request.ts';

const ups: FixedUpstream[] = [];
const pools: Pool[] = [];
after(async () => {
  await Promise.all(pools.map((p) => p.close()));
  await Promise.all(ups.map((u) => u.close()));
});

async function one(opts: FixedUpstreamOptions, settings: Partial<RequestSettings> = {}, outputLen = 6) {
  const up = await startFixedUpstream({ ttftMs: 15, itlMs: 2, ...opts });
  ups.push(up);
  const pool = new Pool(up.url);
  pools.push(pool);
  const s: RequestSettings = { endpoint: 'chat', model: 'm', ignoreEos: true, basePath: '', ...settings };
  const o = await sendRequest(pool, s, { prompt: 'hello world', promptLen: 2, outputLen });
  return { o, up };
}

test('chat: TTFT skips the role-only chunk, usage from server, body like vllm bench serve', async () => {
  const { o, up } = await one({ ttftMs: 40 });
  assert.equal(o.success, true);
  assert.ok(o.ttftMs! >= 39, `ttft ${o.ttftMs} must be measured to the first content chunk, not the role chunk`);
  assert.equal(o.outputTokens, 6);
  assert.equal(o.usageSource, 'server');
  assert.equal(o.itlMs.length, 5);
  assert.equal(o.promptLen, 2);
  const body = up.bodies()[0] as Record<string, unknown>;
  assert.equal(body.max_completion_tokens, 6);
  assert.equal(body.stream, true);
  assert.deepEqual(body.stream_options, { include_usage: true });
  assert.equal(body.ignore_eos, true);
});

test('completions: token-id prompt and max_tokens', async () => {
  const up = await startFixedUpstream({ ttftMs: 5, itlMs: 1 });
  ups.push(up);
  const pool = new Pool(up.url);
  pools.push(pool);
  const o = await sendRequest(pool, { endpoint: 'completions', model: 'm', ignoreEos: true, basePath: '' }, { prompt: [11, 12, 13], promptLen: 3, outputLen: 4 });
  assert.equal(o.success, true);
  assert.equal(o.outputTokens, 4);
  const body = up.bodies()[0] as Record<string, unknown>;
  assert.deepEqual(body.prompt, [11, 12, 13]);
  assert.equal(body.max_tokens, 4);
});

test('SSE tolerance: comments, data: without a space, a line over 128 KB', async () => {
  const { o } = await one({ comments: true, noSpace: true, bigLineBytes: 200 * 1024 });
  assert.equal(o.success, true, o.error);
  assert.equal(o.outputTokens, 6);
  assert.ok(o.generatedText.length > 200 * 1024);
});

test('an in-band error in a 200 stream is a failure', async () => {
  const { o } = await one({ inBandErrorAfter: 2 });
  assert.equal(o.status, 200);
  assert.equal(o.success, false);
  assert.equal(o.errorKind, 'in_band_error');
  assert.match(o.error, /engine died/);
});

test('HTTP errors and refused connections have kinds', async () => {
  const { o } = await one({ status: 503 });
  assert.equal(o.success, false);
  assert.equal(o.errorKind, 'http_503');
  const pool = new Pool('http://127.0.0.1:1');
  pools.push(pool);
  const c = await sendRequest(pool, { endpoint: 'chat', model: 'm', ignoreEos: true, basePath: '' }, { prompt: 'x', promptLen: 1, outputLen: 2 });
  assert.equal(c.success, false);
  assert.equal(c.errorKind, 'connect');
});

test('without usage the tokens are counted from chunks and say so; Server-Timing is read', async () => {
  const { o } = await one({ includeUsage: false, tokensPerChunk: 2, serverTiming: 'queue;dur=0.1, prefill;dur=12.5, decode;dur=3.25' }, {}, 6);
  assert.equal(o.success, true);
  assert.equal(o.usageSource, 'chunks');
  assert.equal(o.outputTokens, 3);
  assert.equal(o.prefillMs, 12.5);
  assert.equal(o.decodeTtfbMs, 3.25);
});

test('a multi-byte character split across two reads is decoded intact', async () => {
  // Raw server: the 3-byte "€" (and a 4-byte emoji) are cut in the middle between two TCP writes.
  const { createServer } = await import('node:http');
  const server = createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    const ev = Buffer.from('data: {"choices":[{"text":"a€b😀c"}]}\n\n', 'utf8');
    const cut = ev.indexOf(Buffer.from('€')) + 1;
    res.write(ev.subarray(0, cut));
    setTimeout(() => {
      const cut2 = ev.indexOf(Buffer.from('😀')) + 2;
      res.write(ev.subarray(cut, cut2));
      setTimeout(() => {
        res.write(ev.subarray(cut2));
        res.end('data: [DONE]\n\n');
      }, 20);
    }, 20);
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  const port = (server.address() as import('node:net').AddressInfo).port;
  const pool = new Pool(`http://127.0.0.1:${port}`);
  try {
    const o = await sendRequest(pool, { endpoint: 'completions', model: 'm', ignoreEos: true, basePath: '' }, { prompt: 'x', promptLen: 1, outputLen: 1 });
    assert.equal(o.success, true, o.error);
    assert.equal(o.generatedText, 'a€b😀c');
    assert.equal(o.usageSource, 'chunks');
  } finally {
    await pool.close();
    await new Promise<void>((r) => server.close(() => r()));
  }
});

test('aborting the signal ends the stream with kind "aborted" and closes the connection', async () => {
  const up = await startFixedUpstream({ ttftMs: 5, itlMs: 50 });
  ups.push(up);
  const pool = new Pool(up.url);
  pools.push(pool);
  const ac = new AbortController();
  setTimeout(() => ac.abort(), 80);
  const o = await sendRequest(pool, { endpoint: 'completions', model: 'm', ignoreEos: true, basePath: '' }, { prompt: 'x', promptLen: 1, outputLen: 20 }, ac.signal);
  assert.equal(o.success, false);
  assert.equal(o.errorKind, 'aborted');
  assert.ok(o.endAt - o.startAt < 500, 'returns promptly');
  const pre = new AbortController();
  pre.abort();
  const p = await sendRequest(pool, { endpoint: 'completions', model: 'm', ignoreEos: true, basePath: '' }, { prompt: 'x', promptLen: 1, outputLen: 2 }, pre.signal);
  assert.equal(p.errorKind, 'aborted');
});

test('aborting a request that still waits for a connection cancels it too (it is never sent)', async () => {
  const up = await startFixedUpstream({ ttftMs: 5, itlMs: 100 });
  ups.push(up);
  const pool = new Pool(up.url, { connections: 1 });
  pools.push(pool);
  const ac = new AbortController();
  const s: RequestSettings = { endpoint: 'completions', model: 'm', ignoreEos: true, basePath: '' };
  const a = sendRequest(pool, s, { prompt: 'x', promptLen: 1, outputLen: 20 }, ac.signal);
  const b = sendRequest(pool, s, { prompt: 'y', promptLen: 1, outputLen: 20 }, ac.signal); // queued behind a
  setTimeout(() => ac.abort(), 150);
  const [oa, ob] = await Promise.all([a, b]);
  assert.equal(oa.errorKind, 'aborted');
  assert.equal(ob.errorKind, 'aborted');
  assert.ok(ob.endAt - ob.startAt < 600, `the queued request returned at once (${(ob.endAt - ob.startAt).toFixed(0)} ms), not after its 2 s stream`);
  await new Promise((r) => setTimeout(r, 300));
  assert.equal(up.requests(), 1, 'the queued request never reached the server');
});
