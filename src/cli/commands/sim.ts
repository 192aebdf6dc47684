import type { Command } from 'commander';
import { action } from '../run-command.js';
import { runSim, simUsage } from '../../sim/run.js';

/**
 * `pd sim [serve MODEL] [vllm flags] [--sim-* flags]`: the vLLM simulator in-process. Every argument is passed
 * through untouched to the same parser as the `pd-vllm-sim` executable (`vllm serve` command line).
 */
export function register(program: Command): void {
  program
    .command('sim')
    .description('run the vLLM simulator (accepts the `vllm serve` command line; see `pd sim --help`)')
    .argument('[args...]', 'the `vllm serve` arguments, e.g. serve MODEL --port 8100 --kv-transfer-config JSON')
    .allowUnknownOption(true)
    .allowExcessArguments(true)
    .helpOption(false)
    .passThroughOptions(false)
    .addHelpText('after', '\n' + simUsage('pd sim'))
    .action(
      action(async (args: string[]) => {
        const code = await runSim(args, { prog: 'pd sim' });
        // The simulator may leave timers behind (start-up delay interrupted by a signal): end the process.
        setImmediate(() => process.exit(code));
        return code;
      }),
    );
}
