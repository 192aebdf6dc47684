/**
 * A progress line per run on stderr: sent/completed/errors and the ETA. Redrawn in place on a TTY
 * (at most 10×/s); on a non-TTY stream a plain line every 10% so logs stay readable.
 */
import { performance } from 'node:perf_hooks';
import type { LoadEvent } from './generator.js';

export interface Progress {
  onEvent: (ev: LoadEvent) => void;
  done: () => void;
}

function fmtSecs(s: number): string {
  if (!Number.isFinite(s)) return '--';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

export function createProgress(opts: { label: string; total: number; stream?: NodeJS.WriteStream; enabled?: boolean }): Progress {
  const stream = opts.stream ?? process.stderr;
  const enabled = opts.enabled ?? true;
  const tty = Boolean(stream.isTTY);
  const start = performance.now();
  let sent = 0;
  let completed = 0;
  let errors = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  const render = (): string => {
    const elapsed = (performance.now() - start) / 1000;
    const finished = completed + errors;
    const eta = finished > 0 ? (elapsed / finished) * (opts.total - finished) : NaN;
    const width = 24;
    const filled = opts.total ? Math.round((finished / opts.total) * width) : width;
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    return `${opts.label} [${bar}] sent ${sent}/${opts.total} done ${completed} errors ${errors} ${fmtSecs(elapsed)} ETA ${fmtSecs(eta)}`;
  };
  const draw = (force = false): void => {
    if (!enabled) return;
    const now = performance.now();
    if (tty) {
      if (!force && now - lastDraw < 100) return;
      lastDraw = now;
      stream.write(`\r\x1b[2K${render()}`);
    } else {
      const decile = opts.total ? Math.floor(((completed + errors) / opts.total) * 10) : 10;
      if (!force && decile === lastDecile) return;
      lastDecile = decile;
      stream.write(`${render()}\n`);
    }
  };
  draw(true);
  return {
    onEvent(ev) {
      if (ev.type === 'sent') sent++;
      else if (ev.success) completed++;
      else errors++;
      draw();
    },
    done() {
      if (!enabled) return;
      if (tty) stream.write(`\r\x1b[2K${render()}\n`);
      else if (lastDecile !== 10) stream.write(`${render()}\n`);
    },
  };
}
