/**
 * What `pd status` prints: the stack's header, why it is degraded (which engine, and why), the engine table and
 * the proxy line — and `pd status --watch`, which redraws that every few seconds: in place on a terminal (cursor
 * home, each line overwritten and cleared to its end, the rest of the screen cleared: no blank frame, so no
 * flicker), or as timestamped blocks one after another when stdout is a pipe or a file.
 */
import type { ChalkInstance } from 'chalk';
import type { StackStatus } from '../stack/status.js';
import { sleep } from '../util/timers.js';

const dur = (s: number | null | undefined): string =>
  s === null || s === undefined
    ? '-'
    : s < 60
      ? `${s}s`
      : s < 3600
        ? `${Math.floor(s / 60)}m${s % 60}s`
        : `${Math.floor(s / 3600)}h${Math.floor((s % 3600) / 60)}m`;

function table(rows: string[][]): string {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n') + '\n';
}

/** The human status of the stack that runs (or ran) from `stateDir`. */
export function renderStatus(s: StackStatus, stateDir: string, c: ChalkInstance): string {
  if (!s.running) {
    return s.stale
      ? `no stack is running, but ${stateDir} has state from a dead one: run \`pd down\` to clean up\n`
      : `no stack is running from ${stateDir} (start one with \`pd up\`)\n`;
  }
  let text = '';
  if (s.supervisorAlive === false) {
    text +=
      `${c.red(`the supervisor (pid ${s.supervisorPid ?? '?'}) is gone`)}: its engines are running unsupervised and the proxy is down.\n` +
      'Run `pd down` to stop them (then `pd up` again).\n\n';
  } else {
    // The supervisor's phase, unless the probes just found the stack degraded (an engine died since it wrote it).
    const phase = s.degraded ? c.red('degraded') : s.phase === 'ready' ? c.green('ready') : (s.phase ?? '?');
    text += `stack ${phase} for ${dur(s.uptimeSeconds)} · supervisor pid ${s.supervisorPid ?? '-'} · ${s.connector ?? 'no connector'}${s.simulate ? ' · simulated' : ''} · ${s.model || '?'}\n`;
    if (s.degraded) {
      for (const p of s.problems) text += `${c.red('✖')} ${p}\n`;
      const named = s.engines.filter((e) => s.problems.some((p) => p.startsWith(`${e.name} `)));
      if (named.length > 0) text += `  ${c.dim(`see ${named.map((e) => `\`pd logs ${e.name}\``).join(', ')}`)}\n`;
    }
    text += '\n';
  }
  const rows = [['ENGINE', 'ROLE', 'GPUS', 'PORT', 'PID', 'UPTIME', 'HEALTH', 'RESTARTS', 'CACHE HITS']];
  for (const e of s.engines) {
    rows.push([e.name, e.role, e.gpus.join(',') || '-', String(e.port || '-'), String(e.pid ?? '-'), dur(e.uptimeSeconds), e.healthy ? 'healthy' : e.status, String(e.restarts), String(e.cacheHits)]);
  }
  text += table(rows)
    .replace(/ healthy\b/g, ` ${c.green('healthy')}`)
    .replace(/ (failed|exited|unhealthy)\b/g, (_, w: string) => ` ${c.red(w)}`);
  if (s.proxy) {
    const p = s.proxy;
    text += `\nproxy ${p.url} · ${p.healthy ? c.green('healthy') : c.red('unhealthy')} · in-flight ${p.inFlight} · queued ${p.queued} · ${p.reqPerSec.toFixed(1)} req/s · ${p.requestsTotal} requests · ${p.rejected} rejected\n`;
  }
  return text;
}

