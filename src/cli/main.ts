#!/usr/bin/env node
/**
 * pd — launch, supervise and benchmark a vLLM prefill/decode disaggregated stack.
 * This file only runs the commander program (src/cli/program.ts); every verb lives in src/cli/commands/<verb>.ts.
 */
import { exitCodeOf } from './run-command.js';
import { buildProgram, verbOf } from './program.js';

// `pd status | head -1`: the reader went away; that is not an error of ours.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code === 'EPIPE') process.exit(process.exitCode ?? 0);
    throw e;
  });
}

export async function main(argv: string[]): Promise<void> {
  // `pd sim …` takes the `vllm serve` command line untouched (its --version, --help, -c … are vLLM's, not pd's).
  const args = argv.slice(2);
  if (verbOf(args) === 'sim') {
    const { runSim } = await import('../sim/run.js');
    const code = await runSim(args.slice(args.indexOf('sim') + 1), { prog: 'pd sim' });
    // The simulator may leave timers behind (a start-up delay interrupted by a signal): end the process.
    setImmediate(() => process.exit(code));
    return;
  }
  const program = await buildProgram(argv.slice(2));
  try {
    await program.parseAsync(argv);
  } catch (e) {
    process.exitCode = exitCodeOf(e);
  }
}

await main(process.argv);
