import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('sim')
    .description('run the vLLM simulator (accepts the `vllm serve` command line) (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd sim` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
