import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('clear-cache')
    .description('delete the KV cache entries under the shared storage path (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd clear-cache` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
