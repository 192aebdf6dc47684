/**
 * The sprint sheet's layout: which set sits in which columns, found from the sheet itself (row 2 titles, row 3
 * Steady/flood, row 4 rates), and the layout pd creates for new sheets.
 *
 * Two layouts exist in the reference material and both are read and merged into as they are:
 * - the issue's (and the template's, extended): Tensor Parallelism C..H, Pipeline Parallelism I..N,
 *   PD Disaggregation O..T, Data Parallelism U..Z, PD Disaggregation Nixl AA..AF, PD Disaggregation P2P AG..AL;
 * - the real-GPU results sheet's: the Nixl and P2P blocks inserted before Data Parallelism (U..Z, AA..AF),
 *   Data Parallelism moved to AG..AL.
 * New sheets are created in the issue's layout (the template's four sets keep their columns).
 */
import { UsageError } from '../util/errors.js';
import { type CsvCell, type CsvDocument, columnLetter } from './sheet-csv.js';
import { type PointKey, SHEET_METRICS, SHEET_STATS, type SheetMetric, type SheetStat, formatRate } from './sheet-runs.js';

/** Row 2 titles of the sets the reference workflow knows. */
export const KNOWN_SET_TITLES: Readonly<Record<string, string>> = {
  'tensor-parallelism': 'Tensor Parallelism',
  'pipeline-parallelism': 'Pipeline Parallelism',
  'pd-disaggregation': 'PD Disaggregation',
  'data-parallelism': 'Data Parallelism',
  'pd-disaggregation-nixl': 'PD Disaggregation Nixl',
  'pd-disaggregation-p2p': 'PD Disaggregation P2P',
};

/** Set order of new sheets (the issue's columns C..AL). */
export const ISSUE_SET_ORDER = [
  'tensor-parallelism',
  'pipeline-parallelism',
  'pd-disaggregation',
  'data-parallelism',
  'pd-disaggregation-nixl',
  'pd-disaggregation-p2p',
] as const;

export const TEMPLATE_SET_ORDER = ISSUE_SET_ORDER.slice(0, 4);
export const REAL_GPU_SET_ORDER = [
  'tensor-parallelism',
  'pipeline-parallelism',
  'pd-disaggregation',
  'pd-disaggregation-nixl',
  'pd-disaggregation-p2p',
  'data-parallelism',
] as const;

/** Steady rates of a new block (the reference sprint). */
export const DEFAULT_SHEET_RATES = [2, 4, 8, 16, 32] as const;

export type SheetLayoutName = 'issue' | 'template' | 'real-gpu' | 'custom';

/** Set name of a row 2 title: "PD Disaggregation Nixl" → "pd-disaggregation-nixl". */
export function setNameOfTitle(title: string): string {
  return title.trim().toLowerCase().replace(/\s+/g, '-');
}

/** Row 2 title of a set: the reference title for known sets, the set name itself otherwise. */
export function titleOfSet(set: string): string {
  return KNOWN_SET_TITLES[set] ?? set;
}

export interface SheetColumn extends PointKey {
  /** 0-based column index. */
  index: number;
}

export interface SheetBlock {
  set: string;
  title: string;
  start: number;
  /** One past the last column. */
  end: number;
  columns: SheetColumn[];
}

export interface SheetLayout {
  blocks: SheetBlock[];
  /** Row index of each metric × stat, keyed "ttft:mean". */
  metricRows: Map<string, number>;
  name: SheetLayoutName;
}

export const TITLE_ROW = 1;
export const KIND_ROW = 2;
export const RATE_ROW = 3;
const FIRST_DATA_COLUMN = 2;

export function metricRowKey(metric: SheetMetric, stat: SheetStat): string {
  return `${metric}:${stat}`;
}

function cellValue(doc: CsvDocument, row: number, col: number): string {
  return doc.rows[row]?.[col]?.value.trim() ?? '';
}

