/**
 * `pd logs`: the engine, proxy and supervisor logs of a state dir, merged into one stream ordered by time, and
 * followed as they grow.
 *
 * Engines print no timestamp of their own in general, but vLLM's logger does: `INFO 11-30 02:13:09 [file.py:12]`
 * (vllm/logger.py: `%(levelname)s %(asctime)s [%(fileinfo)s:%(lineno)d] %(message)s`, datefmt `%m-%d %H:%M:%S`,
 * local time, no year), and pd's own lines carry ISO 8601 (the proxy's access log, the banner pd writes before
 * each engine start). Each line is placed at the time it carries; a line without one (uvicorn's access lines,
 * tracebacks) takes the time of the line before it in the same file; a file without any takes its modification
 * time. Lines of one file never change their order; lines at the same time go in file modification order.
 */
import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { UsageError } from '../util/errors.js';
import { parseDuration } from '../util/duration.js';
import { sleep } from '../util/timers.js';

export interface LogSource {
  name: string;
  file: string;
}

/**
 * Where a line's time comes from: the line itself, the line before it in its file (`carried`; lines before a
 * file's first timed line take that one's), the file's modification time (`file`: a file with no timed line), or
 * when `pd logs -f` read it (`arrived`).
 */
export type TimeSource = 'line' | 'carried' | 'file' | 'arrived';

export interface TimedLine {
  source: string;
  line: string;
  /** Epoch milliseconds. */
  time: number;
  from: TimeSource;
  /** The time is known to the second only (vLLM's format). */
  seconds: boolean;
}

/** The log files of a state dir: <stateDir>/logs/<name>.log (rotated `.log.1` files are not shown). */
export async function listLogs(logDir: string): Promise<LogSource[]> {
  const names = await readdir(logDir).catch(() => [] as string[]);
  return names
    .filter((n) => n.endsWith('.log'))
    .sort()
    .map((n) => ({ name: basename(n, '.log'), file: join(logDir, n) }));
}

/** Pick sources by name: an engine (producer-0), a role (producer), proxy, supervisor; none means all. */
export function selectLogs(all: LogSource[], wanted: string | undefined): LogSource[] {
  if (!wanted) return all;
  const picked = all.filter((s) => s.name === wanted || s.name.startsWith(`${wanted}-`));
  if (picked.length === 0) {
    throw new UsageError(`no log named "${wanted}"`, {
      hint: all.length ? `Available: ${all.map((s) => s.name).join(', ')} (or a role: producer, consumer).` : 'No logs yet: start the stack with `pd up`.',
    });
  }
  return picked;
}

