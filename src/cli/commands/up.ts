import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('up')
    .description('start the engines, wait for health, start the proxy (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd up` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
