/**
 * Prompts for a run: the dataset spec (what the user asked for) → the prompts (datasets/synthetic.ts for random,
 * prefix-sharing and multi-turn; datasets/files.ts for ShareGPT and JSONL), with exact lengths from the target's
 * own tokenizer when it serves /tokenize (datasets/server-tokenizer.ts). What was used to count tokens is
 * returned so the result can say so.
 */
import { UsageError } from '../util/errors.js';
import { seededRandom } from './arrivals.js';
import type { Endpoint, PromptSpec } from './request.js';
import { benchVocab, vocabFromTokenizerJson } from './datasets/vocab.js';
import { syntheticPrompts, type SyntheticSpec } from './datasets/synthetic.js';
import { jsonlPrompts, parseJsonl, parseShareGpt, readText, shareGptPrompts } from './datasets/files.js';
import { alignPrompts, calibrateVocab, findServerTokenizer, type ServerTokenizer } from './datasets/server-tokenizer.js';

export type DatasetSpec = SyntheticSpec | { kind: 'sharegpt'; path: string; outputLen?: number } | { kind: 'jsonl'; path: string; outputLen?: number };

export function isSynthetic(d: DatasetSpec): d is SyntheticSpec {
  return d.kind === 'random' || d.kind === 'prefix-sharing' || d.kind === 'multi-turn';
}

export function describeDataset(d: DatasetSpec): string {
  if (d.kind === 'sharegpt' || d.kind === 'jsonl') return `${d.kind}:${d.path}`;
  const parts: string[] = [d.kind];
  if (d.rangeRatio) parts.push(`range-ratio=${d.rangeRatio}`);
  if (d.kind === 'random' && d.prefixLen) parts.push(`prefix=${d.prefixLen}`);
  if (d.kind === 'prefix-sharing') parts.push(`prefixes=${d.numPrefixes ?? 10}x${d.prefixLen ?? 256}`);
  if (d.kind === 'multi-turn') parts.push(`turns=${d.turns ?? 4}`);
  return parts.join(',');
}

export interface DatasetOptions {
  count: number;
  endpoint: Endpoint;
  seed: number;
  /** Model path or hub id (a local dir with tokenizer.json gives its whole-word pieces). */
  model?: string;
  /** Where to find a tokenizer: the target (and the running stack's engines behind a pd proxy). */
  tokenizer?: { target: string; stateDir?: string; model: string; apiKey?: string; headers?: Record<string, string> } | null;
}

export interface PromptTokens {
  /** What made the lengths exact: "token-ids", "server:<url>/tokenize", or the word list (an approximation). */
  source: string;
  /** Tokens the chat template adds to one user message (from /tokenize with messages), when known. */
  chat_template_tokens: number | null;
  /** Texts the server tokenizer had to trim or extend. */
  adjusted: number;
  /** ShareGPT pairs dropped by vLLM's pruning rules. */
  pruned: number;
}

export interface LoadedPrompts {
  prompts: PromptSpec[];
  tokens: PromptTokens;
}

async function templateTokens(tok: ServerTokenizer | null): Promise<number | null> {
  if (!tok) return null;
  const text = 'the water';
  const chat = await tok.encodeChat([{ role: 'user', content: text }]);
  if (!chat) return null;
  return chat.length - (await tok.encode(text)).length;
}

export async function loadPrompts(d: DatasetSpec, o: DatasetOptions): Promise<LoadedPrompts> {
  const tok = o.tokenizer ? await findServerTokenizer(o.tokenizer) : null;
  if (isSynthetic(d)) {
    if (d.inputLen < 1 || d.outputLen < 1) throw new UsageError('input and output lengths must be at least 1', { hint: 'e.g. --random-input-len 512 --random-output-len 128' });
    if (o.endpoint === 'completions') {
      return { prompts: syntheticPrompts(d, { ...o, vocab: benchVocab() }), tokens: { source: 'token-ids', chat_template_tokens: null, adjusted: 0, pruned: 0 } };
    }
    let vocab = (await vocabFromTokenizerJson(o.model)) ?? benchVocab();
    if (tok) vocab = await calibrateVocab(tok, vocab);
    const prompts = syntheticPrompts(d, { ...o, vocab });
    const adjusted = tok ? await alignPrompts(prompts, tok, vocab, seededRandom(o.seed + 13)) : 0;
    return {
      prompts,
      tokens: { source: tok ? `server:${tok.url}/tokenize` : vocab.source, chat_template_tokens: await templateTokens(tok), adjusted, pruned: 0 },
    };
  }
  const text = await readText(d.path);
  const counter = tok ? async (t: string) => (await tok.encode(t, true)).length : null;
  const common = { count: o.count, seed: o.seed, outputLen: d.outputLen, countTokens: counter };
  const r = d.kind === 'sharegpt' ? await shareGptPrompts(parseShareGpt(text, d.path), common) : jsonlPrompts(parseJsonl(text, d.path), common);
  return {
    prompts: r.prompts,
    tokens: { source: tok ? `server:${tok.url}/tokenize` : 'approximation (~4 characters per token)', chat_template_tokens: null, adjusted: 0, pruned: r.pruned },
  };
}