// eslint-disable-next-line no-control-regex -- measuring what a terminal shows means skipping its escapes
const ESCAPES = /\x1b\[[0-9;?]*[A-Za-z]/g;

/**
 * A line cut to `columns` visible characters, its colours kept (an over-long line would wrap and push the frame
 * off the screen).
 */
export function fit(line: string, columns: number): string {
  if (line.replace(ESCAPES, '').length <= columns) return line;
  const escape = new RegExp(ESCAPES.source, 'y');
  let cut = '';
  let visible = 0;
  for (let i = 0; i < line.length; ) {
    escape.lastIndex = i;
    const m = escape.exec(line);
    if (m) {
      cut += m[0];
      i += m[0].length;
    } else if (visible < columns - 1) {
      cut += line[i];
      visible++;
      i++;
    } else break;
  }
  return `${cut}…\x1b[0m`;
}

export interface WatchTarget {
  write(text: string): void;
  isTTY?: boolean;
  columns?: number;
  rows?: number;
}

const HOME = '\x1b[H';
const CLEAR_SCREEN = '\x1b[2J';
const CLEAR_LINE_END = '\x1b[K';
const CLEAR_BELOW = '\x1b[J';
const HIDE_CURSOR = '\x1b[?25l';
const SHOW_CURSOR = '\x1b[?25h';

/** One frame for a terminal: every line overwritten in place, the rest of each line and of the screen cleared. */
export function terminalFrame(text: string, target: WatchTarget, first: boolean): string {
  // A terminal that does not tell its size (0 or undefined) gets the frame uncut.
  const columns = target.columns || Infinity;
  const rows = target.rows || Infinity;
  let lines = text.replace(/\n$/, '').split('\n');
  if (lines.length > rows - 1) lines = [...lines.slice(0, Math.max(0, rows - 2)), '…'];
  return (first ? HIDE_CURSOR + CLEAR_SCREEN : '') + HOME + lines.map((l) => fit(l, columns) + CLEAR_LINE_END).join('\n') + '\n' + CLEAR_BELOW;
}

const clock = (d: Date): string => d.toTimeString().slice(0, 8);
const stamp = (d: Date): string =>
  `${d.getFullYear()}-${String(d.getMonth() + 1).padStart(2, '0')}-${String(d.getDate()).padStart(2, '0')} ${clock(d)}`;

/**
 * Redraw `render()` every `intervalMs` until `signal` aborts. A render that throws shows its message in the frame
 * (the watch goes on: the state may be repaired, or a stack started, while someone watches).
 */
export async function watchStatus(
  render: () => Promise<string>,
  opts: {
    intervalMs: number;
    target: WatchTarget;
    signal: AbortSignal;
    describeError: (e: unknown) => string;
    onResize?: (listener: () => void) => () => void;
    /** Write each render as it is, with no header or redraw (`--watch --json`: one JSON document a line). */
    raw?: boolean;
  },
): Promise<void> {
  const { target, signal } = opts;
  const every = opts.intervalMs % 1000 === 0 ? `${opts.intervalMs / 1000}s` : `${(opts.intervalMs / 1000).toFixed(1)}s`;
  let first = true;
  let drawn = false;
  // A resized terminal is cleared and redrawn at once (lines that were cut may fit now, or no longer fit).
  let wake: AbortController | null = null;
  const unsubscribe = opts.onResize?.(() => {
    first = true;
    wake?.abort();
  });
  try {
    while (!signal.aborted) {
      const body = await render().catch(opts.describeError);
      if (signal.aborted) break;
      const now = new Date();
      if (opts.raw) target.write(body);
      else if (target.isTTY) {
        target.write(terminalFrame(`every ${every} · pd status · ${clock(now)}  (Ctrl+C to stop)\n\n${body}`, target, first));
      } else {
        target.write(`${first ? '' : '\n'}--- pd status · ${stamp(now)} ---\n${body}`);
      }
      first = false;
      drawn = true;
      wake = new AbortController();
      const onAbort = (): void => wake?.abort();
      signal.addEventListener('abort', onAbort, { once: true });
      await sleep(opts.intervalMs, wake.signal);
      signal.removeEventListener('abort', onAbort);
    }
  } finally {
    unsubscribe?.();
    if (target.isTTY && drawn && !opts.raw) target.write(SHOW_CURSOR);
  }
}
