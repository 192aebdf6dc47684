/**
 * Typed errors with a user-facing message and a hint. Only the CLI layer turns them into exit codes
 * (see src/cli/run-command.ts): 2 for usage/config mistakes, 1 for runtime failures.
 */
export type ErrorKind = 'usage' | 'config' | 'runtime';

export interface PdErrorOptions {
  hint?: string;
  /** Extra lines shown under the message (e.g. the last lines of an engine log). */
  details?: string[];
  cause?: unknown;
}

export class PdError extends Error {
  readonly kind: ErrorKind = 'runtime';
  readonly hint?: string;
  readonly details: string[];

  constructor(message: string, options: PdErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.hint = options.hint;
    this.details = options.details ?? [];
  }

  get exitCode(): number {
    return this.kind === 'runtime' ? 1 : 2;
  }
}

/** The command line was wrong (unknown flag, bad value). Exit code 2. */
export class UsageError extends PdError {
  override readonly kind: ErrorKind = 'usage';
}

/** The configuration file or its overrides are invalid. Exit code 2. */
export class ConfigError extends PdError {
  override readonly kind: ErrorKind = 'config';
}

/** Something failed while doing the work (engine crashed, port taken, I/O error). Exit code 1. */
export class RuntimeError extends PdError {
  override readonly kind: ErrorKind = 'runtime';
}

export function isPdError(err: unknown): err is PdError {
  return err instanceof PdError;
}
