import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('proxy')
    .description('run the PD proxy alone (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd proxy` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
