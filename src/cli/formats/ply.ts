/**
 * PLY (Stanford polygon format): a reader for ASCII, binary little-endian and binary big-endian
 * files (the `vertex` element's scalar properties become columns; other elements, and list
 * properties such as faces, are skipped) and a writer for points with computed attributes.
 */
import { DataFileError } from '../errors.js';
import { columnOf, concat, formatValue, parseNumber, readScalar, SIZE, viewOf, writeScalar, type Column, type ColumnData, type PointTable, type ScalarKind } from './table.js';

type PlyFormat = 'ascii' | 'binary_little_endian' | 'binary_big_endian';

interface Property {
  readonly name: string;
  readonly kind: ScalarKind;
  /** For a list property: the kind of its count (the items are `kind`). */
  readonly countKind?: ScalarKind;
}

interface Element {
  readonly name: string;
  readonly count: number;
  readonly props: Property[];
}

const TYPES: Readonly<Record<string, ScalarKind>> = {
  char: 'int8', int8: 'int8', uchar: 'uint8', uint8: 'uint8',
  short: 'int16', int16: 'int16', ushort: 'uint16', uint16: 'uint16',
  int: 'int32', int32: 'int32', uint: 'uint32', uint32: 'uint32',
  float: 'float32', float32: 'float32', double: 'float64', float64: 'float64',
};

const PLY_NAME: Readonly<Record<ScalarKind, string>> = {
  int8: 'char', uint8: 'uchar', int16: 'short', uint16: 'ushort', int32: 'int', uint32: 'uint', float32: 'float', float64: 'double',
};

/** Where the header ends: the byte after `end_header` and its line break, or -1. */
function headerEnd(bytes: Uint8Array): number {
  const limit = Math.min(bytes.length, 1 << 20);
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, limit));
  const m = /(^|\n)end_header[ \t]*\r?\n/.exec(text);
  if (m !== null) return m.index + m[0].length;
  const atEof = /(^|\n)end_header[ \t]*\r?$/.exec(text);
  return atEof !== null && limit === bytes.length ? bytes.length : -1;
}

/** Parses the header lines into the format and elements. */
function parseHeader(file: string, header: string): { format: PlyFormat; elements: Element[] } {
  const lines = header.split(/\r?\n/);
  const fail = (line: number, msg: string): never => {
    throw new DataFileError(file, `PLY header line ${line + 1}: ${msg}`);
  };
  let format: PlyFormat | undefined;
  const elements: Element[] = [];
  lines.forEach((raw, k) => {
    const line = raw.trim();
    if (k === 0 || line === '' || line === 'end_header') return;
    const t = line.split(/\s+/);
    switch (t[0]) {
      case 'comment':
      case 'obj_info':
        return;
      case 'format': {
        if (t[1] !== 'ascii' && t[1] !== 'binary_little_endian' && t[1] !== 'binary_big_endian') {
          fail(k, `unknown format '${t[1] ?? ''}' (expected ascii, binary_little_endian or binary_big_endian)`);
        }
        format = t[1] as PlyFormat;
        return;
      }
      case 'element': {
        const count = Number(t[2]);
        if (t.length !== 3 || !Number.isInteger(count) || count < 0) fail(k, `expected 'element NAME COUNT', got '${line}'`);
        elements.push({ name: t[1]!, count, props: [] });
        return;
      }
      case 'property': {
        const el = elements[elements.length - 1] ?? fail(k, `property before any element: '${line}'`);
        if (t[1] === 'list') {
          const countKind = TYPES[t[2] ?? ''];
          const kind = TYPES[t[3] ?? ''];
          if (t.length !== 5 || countKind === undefined || kind === undefined) fail(k, `expected 'property list COUNT_TYPE ITEM_TYPE NAME', got '${line}'`);
          el.props.push({ name: t[4]!, kind: kind!, countKind: countKind! });
        } else {
          const kind = TYPES[t[1] ?? ''];
          if (t.length !== 3 || kind === undefined) fail(k, `expected 'property TYPE NAME' with a PLY scalar type, got '${line}'`);
          el.props.push({ name: t[2]!, kind: kind! });
        }
        return;
      }
      default:
        fail(k, `unknown keyword '${t[0]}'`);
    }
  });
  if (format === undefined) fail(0, "no 'format' line");
  return { format: format!, elements };
}

/**
 * Reads a PLY file's vertices as columns. Errors (a DataFileError naming the file) say what is
 * wrong: not a PLY file, a bad header line, no vertex element, a truncated body, a bad value.
 */
export function readPLY(file: string, bytes: Uint8Array): PointTable {
  const magic = new TextDecoder('latin1').decode(bytes.subarray(0, 5));
  if (!/^ply\r?\n/.test(magic)) throw new DataFileError(file, "not a PLY file: it does not start with the line 'ply'");
  const end = headerEnd(bytes);
  if (end < 0) throw new DataFileError(file, "PLY header has no 'end_header' line (not a PLY file, or the header is cut)");
  const { format, elements } = parseHeader(file, new TextDecoder('latin1').decode(bytes.subarray(0, end)));
  const vertex = elements.find((e) => e.name === 'vertex');
  if (vertex === undefined) {
    throw new DataFileError(file, `PLY header declares no 'vertex' element (elements: ${elements.map((e) => e.name).join(', ') || 'none'})`);
  }
  const label = `PLY (${format})`;
  const columns = format === 'ascii'
    ? readAscii(file, bytes.subarray(end), elements, vertex)
    : readBinary(file, bytes, end, elements, vertex, format === 'binary_little_endian');
  return { file, format: label, count: vertex.count, columns };
}

