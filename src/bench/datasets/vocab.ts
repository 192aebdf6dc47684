/**
 * The bench's own prompt vocabulary: words that common tokenizers encode as ONE token each when preceded by a
 * space (GPT-2/tiktoken-style byte-level BPE as in Qwen and Llama 3, and SentencePiece as in Llama 2 and
 * Mistral all have " the", " water", " house" … as single pieces, and split on spaces before merging). A text
 * "w1 w2 … wn" of these words is therefore n tokens on those tokenizers, and exactly n on pd's simulator, whose
 * vocabulary contains every one of them. The chat template adds its own tokens on top, as with vLLM.
 *
 * When a model's tokenizer.json is readable locally, its whole-word pieces are used instead; when the target
 * serves /tokenize, server-tokenizer.ts keeps only the words it confirms are single tokens and trims any prompt
 * that still comes out long (what `vllm bench serve` does with its own tokenizer).
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';

/** Short, frequent English words (each a single token with a leading space on the tokenizers above). */
export const BENCH_WORDS: readonly string[] = (
  'the of and to in is it you that he was for on are with as his they be at one have this from or had by ' +
  'but what some we can out other were all there when up use your how said an each she which do their time if ' +
  'will way about many then them would like so these her long make thing see him two has look more day could ' +
  'go come did number no most people my over know water than call first who may down side been now find any ' +
  'new work part take get place made live where after back little only round man year came show every good me ' +
  'give our under name very through just form great think say help low line turn cause much mean before move ' +
  'right boy old too same tell does set three want air well also play small end put home read hand port large ' +
  'add even land here must big high such follow act why ask men change went light kind off need house try us ' +
  'again animal point mother world near build self earth father head stand own page should country found answer ' +
  'school grow study still learn plant cover food sun four between state keep eye never last let thought city ' +
  'tree cross farm hard start might story saw far sea draw left late run while press close night real life few north'
).split(' ');

export interface WordVocab {
  /** Words that are one token each with a leading space. */
  words: readonly string[];
  /** A word that is also one token without a leading space (starts the text). */
  first: string;
  /** Where the words come from (recorded in the result). */
  source: string;
}

export function benchVocab(): WordVocab {
  return { words: BENCH_WORDS, first: 'the', source: 'pd word list (one token per word on common tokenizers)' };
}

/** Whole-word pieces of a local tokenizer.json, or null when there is none. */
export async function vocabFromTokenizerJson(modelPath: string | undefined): Promise<WordVocab | null> {
  if (!modelPath) return null;
  const file = join(modelPath, 'tokenizer.json');
  try {
    if (!(await stat(file)).isFile()) return null;
    const json = JSON.parse(await readFile(file, 'utf8')) as { model?: { vocab?: unknown } };
    const vocab = json.model?.vocab;
    let pieces: string[] = [];
    if (vocab && typeof vocab === 'object' && !Array.isArray(vocab)) pieces = Object.keys(vocab);
    else if (Array.isArray(vocab)) pieces = vocab.map((v) => (Array.isArray(v) ? String(v[0]) : String(v)));
    const set = new Set(pieces);
    for (const marker of ['Ġ', '▁']) {
      const words = pieces.filter((p) => p.startsWith(marker) && /^[a-z]{3,10}$/.test(p.slice(1))).map((p) => p.slice(1));
      if (words.length >= 100) {
        const first = words.find((w) => set.has(w)) ?? words[0]!;
        return { words: words.slice(0, 8000), first, source: `tokenizer.json (${file})` };
      }
    }
    return null;
  } catch {
    return null;
  }
}

/** Text of exactly `n` vocabulary words (n tokens on a tokenizer that has each word as one piece). */
export function textOfTokens(n: number, vocab: WordVocab, rand: () => number): string {
  if (n <= 0) return '';
  const parts = [vocab.first];
  const w = vocab.words;
  for (let i = 1; i < n; i++) parts.push(w[Math.floor(rand() * w.length)]!);
  return parts.join(' ');
}

/** `n` more words to append to a text (each with its leading space). */
export function moreWords(n: number, vocab: WordVocab, rand: () => number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += ' ' + vocab.words[Math.floor(rand() * vocab.words.length)]!;
  return s;
}

/** Token-count approximation used when no tokenizer is available: ~4 characters per token. */
export function approxTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}
