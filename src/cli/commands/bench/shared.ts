/** What the `pd bench` verbs share: flags from the bench's flag schema, the context, Ctrl+C, printing. */
import { setMaxListeners } from 'node:events';
import { resolve } from 'node:path';
import type { Command } from 'commander';
import { err, info, warn } from '../../output.js';
import { loadConfig } from '../../../config/load.js';
import type { PdConfig } from '../../../config/schema.js';
import { FLAG_HELP, type FlagKey } from '../../../bench/flags.js';
import { resolveTarget } from '../../../bench/target.js';
import { formatSummary } from '../../../bench/summary.js';
import type { RunOutput } from '../../../bench/run.js';
import type { CacheCleared } from '../../../bench/cache-policy.js';

/** Add the named flags (spelling and help from the bench's flag schema). */
export function addFlags(cmd: Command, keys: readonly FlagKey[]): Command {
  for (const key of keys) {
    const [flags, help] = FLAG_HELP[key];
    cmd.option(flags, help);
    if (key === 'ignoreEos') cmd.option('--no-ignore-eos', 'never set ignore_eos');
  }
  return cmd;
}

export const COMMON_FLAGS: readonly FlagKey[] = [
  'set', 'target', 'keepCache', 'engine', 'model', 'goodput', 'percentiles', 'resultsDir', 'progress', 'json',
];
export const REQUEST_FLAGS: readonly FlagKey[] = ['numWarmups', 'header', 'extraBody', 'temperature', 'topP', 'topK', 'label', 'metadata', 'requestIdPrefix'];
export const WORKLOAD_FLAGS: readonly FlagKey[] = [
  'endpoint', 'dataset', 'datasetPath', 'randomInputLen', 'randomOutputLen', 'inputLen', 'outputLen', 'randomRangeRatio',
  'randomPrefixLen', 'numPrefixes', 'turns', 'ignoreEos', 'maxConcurrency', 'burstiness', 'seed',
];

/**
 * Commander's values of `cmd`'s flags: its own (defaults included), over any a parent command was given
 * explicitly (`pd bench --json run …`). Commander's optsWithGlobals would let a parent's default (e.g. the
 * sprint's --no-progress default) override the subcommand's flag. The root's -c/--config and --verbose are
 * read separately.
 */
export function flagValues(cmd: Command): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const chain: Command[] = [];
  for (let c: Command | null = cmd.parent; c !== null && c.parent !== null; c = c.parent) chain.unshift(c);
  for (const c of chain) for (const [k, v] of Object.entries(c.opts())) if (c.getOptionValueSource(k) === 'cli') out[k] = v;
  // Commander hands a flag both commands define to the parent, wherever it was written; the subcommand's own
  // default must not undo it.
  for (const [k, v] of Object.entries(cmd.opts())) if (!(k in out) || cmd.getOptionValueSource(k) !== 'default') out[k] = v;
  return out;
}

export interface BenchContext {
  config: PdConfig;
  target: string;
  set: string;
  resultsDir: string;
  stateDir: string;
  apiKey: string | undefined;
  /** The config file read, or null for the built-in defaults. */
  configPath: string | null;
}

export async function benchContext(cmd: Command, f: { target?: string; set?: string; resultsDir?: string }): Promise<BenchContext> {
  const { config, path } = await loadConfig({ configPath: cmd.optsWithGlobals<{ config?: string }>().config });
  const target = await resolveTarget(f.target, config.stateDir);
  return {
    config,
    configPath: path,
    target,
    set: f.set ?? config.bench.set,
    resultsDir: f.resultsDir ? resolve(f.resultsDir) : config.bench.resultsDir,
    stateDir: config.stateDir,
    apiKey: config.proxy.apiKey ?? process.env.OPENAI_API_KEY,
  };
}

/** Ctrl+C once: stop sending, finish in-flight, write partial results. Twice: abort in-flight too. */
export function interruptHandling(): { stop: AbortController; abort: AbortController; dispose: () => void } {
  const stop = new AbortController();
  const abort = new AbortController();
  // one listener per request in flight (thousands in a flood run)
  setMaxListeners(0, stop.signal, abort.signal);
  const onSigint = (): void => {
    if (!stop.signal.aborted) {
      process.stderr.write(`\n${err.yellow('interrupted:')} no new requests; waiting for the ones in flight (Ctrl+C again to abort them)…\n`);
      stop.abort();
    } else if (!abort.signal.aborted) {
      process.stderr.write(`${err.yellow('aborting')} in-flight requests; partial results will still be written\n`);
      abort.abort();
    }
  };
  process.on('SIGINT', onSigint);
  process.on('SIGTERM', onSigint);
  return { stop, abort, dispose: () => (process.off('SIGINT', onSigint), process.off('SIGTERM', onSigint)) };
}

export function printRun(out: RunOutput, json: boolean): void {
  if (!json) process.stdout.write(formatSummary(out.result));
  if (!json && out.files) info(err.dim(`saved ${out.files.json}`));
}

export function printCleared(c: CacheCleared | null, quiet: boolean): void {
  if (c === null) return;
  if (!quiet && c.existed) info(err.dim(`cleared KV cache ${c.path}: ${c.entriesRemoved} entries`));
  if (c.entriesFailed > 0) warn(`could not clear ${c.entriesFailed} KV cache entries under ${c.path}`);
}
