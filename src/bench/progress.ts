/**
 * A progress line per run on stderr: sent/completed/errors, the running TTFT and ITL p50, the achieved rate
 * (completed requests per second since the first send) and the ETA. Redrawn in place on a TTY (at most 10×/s);
 * on a non-TTY stream a plain line every 10% so logs stay readable. The running percentiles come from
 * log-spaced buckets (1% wide), so a request costs a few array increments however many tokens it streamed.
 */
import { performance } from 'node:perf_hooks';
import type { LoadEvent } from './generator.js';

export interface Progress {
  onEvent: (ev: LoadEvent) => void;
  done: () => void;
}

/** Counts of values in buckets 1% apart (from 1 µs to ~1,000 s): p50 within 1% at any count. */
export class LogHistogram {
  private static readonly STEP = Math.log(1.01);
  private static readonly MIN = 1e-3;
  private readonly counts = new Uint32Array(2100);
  total = 0;
  add(v: number): void {
    const b = v <= LogHistogram.MIN ? 0 : Math.min(this.counts.length - 1, 1 + Math.floor(Math.log(v / LogHistogram.MIN) / LogHistogram.STEP));
    this.counts[b]!++;
    this.total++;
  }
  percentile(p: number): number | null {
    if (this.total === 0) return null;
    const want = Math.max(1, Math.ceil((p / 100) * this.total));
    let seen = 0;
    for (let b = 0; b < this.counts.length; b++) {
      seen += this.counts[b]!;
      if (seen >= want) return b === 0 ? 0 : LogHistogram.MIN * Math.exp((b - 0.5) * LogHistogram.STEP);
    }
    return null;
  }
}

function fmtSecs(s: number): string {
  if (!Number.isFinite(s)) return '--';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m}m${String(Math.round(s % 60)).padStart(2, '0')}s` : `${s.toFixed(0)}s`;
}

const fmtMs = (v: number | null): string => (v === null ? '--' : v >= 1000 ? `${(v / 1000).toFixed(2)}s` : `${v.toFixed(v < 10 ? 1 : 0)}ms`);

export function createProgress(opts: { label: string; total: number; stream?: NodeJS.WriteStream; enabled?: boolean }): Progress {
  const stream = opts.stream ?? process.stderr;
  const enabled = opts.enabled ?? true;
  if (!enabled) return { onEvent: () => undefined, done: () => undefined };
  const tty = Boolean(stream.isTTY);
  const start = performance.now();
  let firstSend: number | null = null;
  let sent = 0;
  let completed = 0;
  let errors = 0;
  let lastDraw = 0;
  let lastDecile = -1;
  const ttft = new LogHistogram();
  const itl = new LogHistogram();
  const render = (): string => {
    const now = performance.now();
    const elapsed = (now - start) / 1000;
    const finished = completed + errors;
    const eta = finished > 0 ? (elapsed / finished) * (opts.total - finished) : NaN;
    const width = 20;
    const filled = opts.total ? Math.round((finished / opts.total) * width) : width;
    const bar = '#'.repeat(filled) + '-'.repeat(width - filled);
    const since = firstSend === null ? 0 : (now - firstSend) / 1000;
    const rate = since > 0 ? (completed / since).toFixed(1) : '--';
    return (
      `${opts.label} [${bar}] sent ${sent}/${opts.total} done ${completed} errors ${errors} ` +
      `TTFT p50 ${fmtMs(ttft.percentile(50))} ITL p50 ${fmtMs(itl.percentile(50))} ${rate} req/s ${fmtSecs(elapsed)} ETA ${fmtSecs(eta)}`
    );
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
      if (ev.type === 'sent') {
        sent++;
        firstSend ??= performance.now();
      } else if (ev.success) {
        completed++;
        if (ev.ttftMs !== null) ttft.add(ev.ttftMs);
        for (const g of ev.itlMs) itl.add(g);
      } else errors++;
      draw();
    },
    done() {
      if (!enabled) return;
      if (tty) stream.write(`\r\x1b[2K${render()}\n`);
      else if (lastDecile !== 10) stream.write(`${render()}\n`);
    },
  };
}
