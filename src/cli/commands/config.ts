import { writeOutput } from '../write-output.js';
import type { Command } from 'commander';
import { action } from '../run-command.js';
import { printJson, warn, out } from '../output.js';
import { loadForCommand } from '../context.js';
import { configJsonSchemaText } from '../../config/json-schema.js';
import { configReferenceMarkdown } from '../../config/docs.js';
import { assertValid, errorsOf, formatProblem, warningsOf } from '../../config/problems.js';
import { addStackOptions, loadPlan, type StackFlags } from '../stack-options.js';

export function register(program: Command): void {
  const config = program.command('config').description('inspect the configuration: schema | validate | print');

  config
    .command('schema')
    .description('print the JSON Schema of pd.config.json (generated from the zod schema)')
    .option('-o, --out <file>', 'write it to a file instead of stdout')
    .option('--markdown', 'print the field reference table (as in the README) instead')
    .action(
      action(async (opts: { out?: string; markdown?: boolean }) => {
        const text = opts.markdown ? configReferenceMarkdown() : configJsonSchemaText();
        if (opts.out) await writeOutput(opts.out, text);
        else process.stdout.write(text);
      }),
    );

  const validate = config
    .command('validate')
    .description('check the config file and the stack it plans (the same rules `pd up` applies); exit 2 when invalid')
    .option('--json', 'print the problems as JSON');
  addStackOptions(validate).action(
    action(async (opts: StackFlags & { json?: boolean }) => {
      const plan = await loadPlan(validate, opts);
      const problems = plan.problems;
      const source = plan.configPath ?? 'the built-in defaults';
      if (opts.json) {
        printJson({ file: plan.configPath, valid: errorsOf(problems).length === 0, problems });
        return errorsOf(problems).length > 0 ? 2 : 0;
      }
      for (const p of warningsOf(problems)) warn(formatProblem(p));
      assertValid(problems, source);
      process.stdout.write(`${out.green('✔')} ${source} is valid\n`);
    }),
  );

  const print = config
    .command('print')
    .description('print the resolved configuration, with every default filled in');
  print.action(
    action(async () => {
      const { config: cfg } = await loadForCommand(print);
      printJson(cfg);
    }),
  );
}
