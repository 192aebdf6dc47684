import type { Command } from 'commander';
import { action } from '../run-command.js';
import { out, printJson, warn } from '../output.js';
import { loadForCommand, numberArg } from '../context.js';
import { stopStack } from '../../stack/down.js';

export function register(program: Command): void {
  const cmd = program
    .command('down')
    .description('stop the running stack (from any terminal): SIGTERM each process group, SIGKILL after a grace period')
    .option('--grace <seconds>', 'seconds between SIGTERM and SIGKILL (default: supervisor.stopGraceSeconds)', numberArg('--grace', { min: 0 }))
    .option('--json', 'print what was stopped as JSON');
  cmd.action(
    action(async (flags: { grace?: number; json?: boolean }) => {
      const { config } = await loadForCommand(cmd);
      const grace = (flags.grace ?? config.supervisor.stopGraceSeconds) * 1000;
      const report = await stopStack(config.stateDir, grace);
      if (flags.json) return printJson(report);
      if (report.stateProblem) warn(`${report.stateProblem}: looking for the stack's processes by their PD_STACK_ID instead`);
      if (!report.running) {
        process.stdout.write(`nothing to stop: no stack is running from ${config.stateDir}\n`);
        return;
      }
      if (report.supervisor) {
        const how = report.supervisor.how === 'not ours' ? 'not ours (its PID now belongs to another process; left alone)' : report.supervisor.how;
        process.stdout.write(`supervisor pid ${report.supervisor.pid}: ${how}\n`);
      }
      for (const e of report.engines) process.stdout.write(`${e.name}: ${e.how}\n`);
      if (report.strays.length > 0) {
        const byHow = report.strays.map((p) => `${p.pid} (${p.how})`).join(', ');
        process.stdout.write(`found by PD_STACK_ID${report.stateProblem ? '' : ' (not in the state file)'}: ${byHow}\n`);
      }
      process.stdout.write(`${out.green('✔')} stack stopped in ${(report.durationMs / 1000).toFixed(1)} s; no process left\n`);
    }),
  );
}
