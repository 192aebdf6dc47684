import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('bench')
    .description('run a benchmark sprint and write results (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd bench` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
