import { writeOutput } from '../write-output.js';
import type { Command } from 'commander';
import { existsSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { action } from '../run-command.js';
import { out } from '../output.js';
import { DEFAULT_CONFIG_FILE } from '../../config/load.js';
import { DEFAULT_TEMPLATE, TEMPLATES, readTemplate, templatesDir } from '../../config/templates.js';
import { UsageError } from '../../util/errors.js';

export function register(program: Command): void {
  program
    .command('init')
    .description('write a starting pd.config.json from a template')
    .option('-t, --template <name>', `template: ${Object.keys(TEMPLATES).join(' | ')}`, DEFAULT_TEMPLATE)
    .option('-o, --out <file>', 'where to write it', DEFAULT_CONFIG_FILE)
    .option('-f, --force', 'overwrite an existing file')
    .option('--list', 'list the templates')
    .action(
      action(async (opts: { template: string; out: string; force?: boolean; list?: boolean }) => {
        if (opts.list) {
          for (const [name, t] of Object.entries(TEMPLATES)) process.stdout.write(`${name.padEnd(20)} ${t.description} [bench set ${t.set}]\n`);
          return;
        }
        const target = resolve(opts.out);
        const text = await readTemplate(opts.template);
        if (existsSync(target) && !opts.force) {
          throw new UsageError(`${target} already exists; not overwriting it`, {
            hint: 'Pass --force to replace it, or -o to write somewhere else.',
          });
        }
        // Point $schema at the package's schema file, relative to where the config lands, for editors.
        const schemaPath = relative(dirname(target), join(templatesDir(), 'pd.config.schema.json')) || 'pd.config.schema.json';
        const withSchema = text.replace(
          '"./templates/pd.config.schema.json"',
          JSON.stringify(schemaPath.startsWith('.') ? schemaPath : `./${schemaPath}`),
        );
        await writeOutput(target, withSchema);
        if (/SharedStorage|"connector": "auto"/.test(text) && !/"topology": "aggregated"/.test(text)) {
          process.stdout.write(
            `  note: the shared-storage connector writes and reads every prompt's KV (~150 MB per 1k tokens for Qwen3-4B);\n` +
              `  \`pd doctor\` measures what that costs on your disk. With both engines on one machine, a memory-backed\n` +
              `  kv.sharedStoragePath such as /dev/shm/pd_kv (with kv.cache.maxBytes that fits in RAM) is much faster.\n`,
          );
        }
        process.stdout.write(
          `${out.green('✔')} wrote ${target} from template ${opts.template}\n` +
            `  next: ${out.bold('pd plan')} to see the engine command lines, ${out.bold('pd up')} to start the stack ` +
            `(${out.bold('pd up --simulate')} without a GPU)\n`,
        );
      }),
    );
}
