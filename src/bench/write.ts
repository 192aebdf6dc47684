/** Writing a run's files: `<set>/<run>.json` (RunResult) and `<set>/<run>.requests.jsonl`. */
import { mkdir, open, writeFile, rename } from 'node:fs/promises';
import { dirname } from 'node:path';
import { readFileSync } from 'node:fs';
import { runFiles, type RequestRecord, type RunResult } from './result.js';

let cachedVersion: string | null = null;
export function pdVersion(): string {
  if (cachedVersion === null) {
    try {
      cachedVersion = (JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }).version;
    } catch {
      cachedVersion = 'unknown';
    }
  }
  return cachedVersion;
}

/** vLLM's `date` format: %Y%m%d-%H%M%S (local time). */
export function vllmDate(d = new Date()): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${d.getFullYear()}${p(d.getMonth() + 1)}${p(d.getDate())}-${p(d.getHours())}${p(d.getMinutes())}${p(d.getSeconds())}`;
}

/** One top-level key per line (readable with less/grep), arrays kept on their line. */
export function formatResultJson(r: RunResult): string {
  const lines = Object.entries(r).map(([k, v]) => `  ${JSON.stringify(k)}: ${JSON.stringify(v ?? null)}`);
  return `{\n${lines.join(',\n')}\n}\n`;
}

export async function writeRunFiles(
  resultsDir: string,
  result: RunResult,
  records: readonly RequestRecord[],
): Promise<{ json: string; requests: string }> {
  const files = runFiles(resultsDir, result.pd_set, result.pd_run_name);
  await mkdir(dirname(files.json), { recursive: true });
  const fh = await open(`${files.requests}.tmp`, 'w');
  try {
    let buf = '';
    for (const r of records) {
      buf += JSON.stringify(r) + '\n';
      if (buf.length > 1 << 20) {
        await fh.write(buf);
        buf = '';
      }
    }
    if (buf) await fh.write(buf);
  } finally {
    await fh.close();
  }
  await rename(`${files.requests}.tmp`, files.requests);
  await writeFile(`${files.json}.tmp`, formatResultJson(result));
  await rename(`${files.json}.tmp`, files.json);
  return files;
}