// eslint-disable-next-line no-control-regex -- vLLM colours its level and time on a terminal (VLLM_LOGGING_COLOR)
const ANSI = /\x1b\[[0-9;]*m/g;
/** vLLM's logger: level, then `MM-DD HH:MM:SS`, after an optional `(APIServer pid=N) ` or VLLM_LOGGING_PREFIX. */
const VLLM_TIME = /\b(?:DEBUG|INFO|WARNING|ERROR|CRITICAL) (\d\d)-(\d\d) (\d\d):(\d\d):(\d\d)\b/;
/** ISO 8601 with a time, as pd writes it (`2026-11-30T02:13:09.805Z`, in JSON as `"time":"…"`). */
const ISO_TIME = /\b(\d{4}-\d\d-\d\d[T ]\d\d:\d\d:\d\d(?:\.\d+)?(?:Z|[+-]\d\d:?\d\d)?)\b/;
/** Where in a line a timestamp is looked for: prefixes are short, messages may quote dates. */
const HEAD = 160;

/**
 * The time a line carries, or null. vLLM's time has no year: it is the latest date at or before `refMs` (plus a
 * day of slack for clocks and time zones), so a log written on 31 December and read on 1 January stays in order.
 */
export function lineTime(line: string, refMs: number): { time: number; seconds: boolean } | null {
  let head = line.length > HEAD ? line.slice(0, HEAD) : line;
  if (head.includes('\x1b')) head = head.replace(ANSI, '');
  const v = VLLM_TIME.exec(head);
  if (v) {
    const [mo, d, h, mi, s] = v.slice(1).map(Number) as [number, number, number, number, number];
    const ref = new Date(refMs);
    let t = new Date(ref.getFullYear(), mo - 1, d, h, mi, s).getTime();
    if (t > refMs + 86_400_000) t = new Date(ref.getFullYear() - 1, mo - 1, d, h, mi, s).getTime();
    return Number.isNaN(t) ? null : { time: t, seconds: true };
  }
  const iso = ISO_TIME.exec(head);
  if (iso) {
    const t = Date.parse(iso[1]!);
    if (!Number.isNaN(t)) return { time: t, seconds: !/\.\d/.test(iso[1]!) };
  }
  return null;
}

/**
 * `--since`: a duration back from `now` (10m, 2h, 1h30m), a time today (`02:13`, `02:13:09`; yesterday's when
 * that is still to come) or a date and time (`2026-11-30T02:13`, `2026-11-30 02:13:09`, with or without a zone).
 */
export function parseSince(text: string, now = Date.now()): number {
  const s = text.trim();
  if (/^\d+(?:\.\d+)?[a-z]/i.test(s)) return now - parseDuration(s, '--since');
  const clock = /^(\d{1,2}):(\d\d)(?::(\d\d))?$/.exec(s);
  if (clock) {
    const [h, m, sec] = [Number(clock[1]), Number(clock[2]), Number(clock[3] ?? 0)];
    if (h < 24 && m < 60 && sec < 60) {
      const d = new Date(now);
      d.setHours(h, m, sec, 0);
      return d.getTime() > now ? d.getTime() - 86_400_000 : d.getTime();
    }
  }
  if (/^\d{4}-\d\d-\d\d/.test(s)) {
    // A date alone is midnight local time (Date.parse would take it as UTC).
    const t = Date.parse(/^\d{4}-\d\d-\d\d$/.test(s) ? `${s}T00:00` : s.replace(' ', 'T'));
    if (!Number.isNaN(t)) return t;
  }
  throw new UsageError(`--since ${JSON.stringify(text)} is neither a duration nor a time`, {
    hint: 'Use a duration back from now (10m, 2h, 1h30m), a time today (02:13) or a date and time (2026-11-30T02:13).',
  });
}

const CHUNK = 64 * 1024;
const NL = 0x0a;

/** Complete lines ending at byte `end` (a newline's position + 1, or 0), newest first. */
async function* linesBackward(fh: FileHandle, end: number): AsyncGenerator<string> {
  let pos = end;
  let rest = Buffer.alloc(0);
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    pos -= len;
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, pos);
    const data = rest.length > 0 ? Buffer.concat([buf, rest]) : buf;
    let stop = data.length;
    // `data` ends just before a newline (or at `end`): each newline found starts the line after it.
    for (let i = stop > 0 ? data.lastIndexOf(NL, stop - 1) : -1; i >= 0; i = i > 0 ? data.lastIndexOf(NL, i - 1) : -1) {
      yield data.toString('utf8', i + 1, stop);
      stop = i;
    }
    rest = data.subarray(0, stop);
  }
  if (rest.length > 0 || end > 0) yield rest.toString('utf8');
}

/** Where the last complete line of a file ends (a line still being written is left for `pd logs -f`). */
async function completeEnd(fh: FileHandle, size: number): Promise<number> {
  let pos = size;
  while (pos > 0) {
    const len = Math.min(CHUNK, pos);
    const buf = Buffer.alloc(len);
    await fh.read(buf, 0, len, pos - len);
    const i = buf.lastIndexOf(NL);
    if (i >= 0) return pos - len + i + 1;
    pos -= len;
  }
  return 0;
}

