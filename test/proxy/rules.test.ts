/** Pure rules of the proxy: canonical paths, the content-type test, deadlines, the failure table, P2P ids. */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { canonicalPath } from '../../src/proxy/router.js';
import { isJsonContentType } from '../../src/proxy/request-checks.js';
import { checkEveryMs, effectiveDeadlineMs } from '../../src/proxy/http-server.js';
import { FAILURE_STATUS, neverSent, upstreamFailure } from '../../src/proxy/failures.js';
import { p2pRequestId, usesP2pRequestIds } from '../../src/proxy/stage-bodies.js';
import { stripHopByHop } from '../../src/proxy/headers.js';

test('canonical paths: decoded, slashes folded; undecodable and dot segments refused', () => {
  const same: [string, string][] = [
    ['/v1/completions', '/v1/completions'],
    ['/v1/completions?x=1', '/v1/completions'],
    ['/v1/completions/', '/v1/completions'],
    ['//v1//chat///completions/', '/v1/chat/completions'],
    ['/v1/%63hat/completions', '/v1/chat/completions'],
    ['/v1/completions%2F', '/v1/completions'],
    ['/', '/'],
    ['/v1/files/a.b', '/v1/files/a.b'],
    ['/v1/.well-known', '/v1/.well-known'],
  ];
  for (const [url, path] of same) assert.equal(canonicalPath(url), path, url);
  for (const bad of ['/v1/%ZZ', '/v1/../x', '/v1/./completions', '/v1/%2e%2e/x', '/v1/a%00b', 'v1/completions', '*'])
    assert.equal(canonicalPath(bad), null, bad);
});

test('JSON content type as vLLM compares it: the media type before ";", case-insensitive, no trimming', () => {
  const ok = ['application/json', 'application/json; charset=utf-8', 'APPLICATION/JSON', 'application/json;x=y'];
  const no = [undefined, '', 'text/plain', 'application/jsonl', 'application/json ; charset=utf-8', 'application/x-www-form-urlencoded'];
  for (const ct of ok) assert.equal(isJsonContentType({ 'content-type': ct }), true, ct);
  for (const ct of no) assert.equal(isJsonContentType(ct === undefined ? {} : { 'content-type': ct }), false, String(ct));
});

test('deadlines are checked often enough to cut a client within its time, and not much before', () => {
  for (const ms of [100, 400, 10_000, 30_000, 60_000, 600_000]) {
    const every = checkEveryMs(ms);
    const at = effectiveDeadlineMs(ms);
    assert.ok(every >= 25 && every <= 500, `${ms}: every ${every}`);
    assert.ok(at + every <= ms, `${ms}: cut by ${at + every}`);
    assert.ok(at >= ms * 0.95 || ms < 1000, `${ms}: not before ${at}`);
  }
});

test('the failure table: statuses, and retries only for errors that prove nothing was sent', () => {
  assert.equal(FAILURE_STATUS.timeout, 504);
  assert.equal(FAILURE_STATUS.upstream_error, 502);
  assert.equal(FAILURE_STATUS.no_engine, 503);
  assert.equal(FAILURE_STATUS.request_timeout, 408);
  const err = (code: string): Error => Object.assign(new Error(code), { code });
  for (const c of ['ECONNREFUSED', 'UND_ERR_CONNECT_TIMEOUT', 'ENOTFOUND', 'EHOSTUNREACH']) assert.equal(neverSent(err(c)), true, c);
  for (const c of ['ECONNRESET', 'EPIPE', 'UND_ERR_SOCKET', 'UND_ERR_CLOSED', 'UND_ERR_HEADERS_TIMEOUT']) assert.equal(neverSent(err(c)), false, c);
  assert.equal(upstreamFailure(err('UND_ERR_HEADERS_TIMEOUT'), 'decode').status, 504);
  assert.equal(upstreamFailure(err('ECONNRESET'), 'decode').status, 502);
});

test('P2P NCCL request ids as vLLM\'s example proxy builds them', () => {
  assert.equal(p2pRequestId('10.0.0.1:21001', '10.0.0.2:22001', 'abc'), '___prefill_addr_10.0.0.1:21001___decode_addr_10.0.0.2:22001_abc');
  assert.equal(usesP2pRequestIds('P2pNcclConnector'), true);
  assert.equal(usesP2pRequestIds('NixlConnector'), false);
  assert.equal(usesP2pRequestIds(null), false);
});

test('hop-by-hop removal is one pure function (input untouched)', () => {
  const h = { connection: 'keep-alive, x-a', 'x-a': '1', 'keep-alive': 'timeout=5', te: 'trailers', 'x-b': '2' };
  const copy = { ...h };
  assert.deepEqual(stripHopByHop(h), { 'x-b': '2' });
  assert.deepEqual(h, copy);
});
