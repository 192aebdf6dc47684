/** `pd logs`: last lines of engine/proxy/supervisor logs, and following them as they grow. */
import { open, readdir, stat } from 'node:fs/promises';
import { join, basename } from 'node:path';
import { UsageError } from '../util/errors.js';
import { sleep } from '../util/timers.js';

export interface LogSource {
  name: string;
  file: string;
}

/** The log files of a state dir: <stateDir>/logs/<name>.log. */
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

/** The last n lines of a file, reading only its end. */
export async function tailFile(file: string, n: number): Promise<{ lines: string[]; size: number }> {
  const fh = await open(file, 'r');
  try {
    const { size } = await fh.stat();
    let pos = size;
    let text = '';
    const chunk = 64 * 1024;
    while (pos > 0 && text.split('\n').length <= n + 1) {
      const len = Math.min(chunk, pos);
      pos -= len;
      const buf = Buffer.alloc(len);
      await fh.read(buf, 0, len, pos);
      text = buf.toString('utf8') + text;
    }
    const lines = text.split('\n');
    if (lines[lines.length - 1] === '') lines.pop();
    return { lines: n === 0 ? [] : lines.slice(-n), size };
  } finally {
    await fh.close();
  }
}

/** Follow files as they grow (and start again if one is truncated or rotated). Stops when the signal aborts. */
export async function followFiles(
  sources: Array<LogSource & { offset: number }>,
  onLine: (source: string, line: string) => void,
  signal: AbortSignal,
  pollMs = 200,
): Promise<void> {
  const partial = new Map<string, string>();
  while (!signal.aborted) {
    for (const s of sources) {
      const size = await stat(s.file).then((st) => st.size).catch(() => -1);
      if (size < 0) continue;
      if (size < s.offset) s.offset = 0;
      if (size === s.offset) continue;
      const fh = await open(s.file, 'r');
      try {
        const buf = Buffer.alloc(size - s.offset);
        await fh.read(buf, 0, buf.length, s.offset);
        s.offset = size;
        const text = (partial.get(s.name) ?? '') + buf.toString('utf8');
        const lines = text.split('\n');
        partial.set(s.name, lines.pop() ?? '');
        for (const line of lines) onLine(s.name, line);
      } finally {
        await fh.close();
      }
    }
    await sleep(pollMs, signal);
  }
}