/** Find the blocks and metric rows of a sheet; throws UsageError naming what is missing. */
export function detectLayout(doc: CsvDocument, where: string): SheetLayout {
  const width = Math.max(0, ...doc.rows.map((r) => r.length));
  const hint = 'A sprint sheet has row 2 = set titles, row 3 = Steady/flood, row 4 = rates, then TTFT/TPOT/ITL x Mean/Median/P99 rows (see the reference sprint-sheet-template.csv).';
  const starts: number[] = [];
  for (let c = FIRST_DATA_COLUMN; c < width; c++) if (cellValue(doc, TITLE_ROW, c) !== '') starts.push(c);
  if (starts.length === 0) throw new UsageError(`${where} is not a sprint sheet: row 2 has no set titles`, { hint });
  const blocks: SheetBlock[] = starts.map((start, i) => {
    const end = starts[i + 1] ?? width;
    const title = cellValue(doc, TITLE_ROW, start);
    const columns: SheetColumn[] = [];
    for (let c = start; c < end; c++) {
      if (cellValue(doc, KIND_ROW, c).toLowerCase() === 'flood') {
        columns.push({ index: c, kind: 'flood', rate: null });
        continue;
      }
      const rateText = cellValue(doc, RATE_ROW, c);
      const rate = Number(rateText);
      if (rateText !== '' && Number.isFinite(rate)) columns.push({ index: c, kind: 'steady', rate });
    }
    return { set: setNameOfTitle(title), title, start, end, columns };
  });
  const metricRows = new Map<string, number>();
  let current = '';
  for (let r = RATE_ROW + 1; r < doc.rows.length; r++) {
    const a = cellValue(doc, r, 0).toLowerCase();
    if (a !== '') current = a;
    const b = cellValue(doc, r, 1).toLowerCase();
    const metric = SHEET_METRICS.find((m) => m.metric === current);
    const stat = SHEET_STATS.find((s) => s.label.toLowerCase() === b);
    if (metric && stat && !metricRows.has(metricRowKey(metric.metric, stat.stat)))
      metricRows.set(metricRowKey(metric.metric, stat.stat), r);
  }
  const missing: string[] = [];
  for (const m of SHEET_METRICS)
    for (const s of SHEET_STATS)
      if (!metricRows.has(metricRowKey(m.metric, s.stat))) missing.push(`${m.label} ${s.label}`);
  if (missing.length > 0)
    throw new UsageError(`${where} is not a sprint sheet: no row for ${missing.join(', ')}`, { hint });
  return { blocks, metricRows, name: layoutName(blocks.map((b) => b.set)) };
}

function layoutName(order: string[]): SheetLayoutName {
  const same = (ref: readonly string[]) => ref.length === order.length && ref.every((s, i) => s === order[i]);
  if (same(TEMPLATE_SET_ORDER)) return 'template';
  // The issue's layout extends the template's: any longer prefix of it keeps every set in the issue's columns.
  if (order.length > TEMPLATE_SET_ORDER.length && same(ISSUE_SET_ORDER.slice(0, order.length))) return 'issue';
  if (same(REAL_GPU_SET_ORDER)) return 'real-gpu';
  return 'custom';
}

const empty = (): CsvCell => ({ value: '' });

/** A new, empty sheet in the issue's layout (rows 1-13, LF line endings like the later reference sheet). */
export function newSheetDocument(): CsvDocument {
  const doc: CsvDocument = { rows: [], eol: '\n', finalNewline: true };
  doc.rows.push([{ value: 'Metrics (ms)' }, empty()]);
  doc.rows.push([empty(), empty()], [empty(), empty()], [empty(), empty()]);
  for (const m of SHEET_METRICS)
    for (const [i, s] of SHEET_STATS.entries()) doc.rows.push([{ value: i === 0 ? m.label : '' }, { value: s.label }]);
  for (const set of ISSUE_SET_ORDER) appendBlock(doc, set, [...DEFAULT_SHEET_RATES]);
  return doc;
}

/** Append a block for `set` (steady columns at `rates`, then flood) to the right of every row. */
export function appendBlock(doc: CsvDocument, set: string, rates: number[]): void {
  const width = Math.max(FIRST_DATA_COLUMN, ...doc.rows.map((r) => r.length));
  const blockWidth = rates.length + 1;
  for (const row of doc.rows) {
    while (row.length < width) row.push(empty());
    for (let i = 0; i < blockWidth; i++) row.push(empty());
  }
  const at = (r: number, c: number) => doc.rows[r]![width + c]!;
  at(TITLE_ROW, 0).value = titleOfSet(set);
  if (rates.length > 0) at(KIND_ROW, 0).value = 'Steady';
  at(KIND_ROW, rates.length).value = 'flood';
  rates.forEach((rate, i) => (at(RATE_ROW, i).value = formatRate(rate)));
}

export { columnLetter };
