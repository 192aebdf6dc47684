import type { Command } from 'commander';
import { join } from 'node:path';
import type { ChalkInstance } from 'chalk';
import { action } from '../run-command.js';
import { out, info } from '../output.js';
import { loadForCommand, numberArg } from '../context.js';
import { listLogs, selectLogs, mergedHistory, followLogs, parseSince, type LogSource, type TimedLine } from '../../stack/logs.js';
import { readStackState } from '../../stack/state.js';
import { isProbeLine } from '../serving-view.js';

interface LogsFlags {
  follow?: boolean;
  probes?: boolean;
  lines?: number;
  since?: string;
}

const DEFAULT_LINES = 50;
/** The colours of `pd up`'s foreground view, in the same order: engines as planned, then the proxy. */
const PALETTE = ['cyan', 'magenta', 'yellow', 'green', 'blue', 'red'] as const;

export function register(program: Command): void {
  const cmd = program
    .command('logs')
    .description('show or follow logs merged by time: an engine (producer-0), a role (producer, consumer), proxy, supervisor; all by default')
    .argument('[name]', 'which log')
    .option('-f, --follow', 'keep printing new lines of every shown log, merged, as they arrive (Ctrl+C to stop)')
    .option('-n, --lines <n>', `the last n lines overall (default: ${DEFAULT_LINES}, or all with --since)`, numberArg('--lines', { integer: true, min: 0 }))
    .option('--since <when>', 'only lines since a duration ago (10m, 2h) or a time (02:13, 2026-11-30T02:13)')
    .option('--probes', "show the proxy's /health probes in engine logs (hidden as in `pd up`; they stay in the files)");
  cmd.action(action((name: string | undefined, flags: LogsFlags) => logs(cmd, name, flags)));
}

async function logs(cmd: Command, name: string | undefined, flags: LogsFlags): Promise<void> {
  const { config } = await loadForCommand(cmd);
  const sinceMs = flags.since === undefined ? undefined : parseSince(flags.since);
  const state = await readStackState(config.stateDir).catch(() => null);
  const logDir = state?.logDir || join(config.stateDir, 'logs');
  const all = await listLogs(logDir);
  const sources = selectLogs(all, name);
  if (sources.length === 0) info(`no logs in ${logDir} yet${flags.follow ? ': waiting for them (Ctrl+C to stop)' : ' (start the stack with `pd up`)'}`);

  const lines = flags.lines ?? (sinceMs === undefined ? DEFAULT_LINES : undefined);
  const hide = flags.probes ? undefined : isProbeLine;
  const history = await mergedHistory(sources, { lines, sinceMs, completeOnly: flags.follow === true, hide });
  const engines = engineOrder(state?.engines.map((e) => e.name) ?? [], all);
  const fmt = formatter(engines, sources, out, { labels: name === undefined || sources.length > 1, withDate: !allToday(history.lines) });
  writeLines(history.lines, fmt);
  if (!flags.follow) return;

  const stop = new AbortController();
  const onSignal = (): void => stop.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await followLogs({
      // Logs that appear later (a stack started after `pd logs -f`) are followed too.
      sources: async () => {
        const now = await listLogs(logDir);
        return name === undefined ? now : now.filter((s) => sources.some((o) => o.file === s.file) || s.name === name || s.name.startsWith(`${name}-`));
      },
      marks: history.marks,
      hide,
      onLines: (batch) => writeLines(batch, fmt),
      signal: stop.signal,
    });
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  }
}

function writeLines(lines: TimedLine[], fmt: (l: TimedLine) => string): void {
  if (lines.length === 0) return;
  // One write per batch: 100k lines of history are one syscall's worth of work, not 100k.
  let text = '';
  for (const l of lines) text += fmt(l);
  process.stdout.write(text);
}

function allToday(lines: TimedLine[]): boolean {
  const today = new Date().toDateString();
  return lines.every((l) => new Date(l.time).toDateString() === today);
}

const two = (n: number): string => String(n).padStart(2, '0');

/** `HH:MM:SS.mmm` (`MM-DD ` before it when not all from today); to the second when that is all the line said. */
export function formatTime(l: TimedLine, withDate: boolean): string {
  const d = new Date(l.time);
  const date = withDate ? `${two(d.getMonth() + 1)}-${two(d.getDate())} ` : '';
  const clock = `${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}`;
  return date + (l.seconds ? `${clock}    ` : `${clock}.${String(d.getMilliseconds()).padStart(3, '0')}`);
}

/** Engines in the order the stack planned them: the state's, else producers, consumers, then the rest. */
function engineOrder(fromState: string[], listed: LogSource[]): string[] {
  if (fromState.length > 0) return fromState;
  const rank = (n: string): number => (n.startsWith('producer') ? 0 : n.startsWith('consumer') ? 1 : 2);
  return listed
    .map((s) => s.name)
    .filter((n) => n !== 'proxy' && n !== 'supervisor')
    .sort((a, b) => rank(a) - rank(b) || a.localeCompare(b, 'en', { numeric: true }));
}

/**
 * `time name | line`, one colour per source: engines in the order the stack planned them (as `pd up` colours
 * them), then the proxy, and the supervisor in grey. A time the line did not carry itself (carried from the line
 * before, or when it arrived) is dimmed.
 */
function formatter(engines: string[], shown: LogSource[], c: ChalkInstance, opts: { labels: boolean; withDate: boolean }): (l: TimedLine) => string {
  const order = [...engines];
  const width = Math.max(0, ...[...engines, ...shown.map((s) => s.name)].map((n) => n.length));
  const labels = new Map<string, string>();
  const labelOf = (source: string): string => {
    let label = labels.get(source);
    if (label === undefined) {
      if (source !== 'proxy' && source !== 'supervisor' && !order.includes(source)) order.push(source);
      const i = source === 'proxy' ? engines.length : order.indexOf(source);
      const colour = source === 'supervisor' ? c.gray : c[PALETTE[i % PALETTE.length]!];
      label = colour(`${source.padEnd(width)} |`);
      labels.set(source, label);
    }
    return label;
  };
  return (l) => {
    const time = formatTime(l, opts.withDate);
    const stamp = l.from === 'line' ? time : c.dim(time);
    return `${stamp} ${opts.labels ? `${labelOf(l.source)} ` : ''}${l.line}\n`;
  };
}
