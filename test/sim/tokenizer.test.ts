import { test } from 'node:test';
import assert from 'node:assert/strict';
import { tokenize, detokenize, promptOfLength, applyChatTemplate, tokenizeChat, wordTokenId, VOCAB_SIZE } from '../../src/sim/tokenizer.js';

test('tokenize/detokenize round-trip any text, including unicode and special tokens', () => {
  for (const t of ['', 'Hello world', '  two  spaces\n\nand tabs\t!', 'ünïcødé 😀 text', '<|im_start|>user\nhi<|im_end|>', 'a<b>c']) {
    const ids = tokenize(t);
    assert.equal(detokenize(ids), t);
    for (const id of ids) assert.ok(id >= 0 && id < VOCAB_SIZE);
  }
});

test('token counts are stable and vocabulary words are one token each', () => {
  assert.equal(tokenize('the cache engine').length, 3);
  assert.deepEqual(tokenize('hello world'), tokenize('hello world'));
  assert.equal(tokenize(detokenize([wordTokenId(5, false), wordTokenId(9), wordTokenId(77)])).length, 3);
});

test('promptOfLength gives exactly n tokens, deterministically per seed', () => {
  for (const n of [1, 2, 17, 32, 100, 1000]) assert.equal(tokenize(promptOfLength(n, 3)).length, n);
  assert.equal(promptOfLength(50, 1), promptOfLength(50, 1));
  assert.notEqual(promptOfLength(50, 1), promptOfLength(50, 2));
});

test('chat template is ChatML with the generation prompt', () => {
  const text = applyChatTemplate([{ role: 'user', content: 'hi' }]);
  assert.equal(text, '<|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n');
  assert.equal(tokenizeChat([{ role: 'user', content: [{ type: 'text', text: 'hi' }] }]).length, tokenize(text).length);
});
