/**
 * Prompts from files.
 * - sharegpt, as `vllm bench serve` samples it (vllm/benchmarks/datasets.py, ShareGPTDataset and
 *   is_valid_sequence): entries with at least two conversation turns, shuffled by the seed; turn 0 is the prompt
 *   and turn 1 the completion whose length is the output length (unless one is given); pairs are pruned when the
 *   prompt or the completion is shorter than 4 tokens (the completion check is skipped when an output length is
 *   given), the prompt is longer than 1024 tokens, or both together are longer than 2048; when fewer usable
 *   entries than requests remain, samples are repeated (vLLM's maybe_oversample_requests). Token counts come
 *   from the target's tokenizer when it serves /tokenize, else ~4 characters per token.
 * - jsonl: one prompt per line, a JSON string or {"prompt"|"text": "...", "output_len"|"max_tokens": N}; shuffled
 *   by the seed and cycled when shorter than the request count.
 */
import { readFile } from 'node:fs/promises';
import { ConfigError } from '../../util/errors.js';
import { seededRandom } from '../arrivals.js';
import type { PromptSpec } from '../request.js';
import { approxTokens } from './vocab.js';

export interface FilePrompt {
  text: string;
  /** The reference completion (ShareGPT turn 1), when the file has one. */
  completion?: string;
  outputLen?: number;
}

/** vLLM's pruning rule for ShareGPT pairs (benchmarks/datasets: is_valid_sequence, its defaults). */
export function isValidSequence(promptLen: number, outputLen: number, skipMinOutputCheck: boolean): boolean {
  const MIN = 4;
  const MAX_PROMPT = 1024;
  const MAX_TOTAL = 2048;
  return !(promptLen < MIN || (!skipMinOutputCheck && outputLen < MIN) || promptLen > MAX_PROMPT || promptLen + outputLen > MAX_TOTAL);
}

export async function readText(path: string): Promise<string> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    throw new ConfigError(`cannot read dataset file ${path}: ${(e as NodeJS.ErrnoException).code ?? (e as Error).message}`, {
      hint: 'pass an existing ShareGPT JSON or JSONL file with --dataset-path',
    });
  }
}

/** ShareGPT entries with at least two turns (turn 0 = prompt, turn 1 = completion), as vLLM reads them. */
export function parseShareGpt(text: string, path: string): FilePrompt[] {
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(`${path} is not valid JSON: ${(e as Error).message}`, { hint: 'a ShareGPT file is a JSON array of {conversations: [...]}' });
  }
  if (!Array.isArray(data)) throw new ConfigError(`${path}: a ShareGPT file must be a JSON array`, { hint: 'a ShareGPT file is a JSON array of {conversations: [...]}' });
  const out: FilePrompt[] = [];
  for (const entry of data) {
    const conv = (entry as { conversations?: unknown })?.conversations;
    if (!Array.isArray(conv) || conv.length < 2) continue;
    const prompt = (conv[0] as { value?: unknown })?.value;
    const completion = (conv[1] as { value?: unknown })?.value;
    if (typeof prompt !== 'string' || typeof completion !== 'string') continue;
    out.push({ text: prompt, completion });
  }
  if (out.length === 0) throw new ConfigError(`${path}: no usable conversations (need entries with at least two turns)`, { hint: 'each entry needs {"conversations": [{"from": "human", "value": …}, {"from": "gpt", "value": …}]}' });
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
  if (out.length === 0) throw new ConfigError(`${path}: no prompts`, { hint: 'each line must be a JSON string or {"prompt": "...", "output_len": N}' });
  return out;
}

function shuffled<T>(items: readonly T[], seed: number): T[] {
  const rand = seededRandom(seed + 11);
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(rand() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

export interface FileDatasetOptions {
  count: number;
  seed: number;
  outputLen?: number;
  /** Token counter of the target (/tokenize), or null to approximate. */
  countTokens: ((text: string) => Promise<number>) | null;
}

export interface FileDatasetResult {
  prompts: PromptSpec[];
  /** ShareGPT pairs dropped by the pruning rules. */
  pruned: number;
}

/** Sample ShareGPT prompts like vLLM: shuffled, pruned, oversampled when short. */
export async function shareGptPrompts(items: FilePrompt[], o: FileDatasetOptions): Promise<FileDatasetResult> {
  const count = o.countTokens ?? ((t: string) => Promise.resolve(approxTokens(t)));
  const out: PromptSpec[] = [];
  let pruned = 0;
  for (const it of shuffled(items, o.seed)) {
    if (out.length >= o.count) break;
    const promptLen = await count(it.text);
    const outputLen = o.outputLen ?? (await count(it.completion ?? ''));
    if (!isValidSequence(promptLen, outputLen, o.outputLen !== undefined)) {
      pruned++;
      continue;
    }
    out.push({ prompt: it.text, promptLen, outputLen });
  }
  if (out.length === 0) {
    throw new ConfigError(`every ShareGPT pair was pruned (${pruned}): prompts must be 4..1024 tokens and prompt + output at most 2048`, {
      hint: 'use a larger ShareGPT file, or --output-len N to skip the output-length rule',
    });
  }
  const rand = seededRandom(o.seed);
  const base = out.length;
  while (out.length < o.count) out.push({ ...out[Math.floor(rand() * base)]! });
  return { prompts: out, pruned };
}

export function jsonlPrompts(items: FilePrompt[], o: FileDatasetOptions): FileDatasetResult {
  const order = shuffled(items, o.seed);
  const prompts: PromptSpec[] = [];
  for (let i = 0; i < o.count; i++) {
    const it = order[i % order.length]!;
    prompts.push({ prompt: it.text, promptLen: approxTokens(it.text), outputLen: o.outputLen ?? it.outputLen ?? 128 });
  }
  return { prompts, pruned: 0 };
}
