import type { Command } from 'commander';
import { action } from '../run-command.js';
import { RuntimeError } from '../../errors.js';

export function register(program: Command): void {
  program
    .command('doctor')
    .description('pre-flight checklist: vLLM, model, GPUs, ports, shared storage (not built yet)')
    .action(
      action(() => {
        throw new RuntimeError('`pd doctor` is not built yet.', { hint: 'See the README for what works today.' });
      }),
    );
}
