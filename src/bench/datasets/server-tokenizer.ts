/**
 * Exact prompt lengths with the target's own tokenizer, through vLLM's /tokenize and /detokenize (what
 * `vllm bench serve` does with a local tokenizer: RandomDataset decodes, re-encodes and trims,
 * gen_prompt_decode_to_target_len; and _align_prompts_to_server_tokenizer in vllm/benchmarks/serve.py checks
 * the first prompt against the server's /tokenize and, on a mismatch, re-encodes and trims every prompt).
 *
 * pd has no tokenizer of its own, so:
 *  1. the vocabulary is calibrated once per target: the words the server encodes as one token each with a
 *     leading space are kept (one /tokenize call when all are, else one per word);
 *  2. prompts are built from those words (exact by construction on whitespace-split tokenizers);
 *  3. the first prompt is checked; on a mismatch every text is re-encoded, trimmed to its length (or extended
 *     with more words) and decoded again, up to 10 rounds, as vLLM does.
 * The pd proxy does not serve /tokenize; then the running stack's engines (from its state file) are asked.
 */
import { request } from 'undici';
import { readStackState } from '../../stack/state.js';
import type { PromptSpec } from '../request.js';
import { moreWords, type WordVocab } from './vocab.js';

export interface ServerTokenizer {
  /** Base URL that answered /tokenize. */
  url: string;
  encode(text: string, addSpecialTokens?: boolean): Promise<number[]>;
  decode(ids: number[]): Promise<string>;
  /** Tokens of a chat conversation after the template (vLLM's /tokenize with messages). */
  encodeChat(messages: Array<{ role: string; content: string }>): Promise<number[] | null>;
}

interface Ctx {
  model: string;
  apiKey?: string;
  headers?: Record<string, string>;
}

async function post(url: string, body: unknown, ctx: Ctx, timeoutMs = 10_000): Promise<unknown> {
  const headers: Record<string, string> = { 'content-type': 'application/json', ...(ctx.headers ?? {}) };
  if (ctx.apiKey) headers.authorization = `Bearer ${ctx.apiKey}`;
  const res = await request(url, { method: 'POST', headers, body: JSON.stringify(body), headersTimeout: timeoutMs, bodyTimeout: timeoutMs });
  const text = await res.body.text();
  if (res.statusCode !== 200) throw new Error(`HTTP ${res.statusCode}`);
  return JSON.parse(text) as unknown;
}

function tokenizerAt(url: string, ctx: Ctx): ServerTokenizer {
  return {
    url,
    async encode(text, addSpecialTokens = false) {
      const r = (await post(`${url}/tokenize`, { model: ctx.model, prompt: text, add_special_tokens: addSpecialTokens }, ctx)) as { tokens?: unknown };
      if (!Array.isArray(r.tokens)) throw new Error('no tokens in the /tokenize answer');
      return r.tokens as number[];
    },
    async decode(ids) {
      const r = (await post(`${url}/detokenize`, { model: ctx.model, tokens: ids }, ctx)) as { prompt?: unknown };
      if (typeof r.prompt !== 'string') throw new Error('no prompt in the /detokenize answer');
      return r.prompt;
    },
    async encodeChat(messages) {
      try {
        const r = (await post(`${url}/tokenize`, { model: ctx.model, messages, add_generation_prompt: true }, ctx)) as { tokens?: unknown };
        return Array.isArray(r.tokens) ? (r.tokens as number[]) : null;
      } catch {
        return null;
      }
    },
  };
}

async function answers(url: string, ctx: Ctx): Promise<boolean> {
  try {
    const r = (await post(`${url}/tokenize`, { model: ctx.model, prompt: 'the', add_special_tokens: false }, ctx, 3_000)) as { tokens?: unknown };
    return Array.isArray(r.tokens) && r.tokens.length > 0;
  } catch {
    return false;
  }
}

