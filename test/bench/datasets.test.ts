/** Prompts: vLLM's random dataset rules, prefix-sharing, multi-turn, ShareGPT pruning, exact lengths via /tokenize. */
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { loadPrompts } from '../../src/bench/dataset.ts';
import { BENCH_WORDS, benchVocab } from '../../src/bench/datasets/vocab.ts';
import { sampleLengths, syntheticPrompts } from '../../src/bench/datasets/synthetic.ts';
import { isValidSequence, parseShareGpt, shareGptPrompts } from '../../src/bench/datasets/files.ts';
import { seededRandom } from '../../src/bench/arrivals.ts';
import { tokenize, tokenizeChat } from '../../src/sim/tokenizer.ts';
import { alignPrompts, findServerTokenizer } from '../../src/bench/datasets/server-tokenizer.ts';
import { startFixedUpstream, type FixedUpstream } from './fixed-upstream.ts';
import { tempDir } from '../helpers/tmp.ts';

const ups: FixedUpstream[] = [];
after(async () => Promise.all(ups.map((u) => u.close())));

test("the bench's words are one token each on the simulator's tokenizer (so chat prompts are exact there)", () => {
  assert.ok(BENCH_WORDS.length >= 200);
  for (const w of BENCH_WORDS) assert.equal(tokenize(' ' + w).length, 1, w);
  const [p] = syntheticPrompts({ kind: 'random', inputLen: 512, outputLen: 8 }, { count: 1, endpoint: 'chat', seed: 3, vocab: benchVocab() });
  assert.equal(tokenize(p!.prompt as string).length, 512, '512 asked is 512 on the simulator');
});

test('random: lengths uniform in [len(1-r), len(1+r)], output at least 1; prefix shared; fresh per seed', () => {
  const rand = seededRandom(1);
  const lens = sampleLengths(100, 0.25, 4000, rand);
  assert.equal(Math.min(...lens), 75);
  assert.equal(Math.max(...lens), 125);
  assert.ok(Math.abs(lens.reduce((a, b) => a + b, 0) / lens.length - 100) < 1.5);
  assert.equal(Math.min(...sampleLengths(1, 0.9, 200, rand, 1)), 1, 'output lengths never reach 0');
  const spec = { kind: 'random' as const, inputLen: 40, outputLen: 8, rangeRatio: 0.5, prefixLen: 16 };
  const ps = syntheticPrompts(spec, { count: 50, endpoint: 'completions', seed: 1, vocab: benchVocab() });
  for (const p of ps) {
    const ids = p.prompt as number[];
    assert.equal(ids.length, p.promptLen, 'token ids: the length is exact');
    assert.ok(p.promptLen >= 16 + 20 && p.promptLen <= 16 + 60);
    assert.ok(p.outputLen >= 4 && p.outputLen <= 12);
    assert.deepEqual(ids.slice(0, 16), (ps[0]!.prompt as number[]).slice(0, 16), 'one shared prefix per run');
    assert.ok(ids.every((id) => id >= 1000 && id < 21000), 'no special tokens');
  }
  const chat = syntheticPrompts(spec, { count: 20, endpoint: 'chat', seed: 1, vocab: benchVocab() });
  for (const p of chat) assert.equal(tokenize(p.prompt as string).length, p.promptLen);
  const other = syntheticPrompts(spec, { count: 20, endpoint: 'chat', seed: 2, vocab: benchVocab() });
  assert.notEqual(other[0]!.prompt, chat[0]!.prompt, 'another seed, other prompts (no cache reuse across runs)');
});

test('prefix-sharing: K shared system prompts, each used equally often, plus a unique question', () => {
  const ps = syntheticPrompts({ kind: 'prefix-sharing', inputLen: 12, outputLen: 4, prefixLen: 30, numPrefixes: 3 }, { count: 30, endpoint: 'chat', seed: 5, vocab: benchVocab() });
  const systems = new Map<string, number>();
  for (const p of ps) {
    assert.equal(p.messages![0]!.role, 'system');
    assert.equal(tokenize(p.messages![0]!.content).length, 30);
    assert.equal(tokenize(p.messages![1]!.content).length, 12);
    assert.equal(p.promptLen, 42);
    systems.set(p.messages![0]!.content, (systems.get(p.messages![0]!.content) ?? 0) + 1);
  }
  assert.deepEqual([...systems.values()], [10, 10, 10]);
  assert.equal(new Set(ps.map((p) => p.messages![1]!.content)).size, 30, 'every question is unique');
});

