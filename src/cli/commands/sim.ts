import type { Command } from 'commander';
import { simUsage } from '../../sim/run.js';

/**
 * `pd sim [serve MODEL] [vllm flags] [--sim-* flags]`: the vLLM simulator in-process. src/cli/main.ts hands the
 * whole command line after `sim` to runSim untouched (its --help, --version and flags are vLLM's, not pd's);
 * this registration only lists the verb in `pd --help`.
 */
export function register(program: Command): void {
  program
    .command('sim')
    .description('run the vLLM simulator (accepts the `vllm serve` command line; see `pd sim --help`)')
    .argument('[args...]', 'the `vllm serve` arguments, e.g. serve MODEL --port 8100 --kv-transfer-config JSON')
    .addHelpText('after', '\n' + simUsage('pd sim'));
}