/** The target's /tokenize, else (for the running stack's proxy) one of its engines', else null. */
export async function findServerTokenizer(o: { target: string; stateDir?: string } & Ctx): Promise<ServerTokenizer | null> {
  if (await answers(o.target, o)) return tokenizerAt(o.target, o);
  if (!o.stateDir) return null;
  const state = await readStackState(o.stateDir).catch(() => null);
  const proxyUrl = state?.proxy?.url.replace('0.0.0.0', '127.0.0.1');
  if (!state || !proxyUrl || new URL(proxyUrl).port !== new URL(o.target).port) return null;
  for (const e of state.engines) {
    const url = e.url.replace('0.0.0.0', '127.0.0.1').replace(/\/+$/, '');
    if (e.status === 'healthy' && (await answers(url, o))) return tokenizerAt(url, o);
  }
  return null;
}

const calibrated = new Map<string, WordVocab>();

/** The vocabulary words the server confirms are single tokens with a leading space (cached per server). */
export async function calibrateVocab(tok: ServerTokenizer, vocab: WordVocab): Promise<WordVocab> {
  const key = `${tok.url}\n${vocab.source}`;
  const cached = calibrated.get(key);
  if (cached) return cached;
  const words = vocab.words;
  const all = await tok.encode(vocab.first + words.map((w) => ' ' + w).join(''));
  let kept: string[] = [...words];
  if (all.length !== words.length + 1) {
    kept = [];
    for (let i = 0; i < words.length; i += 16) {
      const batch = words.slice(i, i + 16);
      const counts = await Promise.all(batch.map(async (w) => (await tok.encode(' ' + w)).length));
      batch.forEach((w, j) => counts[j] === 1 && kept.push(w));
    }
  }
  const firstOk = (await tok.encode(vocab.first)).length === 1;
  const first = firstOk ? vocab.first : (kept[0] ?? vocab.first);
  const out = kept.length >= 20 ? { words: kept, first, source: `${vocab.source}, checked by ${tok.url}/tokenize` } : vocab;
  calibrated.set(key, out);
  return out;
}

/** Re-encode and trim (or extend) one text to exactly `n` tokens, as vLLM's gen_prompt_decode_to_target_len. */
export async function exactText(tok: ServerTokenizer, text: string, n: number, vocab: WordVocab, rand: () => number): Promise<{ text: string; tokens: number }> {
  let t = text;
  let ids: number[] = [];
  for (let round = 0; round < 10; round++) {
    ids = await tok.encode(t);
    if (ids.length === n) return { text: t, tokens: n };
    t = ids.length > n ? await tok.decode(ids.slice(0, n)) : t + moreWords(n - ids.length, vocab, rand);
  }
  ids = await tok.encode(t);
  return { text: t, tokens: ids.length };
}

/** The texts of a chat prompt with their token counts (the prompt itself, or each message). */
function textParts(p: PromptSpec): Array<{ get: () => string; set: (s: string) => void; tokens: number }> {
  const counts = p.textTokens ?? [];
  if (p.messages) {
    return p.messages.map((m, i) => ({ get: () => String(m.content), set: (s: string) => (m.content = s), tokens: counts[i] ?? 0 }));
  }
  return typeof p.prompt === 'string' ? [{ get: () => p.prompt as string, set: (s: string) => (p.prompt = s), tokens: counts[0] ?? p.promptLen }] : [];
}

/**
 * Make every chat prompt's texts exactly their token counts on the server's tokenizer (in place). Texts shared by
 * several prompts (prefixes, conversation history) are aligned once, so they stay byte-identical. Returns the
 * number of texts changed.
 */
export async function alignPrompts(prompts: PromptSpec[], tok: ServerTokenizer, vocab: WordVocab, rand: () => number): Promise<number> {
  const first = prompts.find((p) => p.textTokens !== undefined);
  if (!first) return 0;
  const firstOk = await Promise.all(textParts(first).map(async (part) => (await tok.encode(part.get())).length === part.tokens));
  if (firstOk.every(Boolean)) return 0;
  const done = new Map<string, string>();
  let changed = 0;
  for (const p of prompts) {
    for (const part of textParts(p)) {
      const key = `${part.tokens}\n${part.get()}`;
      let aligned = done.get(key);
      if (aligned === undefined) {
        aligned = (await exactText(tok, part.get(), part.tokens, vocab, rand)).text;
        done.set(key, aligned);
        if (aligned !== part.get()) changed++;
      }
      part.set(aligned);
    }
  }
  return changed;
}
