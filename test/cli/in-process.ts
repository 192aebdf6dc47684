/**
 * Run a pd command line in this test process: the same commander program the binary builds (src/cli/program.ts,
 * only the verb's own module loaded) and the same turning of errors into exit codes (exitCodeOf, as src/cli/main.ts), with the
 * command's stdout and stderr captured. A pd process costs about half a CPU second to start; checks of pure logic
 * (validation messages, help text, files written) run here, and each kind of behaviour that depends on the binary
 * itself (exit code wiring, bundling, signals, pipes) keeps one spawn of the built binary (test/helpers/cli.ts).
 *
 * Calls are serialised: the working directory, environment and process.exitCode are process-wide.
 */
import { buildProgram } from '../../src/cli/program.js';
import { exitCodeOf } from '../../src/cli/run-command.js';
import type { CliResult } from '../helpers/cli.js';

let queue: Promise<unknown> = Promise.resolve();
/** The deadline's rejection, told apart from the command's own errors. */
class Overdue extends Error {}

export interface InProcessOptions {
  cwd?: string;
  env?: Record<string, string | undefined>;
  /** Fail when the command has not finished by then (a wrongly accepted flag may start a server that waits). */
  timeoutMs?: number;
}

export function runPdInProcess(args: string[], opts: InProcessOptions = {}): Promise<CliResult> {
  const run = queue.then(() => runNow(args, opts));
  queue = run.catch(() => undefined);
  return run;
}

async function runNow(args: string[], opts: InProcessOptions): Promise<CliResult> {
  const savedCwd = process.cwd();
  const savedEnv: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(opts.env ?? {})) {
    savedEnv[k] = process.env[k];
    if (v === undefined) delete process.env[k];
    else process.env[k] = v;
  }
  const savedExitCode = process.exitCode;
  process.exitCode = undefined;
  let stdout = '';
  let stderr = '';
  const unhookOut = capture(process.stdout, (s) => (stdout += s));
  const unhookErr = capture(process.stderr, (s) => (stderr += s));
  let code: number;
  try {
    if (opts.cwd) process.chdir(opts.cwd);
    // As src/cli/main.ts does.
    const program = await buildProgram(args);
    try {
      let timer: NodeJS.Timeout | undefined;
      const deadline =
        opts.timeoutMs === undefined
          ? null
          : new Promise<never>((_r, reject) => (timer = setTimeout(() => reject(new Overdue()), opts.timeoutMs)));
      const run = program.parseAsync(['node', 'pd', ...args]);
      await (deadline ? Promise.race([run, deadline]) : run).finally(() => clearTimeout(timer));
      code = typeof process.exitCode === 'number' ? process.exitCode : 0;
    } catch (e) {
      if (e instanceof Overdue) throw new Error(`pd ${args.join(' ')} did not finish within ${opts.timeoutMs} ms`);
      code = exitCodeOf(e);
    }
  } finally {
    unhookOut();
    unhookErr();
    process.chdir(savedCwd);
    for (const [k, v] of Object.entries(savedEnv)) {
      if (v === undefined) delete process.env[k];
      else process.env[k] = v;
    }
    process.exitCode = savedExitCode;
  }
  return { code, stdout, stderr };
}

/** Collect the text written to `stream` until the returned function is called. */
function capture(stream: NodeJS.WriteStream, append: (s: string) => void): () => void {
  const original = stream.write.bind(stream) as (...a: unknown[]) => boolean;
  const hadOwn = Object.hasOwn(stream, 'write');
  stream.write = ((chunk: unknown, ...rest: unknown[]): boolean => {
    // Only text is captured: the test runner's own reports (binary chunks on stdout) pass through.
    if (typeof chunk !== 'string') return original(chunk, ...rest);
    append(chunk);
    const cb = rest.find((r) => typeof r === 'function') as (() => void) | undefined;
    if (cb) queueMicrotask(cb);
    return true;
  });
  return () => {
    if (hadOwn) stream.write = original;
    else delete (stream as { write?: unknown }).write;
  };
}
