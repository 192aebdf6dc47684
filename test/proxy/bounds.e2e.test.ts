/**
 * Bounded resources at small scale (the figures at scale are in `npm run bench:proxy-limits`): header and
 * whole-request deadlines answered with 408, the cap on open connections, the body budget, and which routes
 * pass the gate (every generation route, whatever the spelling of its path).
 */
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect, type Socket } from 'node:net';
import { request as httpRequest } from 'node:http';
import { rig, post, until, chat, type Rig } from './harness.js';

/** Open a raw TCP connection to the proxy. */
function raw(url: string): Promise<Socket> {
  const u = new URL(url);
  return new Promise((resolve, reject) => {
    const s = connect(Number(u.port), u.hostname, () => resolve(s));
    s.once('error', reject);
  });
}

/** Everything the server sends until it closes the connection, and how long that took. */
function untilClosed(s: Socket): Promise<{ text: string; ms: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    let text = '';
    s.setEncoding('utf8');
    s.on('data', (d: string) => (text += d));
    s.on('error', () => undefined);
    s.once('close', () => resolve({ text, ms: performance.now() - t0 }));
  });
}

describe('deadlines for slow clients', () => {
  test('a body that trickles in is cut with 408 within proxy.timeouts.requestMs, and no engine sees it', async () => {
    const r = await rig({ timeouts: { requestMs: 400, headersMs: 300 } });
    try {
      const s = await raw(r.proxy.url);
      const closed = untilClosed(s);
      s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{');
      const tick = setInterval(() => s.writable && s.write(' '), 50);
      const { text, ms } = await closed;
      clearInterval(tick);
      assert.match(text, /^HTTP\/1\.1 408 /);
      // cut at the deadline, not before (how close to it at scale: npm run bench:proxy-limits)
      assert.ok(ms >= 350 && ms < 5000, `cut after ${ms.toFixed(0)} ms (deadline 400 ms)`);
      assert.equal(r.producers[0]!.calls().length + r.consumers[0]!.calls().length, 0);
      await until(() => r.lines.some((l) => l.includes(' 408 ') && l.includes('request_timeout')), 2000, 'a 408 access line');
      const m = await (await fetch(r.proxy.url + '/metrics')).text();
      assert.match(m, /pd_proxy_rejected_total\{reason="request_timeout"\} 1/);
    } finally {
      await r.close();
    }
  });

  test('headers that never end get 408, not 400', async () => {
    const r = await rig({ timeouts: { requestMs: 2000, headersMs: 300 } });
    try {
      const s = await raw(r.proxy.url);
      const closed = untilClosed(s);
      s.write('POST /v1/completions HTTP/1.1\r\nHost: x\r\n');
      const { text, ms } = await closed;
      assert.match(text, /^HTTP\/1\.1 408 /);
      assert.ok(ms >= 250 && ms < 5000, `cut after ${ms.toFixed(0)} ms (deadline 300 ms)`);
    } finally {
      await r.close();
    }
  });

  test('a garbled request line still gets 400', async () => {
    const r = await rig();
    try {
      const s = await raw(r.proxy.url);
      const closed = untilClosed(s);
      s.write('NOT HTTP AT ALL\r\n\r\n');
      assert.match((await closed).text, /^HTTP\/1\.1 400 /);
    } finally {
      await r.close();
    }
  });
});

describe('open connections', () => {
  test('beyond proxy.maxConnections a new connection is closed at once; the open ones keep working', async () => {
    const r = await rig({ maxConnections: 2 });
    const socks: Socket[] = [];
    try {
      socks.push(await raw(r.proxy.url), await raw(r.proxy.url));
      const third = await raw(r.proxy.url);
      const { text } = await untilClosed(third);
      assert.equal(text, '');
      // an open connection still serves
      const s = socks[0]!;
      const got = new Promise<string>((resolve) => {
        let t = '';
        s.setEncoding('utf8');
        s.on('data', (d: string) => {
          t += d;
          if (t.includes('\r\n\r\n')) resolve(t);
        });
      });
      s.write('GET /health HTTP/1.1\r\nHost: x\r\n\r\n');
      assert.match(await got, /^HTTP\/1\.1 200 /);
    } finally {
      for (const s of socks) s.destroy();
      await r.close();
    }
  });
});

describe('body budget', () => {
  test('a body that does not fit waits unread until the one in memory is done', async () => {
    const r = await rig({ bodyBudgetBytes: 1000, maxBodyBytes: 1000, producer: { delayMs: 300 } });
    try {
      const big = (tag: string): Record<string, unknown> => ({ prompt: tag + 'x'.repeat(700) });
      const a = post(r.proxy.url + '/v1/completions', big('a'));
      await r.producers[0]!.waitForRequest();
      const b = post(r.proxy.url + '/v1/completions', big('b'));
      const [ra, rb] = await Promise.all([a, b]);
      assert.equal(ra.status, 200);
      assert.equal(rb.status, 200);
      const calls = r.producers[0]!.calls();
      const aDone = r.consumers[0]!.calls().find((c) => String(c.json?.prompt).startsWith('a'))!.at;
      const bAt = calls.find((c) => String(c.json?.prompt).startsWith('b'))!.at;
      assert.ok(bAt >= aDone, 'the second body was read only after the first request let go of its bytes');
    } finally {
      await r.close();
    }
  });

  test('a chunked body (no Content-Length) that does not fit is refused with 503', async () => {
    const r = await rig({ bodyBudgetBytes: 1000, maxBodyBytes: 1000, producer: { delayMs: 300 } });
    try {
      const a = post(r.proxy.url + '/v1/completions', { prompt: 'a' + 'x'.repeat(700) });
      await r.producers[0]!.waitForRequest();
      const status = await new Promise<number>((resolve, reject) => {
        const u = new URL(r.proxy.url);
        const req = httpRequest({ host: u.hostname, port: u.port, path: '/v1/completions', method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.write('{"prompt":"' + 'y'.repeat(400));
        req.end('"}');
      });
      assert.equal(status, 503);
      assert.equal((await a).status, 200);
    } finally {
      await r.close();
    }
  });
});

describe('every generation route passes the gate', () => {
  test('POST /v1/embeddings and /v1/responses take a rate-limit token; GET /v1/models does not', async () => {
    const r = await rig({ rateLimit: 0.2, burst: 1, onRateLimit: 'reject' });
    try {
      assert.notEqual((await post(r.proxy.url + '/v1/embeddings', { input: 'a', model: 'm' })).status, 429);
      assert.equal((await post(r.proxy.url + '/v1/responses', { input: 'a', model: 'm' })).status, 429);
      assert.equal((await post(r.proxy.url + '/v1/completions', { prompt: 'a' })).status, 429);
      for (let i = 0; i < 3; i++) assert.equal((await fetch(r.proxy.url + '/v1/models')).status, 200);
      assert.equal(r.consumers[0]!.calls().filter((c) => c.url === '/v1/responses').length, 0);
    } finally {
      await r.close();
    }
  });

  test('a forwarded POST waits for an admission slot like completions', async () => {
    const r = await rig({ maxConcurrent: 1, queueSize: 0, producer: { delayMs: 300 } });
    try {
      const first = post(r.proxy.url + '/v1/completions', { prompt: 'slow' });
      await r.producers[0]!.waitForRequest();
      const res = await post(r.proxy.url + '/v1/embeddings', { input: 'a', model: 'm' });
      assert.equal(res.status, 503);
      assert.equal(r.consumers[0]!.calls().filter((c) => c.url === '/v1/embeddings').length, 0);
      assert.equal((await first).status, 200);
    } finally {
      await r.close();
    }
  });
});

describe('path variants route like the canonical path or are refused', () => {
  let r: Rig;
  before(async () => {
    r = await rig();
  });
  after(() => r.close());

  const variants = ['/v1/completions/', '/v1/%63ompletions', '//v1/completions', '/v1//completions', '/v1/completions%2F'];
  for (const path of variants) {
    test(`POST ${path} runs both stages on /v1/completions`, async () => {
      const n = r.producers[0]!.calls().length;
      const res = await post(r.proxy.url + path, { prompt: 'a' });
      assert.equal(res.status, 200, res.text);
      assert.equal(r.producers[0]!.calls().length, n + 1, 'a prefill ran');
      assert.equal(r.producers[0]!.calls().at(-1)!.url, '/v1/completions');
      assert.equal(r.consumers[0]!.calls().at(-1)!.url, '/v1/completions');
      assert.equal(r.producers[0]!.calls().at(-1)!.json!.max_tokens, 1);
    });
  }

  test('chat variants too, and undecodable or dot-segment paths are refused before any engine', async () => {
    assert.equal((await post(r.proxy.url + '/v1/chat/completions/', chat())).status, 200);
    assert.equal(r.producers[0]!.calls().at(-1)!.url, '/v1/chat/completions');
    const n = r.producers[0]!.calls().length + r.consumers[0]!.calls().length;
    for (const bad of ['/v1/%ZZ', '/v1/x/../completions', '/v1/./completions', '/v1/%2e%2e/v1/completions']) {
      const res = await new Promise<number>((resolve, reject) => {
        const u = new URL(r.proxy.url);
        const req = httpRequest({ host: u.hostname, port: u.port, path: bad, method: 'POST', headers: { 'content-type': 'application/json' } }, (res) => {
          res.resume();
          resolve(res.statusCode!);
        });
        req.on('error', reject);
        req.end('{"prompt":"a"}');
      });
      assert.equal(res, 400, bad);
    }
    assert.equal(r.producers[0]!.calls().length + r.consumers[0]!.calls().length, n);
  });
});

test('deeply nested JSON is a 400 naming the problem, not a 502', async () => {
  const r = await rig();
  try {
    const depth = 100_000;
    const body = `{"prompt":"a","logit_bias":${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const res = await post(r.proxy.url + '/v1/completions', body);
    assert.equal(res.status, 400, res.text);
    assert.match(res.json.error.message, /nested too deeply/);
    assert.equal(r.producers[0]!.calls().length, 0);
  } finally {
    await r.close();
  }
});
