import type { Command } from 'commander';
import { action } from '../run-command.js';
import { out, printJson } from '../output.js';
import { loadForCommand, numberArg } from '../context.js';
import { stackStatus } from '../../stack/status.js';
import { isPdError } from '../../util/errors.js';
import { renderStatus, watchStatus } from '../status-view.js';

/** `pd status` exits 3 when a live stack is degraded (an engine down for good or unhealthy, the supervisor gone). */
export const DEGRADED_EXIT_CODE = 3;

interface StatusFlags {
  json?: boolean;
  watch?: boolean;
  interval: number;
}

export function register(program: Command): void {
  const cmd = program
    .command('status')
    .description('show each engine (role, GPUs, port, pid, uptime, health, restarts, cache hits) and the proxy; exits 3 when the stack is degraded')
    .option('--json', 'print the status as JSON')
    .option('-w, --watch', 'redraw the status every --interval seconds until Ctrl+C')
    .option('--interval <seconds>', 'seconds between redraws with --watch', numberArg('--interval', { min: 0.1, max: 3600 }), 2);
  cmd.action(
    action(async (flags: StatusFlags) => {
      const { config } = await loadForCommand(cmd);
      if (flags.watch) return watch(config.stateDir, flags);
      const s = await stackStatus(config.stateDir);
      if (flags.json) printJson(s);
      else process.stdout.write(renderStatus(s, config.stateDir, out));
      return s.degraded ? DEGRADED_EXIT_CODE : 0;
    }),
  );
}

async function watch(stateDir: string, flags: StatusFlags): Promise<number> {
  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await watchStatus(
      async () => {
        const s = await stackStatus(stateDir);
        return flags.json ? JSON.stringify(s) + '\n' : renderStatus(s, stateDir, out);
      },
      {
        intervalMs: flags.interval * 1000,
        target: process.stdout,
        signal: stop.signal,
        raw: flags.json === true,
        describeError: (e) => {
          const message = isPdError(e) ? e.message : `unexpected failure: ${e instanceof Error ? e.message : String(e)}`;
          if (flags.json) return JSON.stringify({ error: message, hint: isPdError(e) ? (e.hint ?? null) : null }) + '\n';
          return `${out.red('error:')} ${message}\n${isPdError(e) && e.hint ? `${out.cyan('hint:')} ${e.hint}\n` : ''}`;
        },
        onResize: (listener) => {
          process.stdout.on('resize', listener);
          return () => void process.stdout.off('resize', listener);
        },
      },
    );
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
  // Ctrl+C is how a watch ends: a success.
  return 0;
}
