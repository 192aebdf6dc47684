import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('write a starting pd.config.json from a template (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd init` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
