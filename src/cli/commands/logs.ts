import type { Command } from 'commander';
import { join } from 'node:path';
import { action } from '../run-command.js';
import { out } from '../output.js';
import { loadForCommand, numberArg } from '../context.js';
import { listLogs, selectLogs, tailFile, followFiles } from '../../stack/logs.js';
import { readStackState } from '../../stack/state.js';

export function register(program: Command): void {
  const cmd = program
    .command('logs')
    .description('show or follow logs: an engine (producer-0), a role (producer, consumer), proxy, supervisor; all by default')
    .argument('[name]', 'which log')
    .option('-f, --follow', 'keep printing new lines (Ctrl+C to stop)')
    .option('-n, --lines <n>', 'lines from the end of each log', numberArg('--lines', { integer: true, min: 0 }), 50);
  cmd.action(
    action(async (name: string | undefined, flags: { follow?: boolean; lines: number }) => {
      const { config } = await loadForCommand(cmd);
      const state = await readStackState(config.stateDir).catch(() => null);
      const logDir = state?.logDir ?? join(config.stateDir, 'logs');
      const sources = selectLogs(await listLogs(logDir), name);
      const many = sources.length > 1;
      const width = Math.max(...sources.map((s) => s.name.length));
      const label = (s: string): string => (many ? `${out.cyan(`${s.padEnd(width)} |`)} ` : '');
      const follow = [];
      for (const s of sources) {
        const { lines, size } = await tailFile(s.file, flags.lines);
        for (const l of lines) process.stdout.write(`${label(s.name)}${l}\n`);
        follow.push({ ...s, offset: size });
      }
      if (!flags.follow) return;
      const ac = new AbortController();
      process.once('SIGINT', () => ac.abort());
      process.once('SIGTERM', () => ac.abort());
      await followFiles(follow, (s, l) => process.stdout.write(`${label(s)}${l}\n`), ac.signal);
    }),
  );
}