function scalarColumns(vertex: Element): { cols: Column[]; slots: (ColumnData | undefined)[] } {
  const cols: Column[] = [];
  const slots = vertex.props.map((p) => {
    if (p.countKind !== undefined) return undefined;
    const values = columnOf(p.kind, vertex.count);
    cols.push({ name: p.name, values });
    return values;
  });
  return { cols, slots };
}

function readBinary(file: string, bytes: Uint8Array, start: number, elements: readonly Element[], vertex: Element, little: boolean): Column[] {
  const v = viewOf(bytes);
  const { cols, slots } = scalarColumns(vertex);
  let at = start;
  for (const el of elements) {
    const fixed = el.props.every((p) => p.countKind === undefined);
    const stride = el.props.reduce((s, p) => s + SIZE[p.kind], 0);
    if (fixed && at + el.count * stride > bytes.length) {
      const have = Math.max(0, bytes.length - at);
      throw new DataFileError(
        file,
        `truncated binary PLY: the header declares ${el.count} '${el.name}' records of ${stride} bytes (${el.count * stride} bytes) ` +
          `from byte ${at}, but only ${have} bytes follow (the file ends in record ${Math.floor(have / Math.max(1, stride))})`,
      );
    }
    for (let i = 0; i < el.count; i++) {
      el.props.forEach((p, k) => {
        if (p.countKind !== undefined) {
          if (at + SIZE[p.countKind] > bytes.length) truncated(file, el, i);
          const n = readScalar(v, at, p.countKind, little);
          at += SIZE[p.countKind];
          if (n < 0 || at + n * SIZE[p.kind] > bytes.length) truncated(file, el, i);
          at += n * SIZE[p.kind];
          return;
        }
        if (el === vertex) slots[k]![i] = readScalar(v, at, p.kind, little);
        at += SIZE[p.kind];
      });
    }
    if (el === vertex) break; // what follows the vertices is not needed
  }
  return cols;
}

function truncated(file: string, el: Element, i: number): never {
  throw new DataFileError(file, `truncated binary PLY: the file ends inside '${el.name}' record ${i} of ${el.count}`);
}

function readAscii(file: string, body: Uint8Array, elements: readonly Element[], vertex: Element): Column[] {
  const lines = new TextDecoder('latin1').decode(body).split('\n');
  const { cols, slots } = scalarColumns(vertex);
  let line = 0;
  for (const el of elements) {
    for (let i = 0; i < el.count; i++) {
      while (line < lines.length && lines[line]!.trim() === '') line++;
      if (line >= lines.length) {
        throw new DataFileError(file, `truncated ASCII PLY: the header declares ${el.count} '${el.name}' records, the file ends after ${i}`);
      }
      const t = lines[line]!.trim().split(/\s+/);
      let at = 0;
      const where = `line ${line + 1} of the body ('${el.name}' record ${i})`;
      el.props.forEach((p, k) => {
        if (at >= t.length) throw new DataFileError(file, `${where}: too few values for property '${p.name}'`);
        if (p.countKind !== undefined) {
          const n = Number(t[at]);
          if (!Number.isInteger(n) || n < 0) throw new DataFileError(file, `${where}: bad list length '${t[at]}' for '${p.name}'`);
          at += 1 + n;
          if (at > t.length) throw new DataFileError(file, `${where}: list '${p.name}' has fewer than ${n} items`);
          return;
        }
        const x = parseNumber(t[at]!);
        if (Number.isNaN(x) && !/nan/i.test(t[at]!)) throw new DataFileError(file, `${where}: '${t[at]}' is not a number (property '${p.name}')`);
        if (el === vertex) slots[k]![i] = x;
        at++;
      });
      if (at !== t.length) throw new DataFileError(file, `${where}: ${t.length} values, the header declares ${at}`);
      line++;
    }
    if (el === vertex) break;
  }
  return cols;
}

/** A column to write: float32 values are PLY `float`, int32 `int`, and any scalar kind can be given. */
export interface OutColumn {
  readonly name: string;
  readonly values: ArrayLike<number>;
  readonly kind: ScalarKind;
}

/** Writes points (`count` rows of the given columns) as a PLY file: binary little-endian by default. */
export function writePLY(columns: readonly OutColumn[], count: number, opts: { format?: PlyFormat; comments?: readonly string[] } = {}): Uint8Array {
  const format = opts.format ?? 'binary_little_endian';
  const head = [
    'ply',
    `format ${format} 1.0`,
    ...(opts.comments ?? []).map((c) => `comment ${c}`),
    `element vertex ${count}`,
    ...columns.map((c) => `property ${PLY_NAME[c.kind]} ${c.name}`),
    'end_header',
    '',
  ].join('\n');
  const headBytes = new TextEncoder().encode(head);
  if (format === 'ascii') {
    const rows: string[] = [];
    for (let i = 0; i < count; i++) rows.push(columns.map((c) => formatValue(c.values[i]!, c.kind)).join(' '));
    const body = new TextEncoder().encode(rows.join('\n') + (count > 0 ? '\n' : ''));
    return concat(headBytes, body);
  }
  const stride = columns.reduce((s, c) => s + SIZE[c.kind], 0);
  const body = new Uint8Array(stride * count);
  const v = viewOf(body);
  const little = format === 'binary_little_endian';
  let at = 0;
  for (let i = 0; i < count; i++) {
    for (const c of columns) {
      writeScalar(v, at, c.kind, c.values[i]!, little);
      at += SIZE[c.kind];
    }
  }
  return concat(headBytes, body);
}
