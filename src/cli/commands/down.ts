import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('down')
    .description('stop a running stack and everything it started (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd down` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