test('multi-turn: turn t resends the earlier turns byte for byte, rounds go turn by turn', () => {
  const ps = syntheticPrompts({ kind: 'multi-turn', inputLen: 10, outputLen: 6, turns: 3 }, { count: 12, endpoint: 'chat', seed: 2, vocab: benchVocab() });
  assert.deepEqual(ps.map((p) => p.turn), [1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3]);
  for (const p of ps) {
    assert.equal(p.messages!.length, 2 * p.turn! - 1);
    assert.equal(p.promptLen, p.turn! * 10 + (p.turn! - 1) * 6);
    const later = ps.find((q) => q.group === p.group && q.turn === p.turn! + 1);
    if (later) assert.deepEqual(later.messages!.slice(0, p.messages!.length), p.messages, 'history is resent unchanged');
  }
  const ids = syntheticPrompts({ kind: 'multi-turn', inputLen: 10, outputLen: 6, turns: 2 }, { count: 4, endpoint: 'completions', seed: 2, vocab: benchVocab() });
  assert.deepEqual((ids[2]!.prompt as number[]).slice(0, 10), ids[0]!.prompt, 'completions: the head of turn 2 is turn 1');
  assert.equal((ids[2]!.prompt as number[]).length, 26);
});

test("ShareGPT as vLLM: turns 0 and 1, pruned when too short or too long, oversampled when short", async () => {
  assert.equal(isValidSequence(3, 100, false), false, 'prompt shorter than 4');
  assert.equal(isValidSequence(10, 3, false), false, 'completion shorter than 4');
  assert.equal(isValidSequence(10, 3, true), true, 'the output check is skipped when an output length is given');
  assert.equal(isValidSequence(1025, 10, false), false, 'prompt longer than 1024');
  assert.equal(isValidSequence(1000, 1049, false), false, 'together longer than 2048');
  const data = [
    { conversations: [{ from: 'human', value: 'tiny' }, { from: 'gpt', value: 'a long enough answer text here' }] },
    { conversations: [{ from: 'human', value: 'a question that is long enough to keep' }, { from: 'gpt', value: 'an answer that is long enough to keep too' }] },
    { conversations: [{ from: 'human', value: 'only one turn' }] },
  ];
  const items = parseShareGpt(JSON.stringify(data), 'x.json');
  assert.equal(items.length, 2, 'entries with fewer than two turns are dropped');
  const r = await shareGptPrompts(items, { count: 5, seed: 0, countTokens: null });
  assert.equal(r.pruned, 1);
  assert.equal(r.prompts.length, 5);
  assert.ok(r.prompts.every((p) => p.prompt === data[1]!.conversations[0]!.value));
});

test('exact chat lengths with the target\'s /tokenize: words it splits are dropped, long prompts are trimmed', async () => {
  // A tokenizer that splits words longer than 6 letters (e.g. "country"): the calibration drops them.
  const up = await startFixedUpstream({ tokenizer: true });
  ups.push(up);
  const { prompts, tokens } = await loadPrompts(
    { kind: 'prefix-sharing', inputLen: 20, outputLen: 4, prefixLen: 15, numPrefixes: 2 },
    { count: 6, endpoint: 'chat', seed: 1, tokenizer: { target: up.url, model: 'fixed-model' } },
  );
  assert.equal(tokens.source, `server:${up.url}/tokenize`);
  assert.equal(tokens.chat_template_tokens, 2, 'the template adds <s> and </s> around the message');
  const count = (t: string) => t.split(/\s+/).filter(Boolean).reduce((n, w) => n + Math.ceil(w.length / 6), 0);
  for (const p of prompts) {
    assert.deepEqual(p.messages!.map((m) => count(m.content)), [15, 20]);
    assert.ok(p.messages!.every((m) => m.content.split(' ').every((w) => w.length <= 6)), 'only words the server keeps whole');
  }
  // Prompts made from words the server splits are re-encoded and trimmed to their length (vLLM's decode,
  // re-encode and truncate).
  const tok = (await findServerTokenizer({ target: up.url, model: 'm' }))!;
  const long = syntheticPrompts({ kind: 'random', inputLen: 40, outputLen: 2 }, { count: 5, endpoint: 'chat', seed: 9, vocab: { words: ['country', 'between'], first: 'thought', source: 'test' } });
  const changed = await alignPrompts(long, tok, benchVocab(), seededRandom(1));
  assert.equal(changed, 5);
  for (const p of long) assert.equal(count(p.prompt as string), 40);
  // Without a tokenizer on the target, the word list is used as is (and says so).
  const plain = await startFixedUpstream({});
  ups.push(plain);
  const r = await loadPrompts({ kind: 'random', inputLen: 9, outputLen: 2 }, { count: 2, endpoint: 'chat', seed: 1, tokenizer: { target: plain.url, model: 'm' } });
  assert.match(r.tokens.source, /pd word list/);
  assert.equal(tokenizeChat([{ role: 'user', content: r.prompts[0]!.prompt }]).length - tokenizeChat([{ role: 'user', content: '' }]).length, 9);
  const { dir, cleanup } = await tempDir('pd-ds-');
  try {
    await writeFile(join(dir, 's.json'), JSON.stringify([{ conversations: [{ value: 'one two three four five' }, { value: 'six seven eight nine' }] }]));
    const s = await loadPrompts({ kind: 'sharegpt', path: join(dir, 's.json') }, { count: 1, endpoint: 'chat', seed: 0, tokenizer: { target: up.url, model: 'm' } });
    assert.deepEqual([s.prompts[0]!.promptLen, s.prompts[0]!.outputLen], [5, 4], 'ShareGPT lengths from the tokenizer');
  } finally {
    await cleanup();
  }
});