export interface HistoryOptions {
  /** At most this many lines (the last ones). */
  lines?: number;
  /** Only lines at or after this time (epoch ms). */
  sinceMs?: number;
  /** Leave out a last line without its newline yet (it is printed whole once `-f` reads the rest). */
  completeOnly?: boolean;
  /** When no timestamp shows up within this many lines of a window, stop looking (the lines keep the next one's). */
  maxScanLines?: number;
  /** Lines left out (still used for the time they carry): the proxy's own /health probes, by default. */
  hide?: (line: string) => boolean;
}

/** Where a file was read up to, for following it on. */
export interface FileMark {
  offset: number;
  ino: number;
}

/**
 * The lines of one file that `options` ask for, each with its time, reading the file backwards only as far as
 * needed: until the window (and one timed line before it, to carry its time forward) or `sinceMs` is reached.
 */
export async function readHistory(source: LogSource, options: HistoryOptions = {}): Promise<{ lines: TimedLine[]; mark: FileMark; mtimeMs: number }> {
  const fh = await open(source.file, 'r');
  try {
    const st = await fh.stat();
    // Every line was written by the file's last modification: the year of vLLM's dates is taken from it.
    const ref = st.mtimeMs;
    const end = options.completeOnly ? await completeEnd(fh, st.size) : st.size;
    const want = options.lines;
    const maxScan = options.maxScanLines ?? 20_000;
    const hide = options.hide;
    const newestFirst: Array<{ line: string; t: ReturnType<typeof lineTime>; hidden: boolean }> = [];
    let shown = 0;
    let first = true;
    for await (const line of linesBackward(fh, end)) {
      // What follows the last newline before `end` is empty when the file (or its complete part) ends in one.
      if (first) {
        first = false;
        if (line === '') continue;
      }
      const t = lineTime(line, ref);
      const hidden = hide?.(line) === true;
      newestFirst.push({ line, t, hidden });
      // Stop at a timed line with the window after it (its time carries into the window), or one before --since.
      if (t !== null && want !== undefined && shown >= want) break;
      if (t !== null && options.sinceMs !== undefined && t.time < options.sinceMs) break;
      if (!hidden) shown++;
      if (want !== undefined && options.sinceMs === undefined && shown >= want + maxScan) break;
    }
    const lines: TimedLine[] = [];
    let carry: { time: number; seconds: boolean } | null = null;
    const before: TimedLine[] = [];
    for (let i = newestFirst.length - 1; i >= 0; i--) {
      const { line, t, hidden } = newestFirst[i]!;
      if (t !== null) {
        // Lines before the first timed one take its time (they were written just before it).
        for (const l of before.splice(0)) Object.assign(l, { time: t.time, from: 'carried', seconds: t.seconds });
        carry = t;
      }
      if (hidden) continue;
      const l: TimedLine =
        t !== null
          ? { source: source.name, line, time: t.time, from: 'line', seconds: t.seconds }
          : carry !== null
            ? { source: source.name, line, time: carry.time, from: 'carried', seconds: carry.seconds }
            : { source: source.name, line, time: st.mtimeMs, from: 'file', seconds: false };
      if (l.from === 'file') before.push(l);
      lines.push(l);
    }
    let picked = options.sinceMs === undefined ? lines : lines.filter((l) => l.time >= options.sinceMs!);
    if (want !== undefined) picked = want === 0 ? [] : picked.slice(-want);
    return { lines: picked, mark: { offset: end, ino: st.ino }, mtimeMs: st.mtimeMs };
  } finally {
    await fh.close();
  }
}

/**
 * One stream from many files' lines, ordered by time. Each file's lines keep their order (a line's sort time is
 * never earlier than the line before it in its file); lines at the same time go in the order of `perFile`.
 */
export function mergeByTime(perFile: readonly TimedLine[][]): TimedLine[] {
  const keyed: Array<{ key: number; line: TimedLine }> = [];
  for (const lines of perFile) {
    let floor = -Infinity;
    for (const line of lines) {
      floor = Math.max(floor, line.time);
      keyed.push({ key: floor, line });
    }
  }
  // Array.prototype.sort is stable: equal keys keep the order above.
  return keyed.sort((a, b) => a.key - b.key).map((k) => k.line);
}

