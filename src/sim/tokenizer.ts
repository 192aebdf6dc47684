/**
 * A deterministic tokenizer stand-in (no model files): stable token counts, exact round trips, and a word
 * vocabulary so that tools can build prompts of an exact token length.
 *
 * Id layout (vocabulary size 151936, like Qwen3):
 *   0..255            single bytes (UTF-8)
 *   256..65791        byte pairs (b0 * 256 + b1 + 256)
 *   65792..82175      words: WORDS[i] (no leading space) and ' ' + WORDS[i], interleaved (82176..151642 unused)
 *   151643..151645    <|endoftext|>, <|im_start|>, <|im_end|>
 * Text is split into pieces matching / ?\S+|\s/; a piece that is a vocabulary word (or special token) is one
 * token, anything else is encoded as UTF-8 byte pairs (about two characters per token).
 */
export const VOCAB_SIZE = 151936;
const PAIR_BASE = 256;
const WORD_BASE = PAIR_BASE + 65536;
export const EOS_TOKEN_ID = 151643;
export const IM_START_ID = 151644;
export const IM_END_ID = 151645;
export const SPECIAL_TOKENS: Record<string, number> = {
  '<|endoftext|>': EOS_TOKEN_ID,
  '<|im_start|>': IM_START_ID,
  '<|im_end|>': IM_END_ID,
};
const SPECIAL_BY_ID = new Map(Object.entries(SPECIAL_TOKENS).map(([k, v]) => [v, k]));

const COMMON = (
  'the of and to a in is it you that he was for on are with as I his they be at one have this from or had by ' +
  'hot word but what some we can out other were all there when up use your how said an each she which do their ' +
  'time if will way about many then them write would like so these her long make thing see him two has look more ' +
  'day could go come did number sound no most people my over know water than call first who may down side been ' +
  'now find any new work part take get place made live where after back little only round man year came show every ' +
  'good me give our under name very through just form sentence great think say help low line differ turn cause much ' +
  'mean before move right boy old too same tell does set three want air well also play small end put home read hand ' +
  'port large spell add even land here must big high such follow act why ask men change went light kind off need ' +
  'house picture try us again animal point mother world near build self earth father head stand own page should ' +
  'country found answer school grow study still learn plant cover food sun four between state keep eye never last ' +
  'let thought city tree cross farm hard start might story saw far sea draw left late run while press close night ' +
  'real life few north model token cache prefill decode engine server request stream latency GPU memory Hello hello'
).split(' ');

const CONS = ['b', 'c', 'd', 'f', 'g', 'h', 'j', 'k', 'l', 'm', 'n', 'p', 'r', 's', 't', 'v', 'w', 'z', 'st', 'tr', 'ch', 'sh'];
const VOWELS = ['a', 'e', 'i', 'o', 'u', 'ai', 'ea', 'ou'];

function buildWords(count: number): string[] {
  const words: string[] = [];
  const seen = new Set<string>();
  const add = (w: string): void => {
    if (!seen.has(w)) {
      seen.add(w);
      words.push(w);
    }
  };
  for (const w of COMMON) add(w);
  // Deterministic pseudo-words: consonant-vowel syllables, 2 then 3 syllables.
  const syl: string[] = [];
  for (const c of CONS) for (const v of VOWELS) syl.push(c + v);
  outer: for (const a of syl)
    for (const b of syl) {
      if (words.length >= count) break outer;
      add(a + b);
    }
  outer2: for (const a of syl)
    for (const b of syl)
      for (const c of ['n', 'r', 's', 'l', 'x', 'm', 'd', 'k']) {
        if (words.length >= count) break outer2;
        add(a + b + c);
      }
  return words;
}

/** 8192 words keep start-up fast (the map is built in a few ms); ids between the words and the specials are unused. */
const WORD_SLOTS = 8192;
/** The vocabulary words, index i has ids WORD_BASE + 2i (bare) and WORD_BASE + 2i + 1 (with a leading space). */
export const WORDS: readonly string[] = buildWords(WORD_SLOTS);
const PIECE_TO_ID = new Map<string, number>();
const ID_TO_PIECE: string[] = new Array<string>(WORDS.length * 2);
WORDS.forEach((w, i) => {
  PIECE_TO_ID.set(w, WORD_BASE + 2 * i);
  PIECE_TO_ID.set(' ' + w, WORD_BASE + 2 * i + 1);
  ID_TO_PIECE[2 * i] = w;
  ID_TO_PIECE[2 * i + 1] = ' ' + w;
});
const WORD_END = WORD_BASE + WORDS.length * 2;

