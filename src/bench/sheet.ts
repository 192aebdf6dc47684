/**
 * The sprint sheet (reference layout: rows TTFT/TPOT/ITL x Mean/Median/P99 in ms, one column block per
 * experiment set with its steady rates and a flood column) and the long-format CSV.
 *
 * - `writeSheet` merges one set's runs into an existing sheet (layout detected from its row 2 titles, every
 *   other cell left byte-for-byte as it was) or creates a new sheet in the layout. A set the sheet
 *   does not have yet gets a new block appended on the right. A run whose rate has no column in the set's
 *   existing block is an error (nothing is written): columns are never inserted, so other sets keep theirs.
 * - `readSheet` returns the sheet as data (for compare and the report).
 * - `writeLongCsv` writes one row per run x metric x stat, which pandas reads directly.
 */
import { mkdir, readFile, rename, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { RuntimeError, UsageError } from '../util/errors.js';
import { LATENCY_METRICS, type RunResult } from './result.js';
import { type CsvDocument, columnLetter, parseCsv, quoteCsv, setCell, stringifyCsv } from './sheet-csv.js';
import {
  DEFAULT_SHEET_RATES,
  type SheetLayout,
  type SheetLayoutName,
  appendBlock,
  detectLayout,
  metricRowKey,
  newSheetDocument,
  setNameOfTitle,
} from './sheet-layout.js';
import {
  type PointKey,
  type PointKind,
  SHEET_METRICS,
  SHEET_STATS,
  type SheetMetric,
  type SheetStat,
  formatRate,
  formatSheetNumber,
  latestPerPoint,
  numberField,
  offeredRate,
  pointLabel,
  resultKey,
} from './sheet-runs.js';

export type { SheetLayoutName } from './sheet-layout.js';

/** Mean / Median / P99 of one metric at one point, ms (null = empty cell). */
export type SheetStats = Record<SheetStat, number | null>;

export interface SheetPoint {
  kind: PointKind;
  /** Steady rate in req/s; null for flood. */
  rate: number | null;
  /** Spreadsheet column letter, e.g. "O". */
  column: string;
  ttft: SheetStats;
  tpot: SheetStats;
  itl: SheetStats;
}

export interface SheetSet {
  /** Set name derived from the title ("PD Disaggregation Nixl" → "pd-disaggregation-nixl"). */
  set: string;
  title: string;
  firstColumn: string;
  lastColumn: string;
  points: SheetPoint[];
}

export interface Sheet {
  path: string;
  /** Which known layout the set order matches ('custom' when none does). */
  layout: SheetLayoutName;
  sets: SheetSet[];
}

async function readText(path: string): Promise<string | null> {
  try {
    return await readFile(path, 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new RuntimeError(`cannot read the sheet ${path}: ${(e as Error).message}`);
  }
}

function parseSheetText(text: string, path: string): { doc: CsvDocument; layout: SheetLayout } {
  let doc: CsvDocument;
  try {
    doc = parseCsv(text);
  } catch (e) {
    throw new UsageError(`${path} is not valid CSV: ${(e as Error).message}`);
  }
  return { doc, layout: detectLayout(doc, path) };
}

function parseCellNumber(text: string | undefined): number | null {
  const t = (text ?? '').trim();
  if (t === '') return null;
  const n = Number(t);
  return Number.isFinite(n) ? n : null;
}

function toSheet(doc: CsvDocument, layout: SheetLayout, path: string): Sheet {
  const sets = layout.blocks.map((b) => ({
    set: b.set,
    title: b.title,
    firstColumn: columnLetter(b.start),
    lastColumn: columnLetter(b.end - 1),
    points: b.columns.map((c) => {
      const stats = (metric: SheetMetric): SheetStats => {
        const get = (stat: SheetStat) =>
          parseCellNumber(doc.rows[layout.metricRows.get(metricRowKey(metric, stat))!]?.[c.index]?.value);
        return { mean: get('mean'), median: get('median'), p99: get('p99') };
      };
      return { kind: c.kind, rate: c.rate, column: columnLetter(c.index), ttft: stats('ttft'), tpot: stats('tpot'), itl: stats('itl') };
    }),
  }));
  return { path, layout: layout.name, sets };
}

/** Read a sprint sheet into data. Throws UsageError when the file is missing or is not a sheet. */
export async function readSheet(path: string): Promise<Sheet> {
  const text = await readText(path);
  if (text === null)
    throw new UsageError(`sheet not found: ${path}`, { hint: 'Pass the path of a sprint sheet CSV (e.g. the one `pd bench` writes).' });
  const { doc, layout } = parseSheetText(text, path);
  return toSheet(doc, layout, path);
}

/** Parse sheet text already in memory (same result as readSheet). */
export function parseSheet(text: string, path = 'sheet'): Sheet {
  const { doc, layout } = parseSheetText(text, path);
  return toSheet(doc, layout, path);
}

/**
 * Merge `results` (runs of one set) into the sheet at `sheetPath`, creating it (and its directory) when missing.
 * Each steady rate / flood cell gets the run that represents it (sprint runs over single runs, latest first).
 */
export async function writeSheet(opts: { sheetPath: string; set: string; results: RunResult[] }): Promise<void> {
  const { sheetPath, set } = opts;
  const text = await readText(sheetPath);
  const next = mergeIntoSheet(text, sheetPath, set, opts.results);
  if (next === text) return;
  await mkdir(dirname(sheetPath), { recursive: true });
  const tmp = `${sheetPath}.${process.pid}.tmp`;
  await writeFile(tmp, next);
  await rename(tmp, sheetPath);
}

/** The sheet text after merging (pure; `text` null = no sheet yet). Exported for tests and dry runs. */
export function mergeIntoSheet(text: string | null, where: string, set: string, results: readonly RunResult[]): string {
  const foreign = results.filter((r) => typeof r.pd_set === 'string' && r.pd_set !== set);
  if (foreign.length > 0)
    throw new UsageError(
      `writeSheet for set "${set}" was given runs of set "${foreign[0]!.pd_set}"`,
      { hint: 'Write each set separately (one writeSheet call per set).' },
    );
  const doc = text === null ? newSheetDocument() : parseSheetText(text, where).doc;
  let layout = detectLayout(doc, where);
  const all = latestPerPoint(results);
  let block = layout.blocks.find((b) => b.set === setNameOfTitle(set) || b.title === set);
  if (block === undefined) {
    const rates = new Set<number>(DEFAULT_SHEET_RATES);
    for (const { point, run } of all.values()) if (point.rate !== null && run.pd_run_kind !== 'single') rates.add(point.rate);
    appendBlock(doc, set, [...rates].sort((a, b) => a - b));
    layout = detectLayout(doc, where);
    block = layout.blocks[layout.blocks.length - 1]!;
  }
  const found = block;
  const fits = (p: PointKey) => found.columns.some((c) => c.kind === p.kind && c.rate === p.rate);
  // Ad-hoc `pd bench run` runs at a rate the sheet has no column for are left out (they are in the long CSV);
  // sprint runs that do not fit are an error.
  const points = [...all.values()].filter(({ point, run }) => run.pd_run_kind !== 'single' || fits(point));
  const unplaced = points.filter(({ point }) => !fits(point));
  if (unplaced.length > 0) {
    const have = found.columns.map((c) => (c.kind === 'flood' ? 'flood' : formatRate(c.rate!))).join(', ');
    throw new UsageError(
      `the sheet ${where} has no column for ${unplaced.map((u) => pointLabel(u.point)).join(', ')} in set "${set}" ` +
        `(its columns ${columnLetter(found.start)}..${columnLetter(found.end - 1)} hold: ${have})`,
      {
        hint: 'Use the sheet\'s rates (row 4) for this set, or write to a new sheet file (bench.sheet in the config); ' +
          'pd never inserts columns into an existing sheet, so other sets keep their columns.',
      },
    );
  }
  for (const { point, run } of points) {
    const col = found.columns.find((c) => c.kind === point.kind && c.rate === point.rate)!;
    for (const m of SHEET_METRICS)
      for (const s of SHEET_STATS) {
        const v = numberField(run, resultKey(m.metric, s.stat));
        setCell(doc.rows[layout.metricRows.get(metricRowKey(m.metric, s.stat))!]!, col.index, v === null ? '' : formatSheetNumber(v));
      }
  }
  return stringifyCsv(doc);
}

/**
 * Header of the long-format CSV. A failed run contributes one row and no numbers: metric `run_failed`, stat
 * `error`, empty values (its error is in its result JSON and the report).
 */
export const LONG_CSV_COLUMNS = ['set', 'run', 'run_kind', 'rate', 'metric', 'stat', 'value_ms', 'value', 'unit'] as const;

interface LongRow {
  metric: string;
  stat: string;
  value: number;
  unit: string;
}

const STAT_ORDER = (stat: string): number =>
  stat === 'mean' ? -3 : stat === 'median' ? -2 : stat === 'std' ? -1 : Number(stat.slice(1));

/** Every number of one run as long rows (latency stats in ms, stage split, throughput, counts). */
export function longRowsOf(r: RunResult): LongRow[] {
  const rows: LongRow[] = [];
  const rec = r as Record<string, unknown>;
  for (const metric of LATENCY_METRICS) {
    const stats: string[] = [];
    for (const key of Object.keys(rec)) {
      const m = new RegExp(`^(mean|median|std|p\\d+(?:\\.\\d+)?)_${metric}_ms$`).exec(key);
      if (m && typeof rec[key] === 'number') stats.push(m[1]!);
    }
    stats.sort((a, b) => STAT_ORDER(a) - STAT_ORDER(b));
    for (const stat of stats) rows.push({ metric, stat, value: rec[`${stat}_${metric}_ms`] as number, unit: 'ms' });
  }
  if (r.pd_itl_per_token_ms) {
    const stats = Object.keys(r.pd_itl_per_token_ms)
      .filter((k) => k.endsWith('_ms'))
      .map((k) => k.slice(0, -3))
      .sort((a, b) => STAT_ORDER(a) - STAT_ORDER(b));
    for (const stat of stats) rows.push({ metric: 'itl_per_token', stat, value: r.pd_itl_per_token_ms[`${stat}_ms`]!, unit: 'ms' });
  }
  if (r.pd_stage_split) {
    for (const [metric, s] of [['prefill', r.pd_stage_split.prefill_ms], ['decode_ttfb', r.pd_stage_split.decode_ttfb_ms]] as const)
      for (const stat of ['mean', 'median', 'p99'] as const) rows.push({ metric, stat, value: s[stat], unit: 'ms' });
  }
  const scalar = (metric: string, unit: string, key = metric) => {
    const v = numberField(r, key);
    if (v !== null) rows.push({ metric, stat: 'value', value: v, unit });
  };
  scalar('request_throughput', 'req/s');
  scalar('request_goodput', 'req/s');
  scalar('output_throughput', 'tok/s');
  scalar('total_token_throughput', 'tok/s');
  scalar('max_output_tokens_per_s', 'tok/s');
  scalar('duration', 's');
  scalar('completed', 'requests');
  scalar('failed', 'requests');
  scalar('good_request_fraction', 'fraction', 'pd_good_request_fraction');
  if (r.pd_kv_cache) {
    const unit = r.pd_kv_cache.unit ?? 'count';
    rows.push({ metric: 'kv_cache_hits', stat: 'value', value: r.pd_kv_cache.hits, unit });
    if (r.pd_kv_cache.misses !== null) rows.push({ metric: 'kv_cache_misses', stat: 'value', value: r.pd_kv_cache.misses, unit });
  }
  return rows;
}

/** The long-format CSV text of `results` (LF line endings, header first). */
export function longCsv(results: readonly RunResult[]): string {
  const lines = [LONG_CSV_COLUMNS.join(',')];
  for (const r of results) {
    const rate = offeredRate(r);
    const rateText = rate === null ? 'inf' : String(rate);
    if (r.pd_failed) {
      const cells = [r.pd_set, r.pd_run_name, r.pd_run_kind, rateText, 'run_failed', 'error', '', '', ''];
      lines.push(cells.map((c) => quoteCsv(c)).join(','));
      continue;
    }
    for (const row of longRowsOf(r)) {
      const cells = [
        r.pd_set,
        r.pd_run_name,
        r.pd_run_kind,
        rateText,
        row.metric,
        row.stat,
        row.unit === 'ms' ? String(row.value) : '',
        String(row.value),
        row.unit,
      ];
      lines.push(cells.map((c) => quoteCsv(c ?? '')).join(','));
    }
  }
  return lines.join('\n') + '\n';
}

/** Write the long-format CSV (one row per run x metric x stat; flood rate is "inf", which pandas reads as a float). */
export async function writeLongCsv(opts: { path: string; results: RunResult[] }): Promise<void> {
  await mkdir(dirname(opts.path), { recursive: true });
  await writeFile(opts.path, longCsv(opts.results));
}
