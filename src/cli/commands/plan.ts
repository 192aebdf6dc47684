import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('plan')
    .description('print the exact engine command lines and proxy routes that `pd up` will run (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd plan` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
