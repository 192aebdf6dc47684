/**
 * Conformance: streaming usage.
 * vllm/entrypoints/openai/utils.py should_include_usage (used by serving_chat.py / serving_completion.py):
 *   with stream_options: include_usage = stream_options.include_usage or --enable-force-include-usage,
 *                        continuous = include_usage and stream_options.continuous_usage_stats;
 *   without: include_usage = --enable-force-include-usage, continuous = False.
 * The final usage chunk has `choices: []`; continuous usage puts `usage` on every chunk.
 * vllm/entrypoints/openai/protocol.py: stream_options without stream=True is a 400.
 */
import { describe, test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { startSim, type SimHandle } from '../helpers/sim.js';
import { postJson, sseData } from './sse.js';

const chunks = (text: string): any[] => sseData(text).slice(0, -1).map((d) => JSON.parse(d));

describe('stream usage', () => {
  let plain: SimHandle;
  let forced: SimHandle;
  before(async () => {
    [plain, forced] = await Promise.all([startSim(), startSim({ args: ['--enable-force-include-usage'] })]);
  });
  after(async () => {
    await Promise.all([plain.stop(), forced.stop()]);
  });
  const body = (so?: object) => ({ prompt: 'hello there', max_tokens: 3, stream: true, ...(so ? { stream_options: so } : {}) });

  test('default: no usage; include_usage: one final usage chunk; continuous_usage_stats: usage on every chunk', async () => {
    const none = chunks((await postJson(`${plain.url}/v1/completions`, body())).text);
    assert.ok(none.every((c) => c.usage === null || c.usage === undefined));
    const noInclude = chunks((await postJson(`${plain.url}/v1/completions`, body({ include_usage: false, continuous_usage_stats: true }))).text);
    assert.ok(noInclude.every((c) => !c.usage), 'continuous_usage_stats needs include_usage');
    const inc = chunks((await postJson(`${plain.url}/v1/completions`, body({ include_usage: true }))).text);
    assert.deepEqual(inc.at(-1).choices, []);
    assert.equal(inc.at(-1).usage.completion_tokens, 3);
    assert.ok(inc.slice(0, -1).every((c) => c.usage === null));
    const cont = chunks((await postJson(`${plain.url}/v1/completions`, body({ include_usage: true, continuous_usage_stats: true }))).text);
    assert.deepEqual(cont.slice(0, -1).map((c) => c.usage.completion_tokens), [1, 2, 3]);
  });

  test('--enable-force-include-usage: the usage chunk comes without stream_options', async () => {
    const forcedChunks = chunks((await postJson(`${forced.url}/v1/chat/completions`, { messages: [{ role: 'user', content: 'x' }], max_tokens: 2, stream: true })).text);
    assert.deepEqual(forcedChunks.at(-1).choices, []);
    assert.equal(forcedChunks.at(-1).usage.completion_tokens, 2);
  });

  test('errors carry vLLM\'s param: VLLMValidationError(parameter=...) since 0.14', async () => {
    const r = await postJson(`${plain.url}/v1/completions`, { prompt: 'x', max_tokens: 0 });
    assert.equal(r.status, 400);
    assert.deepEqual(r.json.error, { message: 'max_tokens must be at least 1, got 0. (parameter=max_tokens, value=0)', type: 'BadRequestError', param: 'max_tokens', code: 400 });
    const so = await postJson(`${plain.url}/v1/completions`, { prompt: 'x', stream_options: { include_usage: true } });
    assert.equal(so.status, 400);
    assert.match(so.json.error.message, /Stream options can only be defined when `stream=True`/);
  });
});
