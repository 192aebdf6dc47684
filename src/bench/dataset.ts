/**
 * Prompts for a run.
 * - random: exact input lengths. Completions send token ids (exact by construction). Chat needs text: when
 *   the model path is a local directory with a readable tokenizer.json, the text is built from whole-word
 *   vocabulary entries (" word" pieces of a byte-level BPE, "▁word" of a SentencePiece vocab), one token each;
 *   otherwise from common short English words, which BPE tokenizers encode as one token each with a leading
 *   space (the documented approximation; exact on pd's simulator). The chat template adds its own tokens on
 *   top, exactly as with `vllm bench serve`; the server's usage.prompt_tokens is recorded when sent.
 * - sharegpt: a ShareGPT JSON file ([{conversations: [{from: "human", value}, {from: "gpt", value}]}]): first
 *   human turn as prompt, output length from the first gpt turn (≈ chars/4 tokens) unless an output length is
 *   given.
 * - jsonl: one prompt per line, either a JSON string or {"prompt"|"text": "...", "output_len"|"max_tokens": N}.
 */
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ConfigError, UsageError } from '../util/errors.js';
import { seededRandom } from './arrivals.js';
import type { Endpoint, PromptSpec } from './request.js';
import { WORDS } from '../sim/tokenizer.js';

export type DatasetSpec =
  | { kind: 'random'; inputLen: number; outputLen: number }
  | { kind: 'sharegpt'; path: string; outputLen?: number }
  | { kind: 'jsonl'; path: string; outputLen?: number };

export interface DatasetOptions {
  count: number;
  endpoint: Endpoint;
  seed: number;
  /** Model path or hub id (a local dir with tokenizer.json makes chat prompt lengths exact). */
  model?: string;
}

export function describeDataset(d: DatasetSpec): string {
  return d.kind === 'random' ? 'random' : `${d.kind}:${d.path}`;
}

/** Token-count approximation used when no tokenizer is available: ~4 characters per token. */
export function approxTokens(text: string): number {
  return Math.max(1, Math.ceil(text.length / 4));
}

export interface WordVocab {
  /** Words that are one token each with a leading space. */
  words: string[];
  /** A word that is also one token without a leading space (starts the text). */
  first: string;
  source: string;
}

const FALLBACK_WORDS = WORDS.slice(0, 300).filter((w) => /^[a-z]{2,}$/.test(w));

export function fallbackVocab(): WordVocab {
  return { words: FALLBACK_WORDS, first: 'the', source: 'approximation (common English words, ~1 token each)' };
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

/** Text of exactly `n` tokens for the given whole-word vocabulary. */
export function textOfTokens(n: number, vocab: WordVocab, rand: () => number): string {
  if (n <= 0) return '';
  const parts = [vocab.first];
  for (let i = 1; i < n; i++) parts.push(vocab.words[Math.floor(rand() * vocab.words.length)]!);
  return parts.join(' ');
}

function randomPrompts(d: Extract<DatasetSpec, { kind: 'random' }>, o: DatasetOptions, vocab: WordVocab): PromptSpec[] {
  const rand = seededRandom(o.seed + 7);
  const out: PromptSpec[] = [];
  for (let i = 0; i < o.count; i++) {
    if (o.endpoint === 'completions') {
      // Ids well inside any real vocabulary, away from special tokens (like vLLM's offset trick).
      const offset = Math.floor(rand() * 20000);
      const ids = Array.from({ length: d.inputLen }, (_, k) => 1000 + ((offset + i + k * 7) % 20000));
      out.push({ prompt: ids, promptLen: d.inputLen, outputLen: d.outputLen });
    } else {
      out.push({ prompt: textOfTokens(d.inputLen, vocab, rand), promptLen: d.inputLen, outputLen: d.outputLen });
    }
  }
  return out;
}

interface FilePrompt {
  text: string;
  outputLen?: number;
}

async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read dataset file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: 'pass an existing ShareGPT JSON or JSONL file with --dataset-path',
    });
  }
}

