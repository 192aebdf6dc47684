import { writeOutput } from '../write-output.js';
import type { Command } from 'commander';
import { action } from '../run-command.js';
import { printJson, warn, out } from '../output.js';
import { loadForCommand } from '../context.js';
import { configJsonSchemaText } from '../../config/json-schema.js';
import { configReferenceMarkdown } from '../../config/docs.js';
import { validateConfig, assertValid } from '../../config/validate.js';

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
    .description('check the config file (schema and cross-field rules); exit 2 when invalid')
    .option('--json', 'print the problems as JSON');
  validate.action(
    action(async (opts: { json?: boolean }) => {
      const { config: cfg, path } = await loadForCommand(validate);
      const problems = validateConfig(cfg, cfg.kv.connector);
      const source = path ?? 'the built-in defaults';
      if (opts.json) {
        printJson({ file: path, valid: !problems.some((p) => p.severity === 'error'), problems });
        return problems.some((p) => p.severity === 'error') ? 2 : 0;
      }
      for (const p of problems.filter((p) => p.severity === 'warning')) warn(`${p.field}: ${p.message}. ${p.hint}`);
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