/** The merged history of several logs: the last `lines` overall and/or those since `sinceMs`. */
export async function mergedHistory(sources: LogSource[], options: HistoryOptions): Promise<{ lines: TimedLine[]; marks: Map<string, FileMark> }> {
  const read = await Promise.all(
    sources.map(async (s) => ({ source: s, ...(await readHistory(s, options).catch(() => null)) })),
  );
  const marks = new Map<string, FileMark>();
  const present = read.filter((r) => r.lines !== undefined && r.mark !== undefined);
  for (const r of present) marks.set(r.source.file, r.mark!);
  // Ties go to the file modified first ("file modification order").
  present.sort((a, b) => a.mtimeMs! - b.mtimeMs!);
  let lines = mergeByTime(present.map((r) => r.lines!));
  if (options.lines !== undefined) lines = options.lines === 0 ? [] : lines.slice(-options.lines);
  return { lines, marks };
}

/** The last n lines of a file, reading only its end. */
export async function tailFile(file: string, n: number): Promise<{ lines: string[]; size: number }> {
  const { lines, mark } = await readHistory({ name: '', file }, { lines: n, maxScanLines: 0 });
  return { lines: lines.map((l) => l.line), size: mark.offset };
}

export interface FollowOptions {
  /** The sources to follow now (called on every poll, so logs that appear later are followed too). */
  sources: () => Promise<LogSource[]>;
  /** Where each file was read up to (from mergedHistory); files not in it are read from their start. */
  marks: Map<string, FileMark>;
  onLines: (lines: TimedLine[]) => void;
  hide?: (line: string) => boolean;
  signal: AbortSignal;
  pollMs?: number;
}

/**
 * Follow files as they grow, merged: each poll's new lines of every file are ordered by time before they are
 * handed on. A file that is truncated or replaced (rotated by the next `pd up`) is read again from its start.
 * One timer at a time and no listener per poll (src/util/timers.ts); stops when `signal` aborts.
 */
export async function followLogs(opts: FollowOptions): Promise<void> {
  const partial = new Map<string, string>();
  const { marks } = opts;
  while (!opts.signal.aborted) {
    const batch: Array<{ mtimeMs: number; lines: TimedLine[] }> = [];
    for (const s of await opts.sources()) {
      const st = await stat(s.file).catch(() => null);
      if (st === null) continue;
      let mark = marks.get(s.file);
      if (mark === undefined || mark.ino !== st.ino || st.size < mark.offset) {
        mark = { offset: 0, ino: st.ino };
        marks.set(s.file, mark);
        partial.delete(s.file);
      }
      if (st.size === mark.offset) continue;
      const buf = Buffer.alloc(st.size - mark.offset);
      const fh = await open(s.file, 'r');
      try {
        const { bytesRead } = await fh.read(buf, 0, buf.length, mark.offset);
        mark.offset += bytesRead;
        const parts = ((partial.get(s.file) ?? '') + buf.toString('utf8', 0, bytesRead)).split('\n');
        partial.set(s.file, parts.pop() ?? '');
        const now = Date.now();
        const lines: TimedLine[] = [];
        for (const line of parts) {
          if (opts.hide?.(line) === true) continue;
          // A line without a time of its own was written since the last poll: now is closer than any carry.
          const t = lineTime(line, now);
          lines.push(t === null ? { source: s.name, line, time: now, from: 'arrived', seconds: false } : { source: s.name, line, time: t.time, from: 'line', seconds: t.seconds });
        }
        if (lines.length > 0) batch.push({ mtimeMs: st.mtimeMs, lines });
      } finally {
        await fh.close();
      }
    }
    if (batch.length > 0) opts.onLines(mergeByTime(batch.sort((a, b) => a.mtimeMs - b.mtimeMs).map((b) => b.lines)));
    await sleep(opts.pollMs ?? 200, opts.signal);
  }
}
