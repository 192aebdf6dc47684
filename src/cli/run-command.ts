/**
 * The only place that turns errors into exit codes: PdError kinds map to 2 (usage/config) or 1 (runtime);
 * anything unexpected is a bug, reported with a short message (stack only with --verbose).
 */
import { CommanderError } from 'commander';
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

/**
 * The exit code of an error out of program.parseAsync: commander has already printed its own message (help and
 * version are successes, anything else a usage error); every other error is reported here.
 */
export function exitCodeOf(e: unknown): number {
  if (e instanceof CommanderError) return ['commander.helpDisplayed', 'commander.version', 'commander.help'].includes(e.code) ? 0 : 2;
  return reportError(e);
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
