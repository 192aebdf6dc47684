import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('logs')
    .description('show or follow engine and proxy logs (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd logs` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