const PIECE_RE = /<\|endoftext\|>|<\|im_start\|>|<\|im_end\|>| ?[^\s<]+|<| ?<|\s/g;
const encoder = new TextEncoder();
const decoder = new TextDecoder();

function encodeBytes(piece: string, out: number[]): void {
  const bytes = encoder.encode(piece);
  let i = 0;
  for (; i + 1 < bytes.length; i += 2) out.push(PAIR_BASE + bytes[i]! * 256 + bytes[i + 1]!);
  if (i < bytes.length) out.push(bytes[i]!);
}

export function tokenize(text: string): number[] {
  const out: number[] = [];
  for (const m of text.matchAll(PIECE_RE)) {
    const piece = m[0];
    const id = PIECE_TO_ID.get(piece) ?? SPECIAL_TOKENS[piece];
    if (id !== undefined) out.push(id);
    else encodeBytes(piece, out);
  }
  return out;
}

/** Inverse of tokenize for any id sequence it produced; byte ids are decoded together as UTF-8. */
export function detokenize(ids: readonly number[], skipSpecial = false): string {
  let text = '';
  let pending: number[] = [];
  const flush = (): void => {
    if (pending.length) text += decoder.decode(Uint8Array.from(pending));
    pending = [];
  };
  for (const id of ids) {
    if (id < PAIR_BASE && id >= 0) pending.push(id);
    else if (id < WORD_BASE) pending.push((id - PAIR_BASE) >> 8, (id - PAIR_BASE) & 255);
    else {
      flush();
      if (id < WORD_END) text += ID_TO_PIECE[id - WORD_BASE];
      else {
        const sp = SPECIAL_BY_ID.get(id);
        if (sp !== undefined) text += skipSpecial ? '' : sp;
      }
    }
  }
  flush();
  return text;
}

/** Text of a single generated token (used for streaming deltas of word tokens). */
export function tokenText(id: number): string {
  if (id >= WORD_BASE && id < WORD_END) return ID_TO_PIECE[id - WORD_BASE]!;
  return detokenize([id], true);
}

/** The id of word i (mod vocabulary), with or without a leading space: handy for generating exact-length text. */
export function wordTokenId(i: number, leadingSpace = true): number {
  const n = ((i % WORDS.length) + WORDS.length) % WORDS.length;
  return WORD_BASE + 2 * n + (leadingSpace ? 1 : 0);
}

/** A prompt text of exactly `n` tokens (words chosen by `seed`), e.g. for benchmarks against the simulator. */
export function promptOfLength(n: number, seed = 0): string {
  const ids: number[] = [];
  let x = (seed * 2654435761 + 12345) >>> 0;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    ids.push(wordTokenId(x >>> 8, i > 0));
  }
  return detokenize(ids);
}

export interface ChatMessage {
  role: string;
  content?: unknown;
  name?: string;
}

/** Flatten OpenAI message content (string or list of parts) to text. */
export function messageText(content: unknown): string {
  if (typeof content === 'string') return content;
  if (Array.isArray(content))
    return content
      .map((p) => (p && typeof p === 'object' && typeof (p as { text?: unknown }).text === 'string' ? (p as { text: string }).text : ''))
      .join('\n');
  return '';
}

/** The ChatML template of Qwen models, with the generation prompt appended when requested (the default). */
export function applyChatTemplate(messages: readonly ChatMessage[], addGenerationPrompt = true): string {
  let s = '';
  for (const m of messages) s += `<|im_start|>${m.role}\n${messageText(m.content)}<|im_end|>\n`;
  if (addGenerationPrompt) s += '<|im_start|>assistant\n';
  return s;
}

/** Token ids of a chat conversation after the template. */
export function tokenizeChat(messages: readonly ChatMessage[], addGenerationPrompt = true): number[] {
  return tokenize(applyChatTemplate(messages, addGenerationPrompt));
}
