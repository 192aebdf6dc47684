import type { Command } from 'commander';
import { action } from '../run-command.js';
import { printJson, warn } from '../output.js';
import { addStackOptions, loadStack, type StackFlags } from '../stack-options.js';
import { formatPlan, makePlan, planToJson } from '../../stack/plan.js';
import { assertValid } from '../../config/validate.js';

export function register(program: Command): void {
  const cmd = program
    .command('plan')
    .description('print the exact engine command lines (with env) and proxy routes that `pd up` will run')
    .option('--json', 'print the plan as JSON');
  addStackOptions(cmd).action(
    action(async (flags: StackFlags & { json?: boolean }) => {
      const ctx = await loadStack(cmd, flags);
      const plan = makePlan(ctx.config, { connector: ctx.connector, command: ctx.command });
      assertValid(plan.problems, ctx.configPath ?? 'the configuration');
      if (flags.json) {
        printJson(planToJson(plan));
        return;
      }
      for (const p of plan.problems) warn(`${p.field}: ${p.message}. ${p.hint}`);
      process.stdout.write(formatPlan(plan));
    }),
  );
}
