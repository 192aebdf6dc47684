/** callUpstream (undici's dispatch handler API) against real sockets: reads, queued chunks, aborts, cancel. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Pool } from 'undici';
import { callUpstream, type UpstreamCallOptions } from '../../src/proxy/upstream-call.js';
import { AbortFlag } from '../../src/proxy/abort-flag.js';

async function server(handler: (req: IncomingMessage, res: ServerResponse) => void) {
  const s = createServer(handler);
  await new Promise<void>((r) => s.listen(0, '127.0.0.1', r));
  const pool = new Pool(`http://127.0.0.1:${(s.address() as AddressInfo).port}`, { connections: 1 });
  return {
    pool,
    close: async () => {
      await pool.destroy();
      s.closeAllConnections();
      await new Promise((r) => s.close(r));
    },
  };
}

const opts = (signal = new AbortFlag()): UpstreamCallOptions => ({
  method: 'POST',
  path: '/x',
  headers: { 'content-type': 'application/json' },
  body: '{}',
  signal,
  headersTimeout: 5000,
  bodyTimeout: 5000,
});

test('chunks that arrive before the body is read are kept, in order, then the rest streams', async () => {
  const t = await server((_req, res) => {
    res.writeHead(201, { 'content-type': 'text/event-stream', 'x-a': 'b' });
    res.write('one ');
    setTimeout(() => res.end('two'), 30);
  });
  try {
    const r = await callUpstream(t.pool, opts());
    assert.equal(r.statusCode, 201);
    assert.equal(r.headers['x-a'], 'b');
    await new Promise((res) => setTimeout(res, 10)); // 'one ' is queued by now
    assert.equal(await r.body.text(), 'one two');
    // A body is read once.
    assert.throws(() => r.body.pipe({ data: () => true, end() {}, error() {} }), /only once/);
  } finally {
    await t.close();
  }
});

test('aborting while waiting for a connection rejects at once and never reaches the engine', async () => {
  let seen = 0;
  let release!: () => void;
  const t = await server((req, res) => {
    seen++;
    if (req.headers['x-hold']) {
      release = () => res.end('held');
      return;
    }
    res.end('ok');
  });
  try {
    // The pool has one connection: hold it, so the next call waits for it.
    const held = callUpstream(t.pool, { ...opts(), headers: { 'x-hold': '1' } });
    while (seen === 0) await new Promise((r) => setTimeout(r, 5));
    const flag = new AbortFlag();
    const queued = callUpstream(t.pool, opts(flag));
    flag.abort(new Error('client went away'));
    await assert.rejects(queued, /client went away/);
    release();
    assert.equal(await (await held).body.text(), 'held');
    // The aborted call never reached the server; the connection still serves the next one.
    assert.equal(await (await callUpstream(t.pool, opts())).body.text(), 'ok');
    assert.equal(seen, 2);
  } finally {
    await t.close();
  }
});

test('aborting mid-body closes the engine connection and fails the reader', async () => {
  let closed!: () => void;
  const engineSawClose = new Promise<void>((r) => (closed = r));
  const t = await server((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/event-stream' });
    res.write('data: 1\n\n');
    res.on('close', () => closed());
  });
  try {
    const flag = new AbortFlag();
    const r = await callUpstream(t.pool, opts(flag));
    const got: string[] = [];
    const failed = new Promise<Error>((resolve) => r.body.pipe({ data: (c) => (got.push(String(c)), true), end() {}, error: resolve }));
    while (got.length === 0) await new Promise((res) => setTimeout(res, 5));
    flag.abort(new Error('stop'));
    assert.match((await failed).message, /stop/);
    await engineSawClose;
  } finally {
    await t.close();
  }
});

test('cancel() of a body nobody read aborts the response; after a read it does nothing', async () => {
  let closed!: () => void;
  const engineSawClose = new Promise<void>((r) => (closed = r));
  const t = await server((req, res) => {
    res.writeHead(200);
    if (req.headers['x-short']) return void res.end('short');
    res.write('endless…');
    res.on('close', () => closed());
  });
  try {
    const r = await callUpstream(t.pool, opts());
    r.body.cancel();
    await engineSawClose;
    const s = await callUpstream(t.pool, { ...opts(), headers: { 'x-short': '1' } });
    const text = s.body.text();
    s.body.cancel();
    assert.equal(await text, 'short');
  } finally {
    await t.close();
  }
});

test('a connection error before the headers rejects with its code', async () => {
  const t = await server(() => {});
  const { pool } = t;
  await t.close();
  const dead = new Pool('http://127.0.0.1:9', { connections: 1 });
  try {
    await assert.rejects(callUpstream(dead, opts()), (e: { code?: string }) => e.code === 'ECONNREFUSED');
    await assert.rejects(callUpstream(pool, opts())); // a destroyed pool throws synchronously inside dispatch
  } finally {
    await dead.destroy();
  }
});
