/** Shared plumbing for command handlers: global options → loaded config. */
import type { Command } from 'commander';
import { loadConfig, type LoadedConfig } from '../config/load.js';

export interface GlobalOptions {
  config?: string;
  verbose?: boolean;
}

export function globalOptions(cmd: Command): GlobalOptions {
  return cmd.optsWithGlobals<GlobalOptions>();
}

export async function loadForCommand(cmd: Command, overrides: Record<string, unknown> = {}): Promise<LoadedConfig> {
  return loadConfig({ configPath: globalOptions(cmd).config, overrides });
}

/** Parse a numeric flag, naming it in the error. */
export function parseNumberFlag(flag: string, value: string, opts: { integer?: boolean; min?: number; max?: number } = {}): number {
  const n = Number(value);
  const ok = value.trim() !== '' && Number.isFinite(n) && (!opts.integer || Number.isInteger(n)) &&
    (opts.min === undefined || n >= opts.min) && (opts.max === undefined || n <= opts.max);
  if (!ok) {
    const range = [opts.min !== undefined ? `>= ${opts.min}` : '', opts.max !== undefined ? `<= ${opts.max}` : '']
      .filter(Boolean)
      .join(' and ');
    throw new InvalidFlag(flag, value, `${opts.integer ? 'a whole number' : 'a number'}${range ? ` ${range}` : ''}`);
  }
  return n;
}

import { InvalidArgumentError } from 'commander';
class InvalidFlag extends InvalidArgumentError {
  constructor(flag: string, value: string, expected: string) {
    super(`${flag} must be ${expected} (got ${JSON.stringify(value)})`);
  }
}

/** A commander argParser for numbers. */
export function numberArg(flag: string, opts: { integer?: boolean; min?: number; max?: number } = {}) {
  return (value: string): number => parseNumberFlag(flag, value, opts);
}
