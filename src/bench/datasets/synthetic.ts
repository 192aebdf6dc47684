/**
 * Synthetic prompts made of random tokens, after `vllm bench serve`'s random and prefix_repetition datasets
 * (vllm/benchmarks/datasets.py, RandomDataset and PrefixRepetitionRandomDataset):
 *
 * - random: per request, input and output lengths uniform over the integers [floor(L x (1-r)), ceil(L x (1+r))]
 *   (output at least 1; `get_sampling_params`), behind a shared prefix of `prefixLen` random tokens generated
 *   once per run (`get_prefix`); prompt length = prefix + sampled input. What it stresses: prefill and decode at
 *   a controlled size, with no cache reuse between requests (each run has its own seed).
 * - prefix-sharing: a pool of K shared "system prompts" of `prefixLen` tokens; each request is one of them (each
 *   used equally often, order shuffled) plus a unique question of the sampled input length. Chat requests send
 *   the shared part as a system message. What it stresses: prefix-cache hits (the shared part is computed once
 *   per engine) against KV transfer (in PD, every request's KV still travels producer → consumer).
 * - multi-turn: conversations of T turns; turn t resends the t-1 earlier user turns and replies (replies are
 *   synthesised with the output length so every request stays independent and open-loop), then a new user turn.
 *   Requests go round by round (every conversation's turn 1, then turn 2 …), so a conversation's turns are spaced
 *   by about duration / T. What it stresses: growing contexts whose head is cached from the previous turn.
 *
 * Token choice: completions send token ids from [1000, 21000), inside every common vocabulary and away from its
 * special tokens (vLLM excludes `all_special_ids`); the server counts exactly what was sent. Chat sends text of
 * the bench's single-token words (vocab.ts), exact when the tokenizer has them as single pieces and made exact
 * by server-tokenizer.ts when the target serves /tokenize.
 */
import { seededRandom } from '../arrivals.js';
import type { ChatMessage, Endpoint, PromptSpec } from '../request.js';
import { textOfTokens, moreWords, type WordVocab } from './vocab.js';

export interface SyntheticSpec {
  kind: 'random' | 'prefix-sharing' | 'multi-turn';
  inputLen: number;
  outputLen: number;
  /** 0 <= r < 1 (vLLM's --random-range-ratio). */
  rangeRatio?: number;
  /** Shared prefix tokens (random) / each pool entry's length (prefix-sharing). */
  prefixLen?: number;
  /** prefix-sharing: pool size. */
  numPrefixes?: number;
  /** multi-turn: turns per conversation. */
  turns?: number;
}

export interface SyntheticOptions {
  count: number;
  endpoint: Endpoint;
  seed: number;
  vocab: WordVocab;
}

const ID_LOW = 1000;
const ID_SPAN = 20000;

/** Integer lengths uniform in [floor(len(1-r)), ceil(len(1+r))] (vLLM's get_sampling_params). */
export function sampleLengths(len: number, ratio: number, count: number, rand: () => number, minLen = 0): number[] {
  const lo = Math.max(minLen, Math.floor(len * (1 - ratio)));
  const hi = Math.max(lo, Math.ceil(len * (1 + ratio)));
  return Array.from({ length: count }, () => lo + Math.floor(rand() * (hi - lo + 1)));
}

/** A piece of prompt: token ids (completions) or text (chat) of a known token count. */
interface Piece {
  ids: number[];
  text: string;
  tokens: number;
}

function makePiece(n: number, endpoint: Endpoint, vocab: WordVocab, rand: () => number, continues: boolean): Piece {
  if (endpoint === 'completions') {
    const ids = new Array<number>(n);
    for (let k = 0; k < n; k++) ids[k] = ID_LOW + Math.floor(rand() * ID_SPAN);
    return { ids, text: '', tokens: n };
  }
  // A piece that continues a text starts with a space so that the words stay single tokens when joined.
  return { ids: [], text: continues ? moreWords(n, vocab, rand) : textOfTokens(n, vocab, rand), tokens: n };
}

function shuffle<T>(items: T[], rand: () => number): T[] {
  for (let i = items.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [items[i], items[j]] = [items[j]!, items[i]!];
  }
  return items;
}

