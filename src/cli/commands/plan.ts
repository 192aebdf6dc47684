import type { Command } from 'commander';
import { action } from '../run-command.js';
import { printJson, warn } from '../output.js';
import { addStackOptions, loadPlan, type StackFlags } from '../stack-options.js';
import { formatPlan, planToJson } from '../../stack/plan/format.js';
import { assertValid, formatProblem, warningsOf } from '../../config/problems.js';

export function register(program: Command): void {
  const cmd = program
    .command('plan')
    .description('print the exact engine command lines (with env) and proxy routes that `pd up` will run')
    .option('--json', 'print the plan as JSON');
  addStackOptions(cmd).action(
    action(async (flags: StackFlags & { json?: boolean }) => {
      const plan = await loadPlan(cmd, flags);
      assertValid(plan.problems, plan.configPath ?? 'the configuration');
      if (flags.json) {
        printJson(planToJson(plan));
        return;
      }
      for (const p of warningsOf(plan.problems)) warn(formatProblem(p));
      process.stdout.write(formatPlan(plan));
    }),
  );
}
