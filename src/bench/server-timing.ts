/**
 * Reads the PD proxy's `Server-Timing` response header (RFC: `name;dur=12.3;desc="…", other;dur=4`).
 * The prefill stage is the entry whose name contains "prefill"; the decode time-to-first-byte is the entry
 * whose name contains "decode" (preferring one that also says ttfb/first). Durations are in ms.
 */
export interface ServerTimingEntry {
  name: string;
  dur: number | null;
  desc: string | null;
}

export function parseServerTiming(header: string | null | undefined): ServerTimingEntry[] {
  if (!header) return [];
  const out: ServerTimingEntry[] = [];
  for (const part of header.split(',')) {
    const [rawName, ...params] = part.split(';');
    const name = rawName?.trim();
    if (!name) continue;
    let dur: number | null = null;
    let desc: string | null = null;
    for (const p of params) {
      const eq = p.indexOf('=');
      if (eq < 0) continue;
      const key = p.slice(0, eq).trim().toLowerCase();
      const value = p.slice(eq + 1).trim().replace(/^"(.*)"$/, '$1');
      if (key === 'dur') {
        const n = Number(value);
        dur = Number.isFinite(n) ? n : null;
      } else if (key === 'desc') desc = value;
    }
    out.push({ name, dur, desc });
  }
  return out;
}

export interface StageTimes {
  prefillMs: number | null;
  decodeTtfbMs: number | null;
}

export function stageTimes(header: string | null | undefined): StageTimes {
  const entries = parseServerTiming(header).filter((e) => e.dur !== null);
  const lower = (e: ServerTimingEntry): string => `${e.name} ${e.desc ?? ''}`.toLowerCase();
  const prefill = entries.find((e) => lower(e).includes('prefill'));
  const decodes = entries.filter((e) => lower(e).includes('decode'));
  const decode = decodes.find((e) => /ttfb|first/.test(lower(e))) ?? decodes[0];
  return { prefillMs: prefill?.dur ?? null, decodeTtfbMs: decode?.dur ?? null };
}
