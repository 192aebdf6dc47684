import type { Command } from 'commander';
import type { ChalkInstance } from 'chalk';
import { action } from '../run-command.js';
import { out, printJson } from '../output.js';
import { addStackOptions, loadPlan, type StackFlags } from '../stack-options.js';
import { runPreflight, failedChecks, type Check } from '../../stack/preflight.js';

const MARK: Record<Check['status'], (c: ChalkInstance) => string> = {
  ok: (c) => c.green('✔'),
  warn: (c) => c.yellow('!'),
  fail: (c) => c.red('✖'),
  skip: (c) => c.dim('-'),
};

export function formatChecks(checks: Check[], c: ChalkInstance): string {
  const width = Math.max(...checks.map((k) => k.name.length));
  return (
    checks
      .map((k) => `${MARK[k.status](c)} ${k.name.padEnd(width)}  ${k.detail}${k.hint && k.status !== 'ok' ? `\n  ${' '.repeat(width)}  ${c.cyan('→')} ${k.hint}` : ''}`)
      .join('\n') + '\n'
  );
}

export function register(program: Command): void {
  const cmd = program
    .command('doctor')
    .description('pre-flight checklist: config, vLLM command and version, model path, GPUs, ports, shared storage, state dir')
    .option('--json', 'print the checks as JSON')
    .option('--no-storage-speed', 'skip the KV storage speed check (it writes, fsyncs and reads 64 MiB in kv.sharedStoragePath)');
  addStackOptions(cmd).action(
    action(async (flags: StackFlags & { json?: boolean; storageSpeed?: boolean }) => {
      const plan = await loadPlan(cmd, flags);
      const checks = await runPreflight(plan, { measureStorage: flags.storageSpeed !== false });
      const failed = failedChecks(checks).length;
      if (flags.json) printJson({ ok: failed === 0, connector: plan.connector, vllmVersion: plan.vllmVersion, checks });
      else {
        process.stdout.write(formatChecks(checks, out));
        process.stdout.write(failed === 0 ? `${out.green('ready for `pd up`')}\n` : `${out.red(`${failed} check(s) failed`)}\n`);
      }
      return failed === 0 ? 0 : 1;
    }),
  );
}
