import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('status')
    .description('show engines and proxy of the running stack (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd status` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