export function parseShareGpt(text: string, path: string): FilePrompt[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`, { hint: 'a ShareGPT file is a JSON array of {conversations: [...]}' });
  }
  if (!Array.isArray(data)) throw new ConfigError(`${path}: a ShareGPT file must be a JSON array`);
  const out: FilePrompt[] = [];
  for (const entry of data) {
    const conv = (entry as { conversations?: unknown })?.conversations;
    if (!Array.isArray(conv) || conv.length < 2) continue;
    const human = conv.find((t) => (t as { from?: string }).from === 'human' || (t as { from?: string }).from === 'user') as { value?: unknown } | undefined;
    const gpt = conv.find((t) => (t as { from?: string }).from === 'gpt' || (t as { from?: string }).from === 'assistant') as { value?: unknown } | undefined;
    if (typeof human?.value !== 'string' || human.value.trim() === '') continue;
    const reply = typeof gpt?.value === 'string' ? gpt.value : '';
    out.push({ text: human.value, outputLen: reply ? approxTokens(reply) : undefined });
  }
  if (out.length === 0) throw new ConfigError(`${path}: no usable conversations (need a human turn followed by a gpt turn)`);
  return out;
}

export function parseJsonl(text: string, path: string): FilePrompt[] {
  const out: FilePrompt[] = [];
  text.split(/\r?\n/).forEach((line, i) => {
    if (line.trim() === '') return;
    let v: unknown;
    try {
      v = JSON.parse(line);
    } catch {
      throw new ConfigError(`${path}:${i + 1}: not a JSON line`, { hint: 'each line must be a JSON string or {"prompt": "...", "output_len": N}' });
    }
    if (typeof v === 'string') return void out.push({ text: v });
    const o = v as { prompt?: unknown; text?: unknown; output_len?: unknown; max_tokens?: unknown };
    const t = typeof o?.prompt === 'string' ? o.prompt : typeof o?.text === 'string' ? o.text : null;
    if (t === null) throw new ConfigError(`${path}:${i + 1}: no "prompt" string`, { hint: 'each line must be a JSON string or {"prompt": "...", "output_len": N}' });
    const n = typeof o.output_len === 'number' ? o.output_len : typeof o.max_tokens === 'number' ? o.max_tokens : undefined;
    out.push({ text: t, outputLen: n });
  });
  if (out.length === 0) throw new ConfigError(`${path}: no prompts`);
  return out;
}

/** Build `count` prompts (file datasets are shuffled by seed and cycled when shorter than count). */
export async function loadPrompts(d: DatasetSpec, o: DatasetOptions): Promise<{ prompts: PromptSpec[]; vocabSource: string | null }> {
  if (d.kind === 'random') {
    if (d.inputLen < 1 || d.outputLen < 1) throw new UsageError('input and output lengths must be at least 1');
    const vocab = o.endpoint === 'chat' ? ((await vocabFromTokenizerJson(o.model)) ?? fallbackVocab()) : null;
    return { prompts: randomPrompts(d, o, vocab ?? fallbackVocab()), vocabSource: vocab?.source ?? null };
  }
  const text = await readText(d.path);
  const items = d.kind === 'sharegpt' ? parseShareGpt(text, d.path) : parseJsonl(text, d.path);
  const rand = seededRandom(o.seed + 11);
  const order = items.map((_, i) => i);
  for (let i = order.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [order[i], order[j]] = [order[j]!, order[i]!];
  }
  const prompts: PromptSpec[] = [];
  for (let i = 0; i < o.count; i++) {
    const it = items[order[i % order.length]!]!;
    prompts.push({ prompt: it.text, promptLen: approxTokens(it.text), outputLen: d.outputLen ?? it.outputLen ?? 128 });
  }
  return { prompts, vocabSource: null };
}
