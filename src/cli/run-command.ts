/**
 * The only place that turns errors into exit codes: PdError kinds map to 2 (usage/config) or 1 (runtime);
 * anything unexpected is a bug, reported with a short message (stack only with --verbose).
 */
import { isPdError } from '../util/errors.js';
import { err } from './output.js';

export function isVerbose(): boolean {
  return process.argv.includes('--verbose') || process.env.PD_VERBOSE === '1';
}

export function reportError(e: unknown): number {
  if (isPdError(e)) {
    process.stderr.write(`${err.red('error:')} ${e.message}\n`);
    for (const line of e.details) process.stderr.write(`  ${line}\n`);
    if (e.hint) process.stderr.write(`${err.cyan('hint:')} ${e.hint}\n`);
    if (isVerbose() && e.stack) process.stderr.write(err.dim(e.stack) + '\n');
    return e.exitCode;
  }
  const message = e instanceof Error ? e.message : String(e);
  process.stderr.write(`${err.red('error:')} unexpected failure: ${message}\n`);
  if (isVerbose() && e instanceof Error && e.stack) process.stderr.write(err.dim(e.stack) + '\n');
  else process.stderr.write(`${err.cyan('hint:')} run again with --verbose for details, and report it as a bug.\n`);
  return 1;
}

/** Wrap a command action so that errors become messages and exit codes. */
export function action<A extends unknown[]>(fn: (...args: A) => Promise<void | number> | void | number) {
  return async (...args: A): Promise<void> => {
    try {
      const code = await fn(...args);
      if (typeof code === 'number' && code !== 0) process.exitCode = code;
    } catch (e) {
      process.exitCode = reportError(e);
    }
  };
}
