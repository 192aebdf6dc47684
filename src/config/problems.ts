/**
 * Problems found in a configuration or a stack plan: typed codes and severities, so policy (what `pd up` refuses,
 * what `pd config validate` reports) reads codes, never message text.
 */
import { ConfigError } from '../util/errors.js';

export type ProblemCode =
  // the file itself (config/checks.ts)
  | 'kv-role-mismatch'
  | 'cuda-visible-devices-set'
  | 'gpu-listed-twice'
  | 'storage-path-overlap'
  // the plan (stack/plan/checks.ts)
  | 'port-clash'
  | 'gpu-shared'
  | 'storage-path-relative'
  | 'cache-grace-short'
  | 'connector-typo'
  | 'owned-flag'
  | 'parallel-size-mismatch'
  | 'side-channel-port-invalid'
  | 'side-channel-port-clash'
  | 'engine-exposed-without-key';

export interface Problem {
  code: ProblemCode;
  severity: 'error' | 'warning';
  /** The config field, e.g. producers[0].port */
  field: string;
  message: string;
  hint: string;
}

export function errorsOf(problems: readonly Problem[]): Problem[] {
  return problems.filter((p) => p.severity === 'error');
}

export function warningsOf(problems: readonly Problem[]): Problem[] {
  return problems.filter((p) => p.severity === 'warning');
}

/** One line for a problem: `field: message. hint` */
export function formatProblem(p: Problem): string {
  return `${p.field}: ${p.message}. ${p.hint}`;
}

/** Throw a ConfigError naming every error-level problem (warnings are left to the caller to print). */
export function assertValid(problems: readonly Problem[], source: string): void {
  const errors = errorsOf(problems);
  if (errors.length === 0) return;
  const [first, ...rest] = errors;
  throw new ConfigError(`${source} is invalid: ${first!.field}: ${first!.message}`, {
    details: rest.map((p) => `${p.field}: ${p.message} (${p.hint})`),
    hint: first!.hint,
  });
}
