/**
 * Conformance: Content-Type of JSON routes.
 * vllm/entrypoints/utils.py validate_json_request (a dependency of /v1/completions, /v1/chat/completions,
 * /tokenize, /detokenize …): `content_type.split(";", maxsplit=1)[0]` of the lower-cased header must be exactly
 * "application/json", else RequestValidationError(["Unsupported Media Type: Only 'application/json' is allowed"]),
 * answered by the server's validation handler with 400 and vLLM's error envelope (type "Bad Request").
 * The API-key middleware runs first (401 before 400).
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, type SimHandle } from '../helpers/sim.js';

const REFUSAL = { error: { message: `["Unsupported Media Type: Only 'application/json' is allowed"]`, type: 'Bad Request', param: null, code: 400 } };

describe('Content-Type', () => {
  let sim: SimHandle;
  before(async () => {
    sim = await startSim({ args: ['--api-key', 'k'] });
  });
  after(async () => {
    await sim.stop();
  });
  const post = (path: string, contentType: string | null, auth = true): Promise<Response> => {
    const headers: Record<string, string> = auth ? { authorization: 'Bearer k' } : {};
    if (contentType !== null) headers['content-type'] = contentType;
    return fetch(`${sim.url}${path}`, { method: 'POST', headers, body: JSON.stringify({ prompt: 'hello', max_tokens: 1 }) });
  };

  test('a generation request without application/json is refused with 400 in vLLM\'s envelope', async () => {
    for (const ct of [null, 'text/plain', 'application/x-www-form-urlencoded', 'application/jsonl', 'application/json ; charset=utf-8']) {
      const r = await post('/v1/completions', ct);
      assert.equal(r.status, 400, String(ct));
      assert.deepEqual(await r.json(), REFUSAL);
    }
    // curl -d sends application/x-www-form-urlencoded: refused on every JSON route.
    for (const path of ['/v1/chat/completions', '/tokenize', '/detokenize']) {
      const r = await post(path, 'application/x-www-form-urlencoded');
      assert.equal(r.status, 400, path);
      assert.deepEqual(await r.json(), REFUSAL);
    }
  });

  test('application/json with parameters and in any case is accepted; the API key is checked first', async () => {
    for (const ct of ['application/json', 'application/json; charset=utf-8', 'Application/JSON']) assert.equal((await post('/v1/completions', ct)).status, 200, ct);
    assert.equal((await post('/v1/completions', 'text/plain', false)).status, 401);
  });
});
