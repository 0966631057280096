/**
 * CSV (and other delimited text): a reader that finds the delimiter (comma, semicolon, tab or
 * spaces), takes the first row as the header when it is not all numbers (columns `0, 1, ...`
 * otherwise) and skips `#` comment lines; a writer with a header row.
 */
import { DataFileError } from '../errors.js';
import { formatValue, isNumberToken, parseNumber, type Column, type PointTable, type ScalarKind } from './table.js';

function splitter(line: string): (s: string) => string[] {
  for (const d of [',', ';', '\t']) if (line.includes(d)) return (s) => s.split(d).map((t) => t.trim());
  return (s) => s.trim().split(/\s+/);
}

const unquote = (s: string): string => (/^".*"$|^'.*'$/.test(s) ? s.slice(1, -1) : s);

/** Reads a delimited text file as columns. */
export function readCSV(file: string, bytes: Uint8Array): PointTable {
  const text = new TextDecoder('utf-8').decode(bytes);
  if (text.includes('\0')) throw new DataFileError(file, 'not a text file (it contains NUL bytes): CSV expected');
  const lines = text.split('\n');
  const rows: { line: number; text: string }[] = [];
  lines.forEach((l, k) => {
    const t = l.replace(/\r$/, '').trim();
    if (t !== '' && !t.startsWith('#')) rows.push({ line: k + 1, text: t });
  });
  if (rows.length === 0) throw new DataFileError(file, 'empty CSV file (no rows)');
  const split = splitter(rows[0]!.text);
  const first = split(rows[0]!.text);
  const hasHeader = first.some((t) => !isNumberToken(unquote(t)));
  const names = hasHeader ? first.map((t, k) => unquote(t) || String(k)) : first.map((_, k) => String(k));
  const dupe = names.find((n, k) => names.indexOf(n) !== k);
  if (dupe !== undefined) throw new DataFileError(file, `CSV header names column '${dupe}' twice`);
  const body = hasHeader ? rows.slice(1) : rows;
  const d = names.length;
  const values = names.map(() => new Float64Array(body.length));
  body.forEach((r, i) => {
    const t = split(r.text);
    if (t.length !== d) throw new DataFileError(file, `line ${r.line}: ${t.length} values, the ${hasHeader ? 'header has' : 'first row has'} ${d}`);
    for (let k = 0; k < d; k++) {
      const s = unquote(t[k]!);
      if (!isNumberToken(s)) throw new DataFileError(file, `line ${r.line}, column '${names[k]}': '${s}' is not a number`);
      values[k]![i] = parseNumber(s);
    }
  });
  const columns: Column[] = names.map((name, k) => ({ name, values: values[k]! }));
  return { file, format: 'CSV', count: body.length, columns };
}

/** A column to write. */
export interface CsvColumn {
  readonly name: string;
  readonly values: ArrayLike<number>;
  readonly kind: ScalarKind;
}

/** Writes columns as CSV with a header row; float32 values as the shortest text that reads back exactly. */
export function writeCSV(columns: readonly CsvColumn[], count: number): Uint8Array {
  const out: string[] = [columns.map((c) => c.name).join(',')];
  for (let i = 0; i < count; i++) out.push(columns.map((c) => formatValue(c.values[i]!, c.kind)).join(','));
  return new TextEncoder().encode(out.join('\n') + '\n');
}
