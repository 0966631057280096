/**
 * What every reader returns: the points of a file as named numeric columns (one value per point),
 * and the attribute selection (`scan.ply:position`, `:normal`, `:intensity`, `:x,y`) that turns
 * some of them into a `[n, d]` float32 TensorLike.
 */
import type { TensorLike } from '../../index.js';
import { DataFileError } from '../errors.js';

/** Numeric column storage (whatever the file holds; converted to float32 on selection). */
export type ColumnData = Float64Array | Float32Array | Int32Array | Uint32Array | Int16Array | Uint16Array | Int8Array | Uint8Array;

/** One named column. */
export interface Column {
  readonly name: string;
  readonly values: ColumnData;
}

/** A file's points as columns, in file order. */
export interface PointTable {
  /** The file (for messages). */
  readonly file: string;
  /** The format, for messages (`'PLY (binary_little_endian)'`). */
  readonly format: string;
  /** The number of points. */
  readonly count: number;
  readonly columns: readonly Column[];
}

/**
 * Named attributes: each is a list of alternative column-name groups (PLY, PCD and LAS spell
 * normals and colours differently); the first group fully present in the file is taken.
 */
const ATTRIBUTES: Readonly<Record<string, readonly (readonly string[])[]>> = {
  position: [['x', 'y', 'z']],
  normal: [['nx', 'ny', 'nz'], ['normal_x', 'normal_y', 'normal_z']],
  color: [['red', 'green', 'blue'], ['r', 'g', 'b']],
  intensity: [['intensity'], ['scalar_intensity'], ['scalar_Intensity']],
};

/** The attribute names `select` knows besides column names. */
export const ATTRIBUTE_NAMES = Object.keys(ATTRIBUTES);

/** The columns an attribute selects, or undefined when the file lacks them. */
function resolve(table: PointTable, attribute: string): Column[] | undefined {
  const exact = new Map(table.columns.map((c) => [c.name, c]));
  const lower = new Map(table.columns.map((c) => [c.name.toLowerCase(), c]));
  const byName = { get: (n: string): Column | undefined => exact.get(n) ?? lower.get(n.toLowerCase()) };
  const groups = ATTRIBUTES[attribute];
  if (groups !== undefined) {
    for (const g of groups) {
      const cols = g.map((n) => byName.get(n));
      if (cols.every((c) => c !== undefined)) return cols as Column[];
    }
  }
  const cols = attribute.split(',').map((n) => byName.get(n.trim()));
  return cols.every((c) => c !== undefined) ? (cols as Column[]) : undefined;
}

/**
 * Selects an attribute of a table as a float32 `[count, d]` tensor. Without an attribute: the
 * position when the file has x, y, z columns, else every column. A missing attribute is a
 * DataFileError listing what the file has.
 */
export function select(table: PointTable, attribute: string | undefined): TensorLike & { readonly columns: readonly string[] } {
  let cols: Column[] | undefined;
  if (attribute === undefined) cols = resolve(table, 'position') ?? [...table.columns];
  else cols = resolve(table, attribute);
  if (cols === undefined || cols.length === 0) {
    const have = table.columns.map((c) => c.name).join(', ') || 'none';
    const known = ATTRIBUTES[attribute ?? ''];
    const lower = new Set(table.columns.map((c) => c.name.toLowerCase()));
    const missing = (attribute ?? '').split(',').filter((n) => !lower.has(n.trim().toLowerCase()));
    const wanted = known !== undefined
      ? `no attribute '${attribute}' (columns ${known.map((g) => g.join(',')).join(' or ')})`
      : `no column${missing.length === 1 ? '' : 's'} ${missing.map((m) => `'${m}'`).join(', ')}`;
    throw new DataFileError(table.file, `${wanted} in this ${table.format} file; its columns are: ${have}`);
  }
  const d = cols.length;
  const n = table.count;
  const data = new Float32Array(n * d);
  for (let k = 0; k < d; k++) {
    const v = cols[k]!.values;
    for (let i = 0; i < n; i++) data[i * d + k] = v[i]!;
  }
  return { data, shape: [n, d], columns: cols.map((c) => c.name) };
}

/** An allocator for a typed column by PLY/PCD/npy scalar kind. */
export function columnOf(kind: ScalarKind, n: number): ColumnData {
  switch (kind) {
    case 'int8': return new Int8Array(n);
    case 'uint8': return new Uint8Array(n);
    case 'int16': return new Int16Array(n);
    case 'uint16': return new Uint16Array(n);
    case 'int32': return new Int32Array(n);
    case 'uint32': return new Uint32Array(n);
    case 'float32': return new Float32Array(n);
    default: return new Float64Array(n);
  }
}

/** The scalar kinds of binary point formats. */
export type ScalarKind = 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'float32' | 'float64';

/** Byte size of a scalar kind. */
export const SIZE: Readonly<Record<ScalarKind, number>> = { int8: 1, uint8: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, float32: 4, float64: 8 };

/** Reads one scalar of a kind from a DataView. */
export function readScalar(v: DataView, at: number, kind: ScalarKind, little: boolean): number {
  switch (kind) {
    case 'int8': return v.getInt8(at);
    case 'uint8': return v.getUint8(at);
    case 'int16': return v.getInt16(at, little);
    case 'uint16': return v.getUint16(at, little);
    case 'int32': return v.getInt32(at, little);
    case 'uint32': return v.getUint32(at, little);
    case 'float32': return v.getFloat32(at, little);
    default: return v.getFloat64(at, little);
  }
}

/** Writes one scalar of a kind into a DataView. */
export function writeScalar(v: DataView, at: number, kind: ScalarKind, x: number, little: boolean): void {
  switch (kind) {
    case 'int8': v.setInt8(at, x); break;
    case 'uint8': v.setUint8(at, x); break;
    case 'int16': v.setInt16(at, x, little); break;
    case 'uint16': v.setUint16(at, x, little); break;
    case 'int32': v.setInt32(at, x, little); break;
    case 'uint32': v.setUint32(at, x, little); break;
    case 'float32': v.setFloat32(at, x, little); break;
    default: v.setFloat64(at, x, little);
  }
}

/** Two byte arrays end to end. */
export function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** A DataView over a Node Buffer or Uint8Array. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** Parses a decimal number as the text formats write it; NaN for anything else (`nan` too). */
export function parseNumber(s: string): number {
  if (s === '') return Number.NaN;
  const x = Number(s);
  if (!Number.isNaN(x)) return x;
  const l = s.toLowerCase();
  if (l === 'nan' || l === '-nan') return Number.NaN;
  if (l === 'inf' || l === '+inf' || l === 'infinity') return Infinity;
  if (l === '-inf' || l === '-infinity') return -Infinity;
  return Number.NaN;
}

/** Whether a token is a number as text formats write it (including nan and inf). */
export function isNumberToken(s: string): boolean {
  return s !== '' && (!Number.isNaN(Number(s)) || /^[-+]?(nan|inf|infinity)$/i.test(s));
}

/** A value as text: the shortest decimal that reads back as the same float32 (or float64, integer). */
export function formatValue(x: number, kind: ScalarKind): string {
  if (kind !== 'float32' || !Number.isFinite(x)) return String(x);
  const f = Math.fround(x);
  for (let p = 1; p < 9; p++) {
    const s = f.toPrecision(p);
    if (Math.fround(Number(s)) === f) return String(Number(s));
  }
  return String(Number(f.toPrecision(9)));
}