export function syntheticPrompts(d: SyntheticSpec, o: SyntheticOptions): PromptSpec[] {
  const rand = seededRandom(o.seed + 7);
  const ratio = d.rangeRatio ?? 0;
  const inputs = sampleLengths(d.inputLen, ratio, o.count, rand);
  const outputs = sampleLengths(d.outputLen, ratio, o.count, rand, 1);
  if (d.kind === 'multi-turn') return multiTurn(d, o, inputs, outputs, rand);
  if (d.kind === 'prefix-sharing') return prefixSharing(d, o, inputs, outputs, rand);
  const prefixLen = d.prefixLen ?? 0;
  const prefix = prefixLen > 0 ? makePiece(prefixLen, o.endpoint, o.vocab, rand, false) : null;
  return inputs.map((len, i): PromptSpec => {
    const body = makePiece(len, o.endpoint, o.vocab, rand, prefix !== null);
    const total = prefixLen + len;
    if (o.endpoint === 'completions') return { prompt: prefix ? [...prefix.ids, ...body.ids] : body.ids, promptLen: total, outputLen: outputs[i]! };
    return { prompt: (prefix?.text ?? '') + body.text, promptLen: total, outputLen: outputs[i]!, textTokens: [total] };
  });
}

function prefixSharing(d: SyntheticSpec, o: SyntheticOptions, inputs: number[], outputs: number[], rand: () => number): PromptSpec[] {
  const k = Math.max(1, d.numPrefixes ?? 10);
  const prefixLen = d.prefixLen ?? 256;
  const pool = Array.from({ length: k }, () => makePiece(prefixLen, o.endpoint, o.vocab, rand, false));
  const which = shuffle(
    Array.from({ length: o.count }, (_, i) => i % k),
    rand,
  );
  return inputs.map((len, i): PromptSpec => {
    const prefix = pool[which[i]!]!;
    if (o.endpoint === 'completions') {
      const q = makePiece(len, o.endpoint, o.vocab, rand, false);
      return { prompt: [...prefix.ids, ...q.ids], promptLen: prefixLen + len, outputLen: outputs[i]!, group: which[i]! };
    }
    const q = makePiece(len, o.endpoint, o.vocab, rand, false);
    const messages: ChatMessage[] = [
      { role: 'system', content: prefix.text },
      { role: 'user', content: q.text },
    ];
    return { prompt: q.text, messages, promptLen: prefixLen + len, outputLen: outputs[i]!, textTokens: [prefixLen, len], group: which[i]! };
  });
}

function multiTurn(d: SyntheticSpec, o: SyntheticOptions, inputs: number[], outputs: number[], rand: () => number): PromptSpec[] {
  const turns = Math.max(1, d.turns ?? 4);
  const conversations = Math.ceil(o.count / turns);
  // Per conversation: its user turns and the replies the later turns resend.
  const convs = Array.from({ length: conversations }, (_, c) =>
    Array.from({ length: turns }, (_, t) => {
      const j = t * conversations + c;
      const inLen = inputs[j] ?? d.inputLen;
      const outLen = outputs[j] ?? d.outputLen;
      return {
        user: makePiece(inLen, o.endpoint, o.vocab, rand, false),
        reply: makePiece(outLen, o.endpoint, o.vocab, rand, false),
        outLen,
      };
    }),
  );
  const out: PromptSpec[] = [];
  for (let j = 0; j < o.count; j++) {
    const c = j % conversations;
    const t = Math.floor(j / conversations);
    const conv = convs[c]!;
    const history = conv.slice(0, t + 1);
    const promptLen = history.reduce((s, h, i) => s + h.user.tokens + (i < t ? h.reply.tokens : 0), 0);
    if (o.endpoint === 'completions') {
      const ids = history.flatMap((h, i) => (i < t ? [...h.user.ids, ...h.reply.ids] : h.user.ids));
      out.push({ prompt: ids, promptLen, outputLen: conv[t]!.outLen, group: c, turn: t + 1 });
      continue;
    }
    const messages: ChatMessage[] = [];
    const textTokens: number[] = [];
    history.forEach((h, i) => {
      messages.push({ role: 'user', content: h.user.text });
      textTokens.push(h.user.tokens);
      if (i < t) {
        messages.push({ role: 'assistant', content: h.reply.text });
        textTokens.push(h.reply.tokens);
      }
    });
    out.push({ prompt: conv[t]!.user.text, messages, promptLen, outputLen: conv[t]!.outLen, textTokens, group: c, turn: t + 1 });
  }
  return out;
}
