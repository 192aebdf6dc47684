/**
 * A small RFC 4180 CSV reader/writer that remembers how the file was written (line ending, final newline,
 * each cell's raw text), so a sheet that is read and written back unchanged is byte-identical.
 */

export interface CsvCell {
  /** The cell's value (unquoted). */
  value: string;
  /** The cell exactly as it appeared in the file (quotes included); undefined for cells set by code. */
  raw?: string;
}

export interface CsvDocument {
  rows: CsvCell[][];
  /** Line ending used between rows ("\r\n" for the template sheet, "\n" for the later one). */
  eol: '\n' | '\r\n';
  /** Whether the file ended with a line ending. */
  finalNewline: boolean;
}

/** Parse CSV text. Quoted fields may contain commas, quotes ("") and line breaks. */
export function parseCsv(text: string): CsvDocument {
  const crlf = text.indexOf('\r\n');
  const lf = text.indexOf('\n');
  const eol: '\n' | '\r\n' = crlf !== -1 && crlf < lf ? '\r\n' : '\n';
  const finalNewline = text.endsWith('\n');
  const body = finalNewline ? text.slice(0, text.endsWith('\r\n') ? -2 : -1) : text;
  const rows: CsvCell[][] = [];
  if (body.length === 0 && !finalNewline) return { rows, eol, finalNewline };
  let row: CsvCell[] = [];
  let i = 0;
  for (;;) {
    const start = i;
    let value = '';
    if (body[i] === '"') {
      i++;
      for (;;) {
        if (i >= body.length) throw new Error('unterminated quoted field');
        if (body[i] === '"') {
          if (body[i + 1] === '"') {
            value += '"';
            i += 2;
            continue;
          }
          i++;
          break;
        }
        value += body[i];
        i++;
      }
      // Anything after the closing quote up to the separator is kept verbatim (lenient, like most readers).
      while (i < body.length && body[i] !== ',' && body[i] !== '\n' && body[i] !== '\r') value += body[i++];
    } else {
      while (i < body.length && body[i] !== ',' && body[i] !== '\n' && body[i] !== '\r') i++;
      value = body.slice(start, i);
    }
    row.push({ value, raw: body.slice(start, i) });
    if (i >= body.length) {
      rows.push(row);
      break;
    }
    if (body[i] === ',') {
      i++;
      continue;
    }
    // line break (\r\n, \n or a lone \r)
    i += body[i] === '\r' && body[i + 1] === '\n' ? 2 : 1;
    rows.push(row);
    row = [];
  }
  return { rows, eol, finalNewline };
}

/** Quote a value only when CSV needs it. */
export function quoteCsv(value: string): string {
  return /[",\r\n]/.test(value) ? `"${value.replaceAll('"', '""')}"` : value;
}

/** Serialise; unchanged cells are written exactly as read. */
export function stringifyCsv(doc: CsvDocument): string {
  const lines = doc.rows.map((row) => row.map((c) => c.raw ?? quoteCsv(c.value)).join(','));
  return lines.join(doc.eol) + (doc.finalNewline ? doc.eol : '');
}

/** Set a cell's value (padding the row with empty cells); keeps the raw text when the value is unchanged. */
export function setCell(row: CsvCell[], index: number, value: string): void {
  while (row.length <= index) row.push({ value: '' });
  const cell = row[index]!;
  if (cell.value === value) return;
  row[index] = { value };
}

/** 0 → A, 25 → Z, 26 → AA (spreadsheet column letters). */
export function columnLetter(index: number): string {
  let s = '';
  let n = index + 1;
  while (n > 0) {
    const r = (n - 1) % 26;
    s = String.fromCharCode(65 + r) + s;
    n = Math.floor((n - 1) / 26);
  }
  return s;
}

/** A → 0, AA → 26. */
export function columnIndex(letter: string): number {
  let n = 0;
  for (const ch of letter.toUpperCase()) n = n * 26 + (ch.charCodeAt(0) - 64);
  return n - 1;
}
