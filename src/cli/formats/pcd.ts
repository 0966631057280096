/**
 * PCD (the Point Cloud Library's format, v0.7 and older): a reader for `DATA ascii`, `binary` and
 * `binary_compressed` (LZF) files and a writer for ascii and binary. A field with COUNT c > 1
 * becomes the columns `name_0 ... name_{c-1}`; packed `rgb`/`rgba` becomes `red green blue`
 * (and `alpha`); `_` padding fields are skipped.
 */
import { DataFileError } from '../errors.js';
import { columnOf, concat, formatValue, parseNumber, readScalar, viewOf, writeScalar, type Column, type ColumnData, type PointTable, type ScalarKind } from './table.js';

type PcdData = 'ascii' | 'binary' | 'binary_compressed';

interface Field {
  readonly name: string;
  readonly size: number;
  readonly type: 'I' | 'U' | 'F';
  readonly count: number;
}

const KEYS = ['VERSION', 'FIELDS', 'SIZE', 'TYPE', 'COUNT', 'WIDTH', 'HEIGHT', 'VIEWPOINT', 'POINTS', 'DATA'] as const;

function kindOf(f: Field): ScalarKind | undefined {
  if (f.type === 'F') return f.size === 4 ? 'float32' : f.size === 8 ? 'float64' : undefined;
  const bits = f.size * 8;
  if (bits !== 8 && bits !== 16 && bits !== 32) return undefined;
  return `${f.type === 'I' ? 'int' : 'uint'}${bits}` as ScalarKind;
}

interface Header {
  readonly fields: Field[];
  readonly points: number;
  readonly data: PcdData;
  /** Byte offset of the data. */
  readonly start: number;
}

function parseHeader(file: string, bytes: Uint8Array): Header {
  const text = new TextDecoder('latin1').decode(bytes.subarray(0, Math.min(bytes.length, 1 << 16)));
  const values = new Map<string, string[]>();
  let at = 0;
  let lineNo = 0;
  while (at < text.length) {
    const nl = text.indexOf('\n', at);
    if (nl < 0 && text.length === 1 << 16) break;
    const line = text.slice(at, nl < 0 ? text.length : nl).trim();
    at = nl < 0 ? text.length : nl + 1;
    lineNo++;
    if (line === '' || line.startsWith('#')) continue;
    const [key, ...rest] = line.split(/\s+/);
    if (!(KEYS as readonly string[]).includes(key!)) {
      const what = values.size === 0 ? 'not a PCD file: expected header lines such as VERSION, FIELDS, ..., DATA' : `unknown PCD header keyword '${key}'`;
      throw new DataFileError(file, `${what} (line ${lineNo}: '${line.slice(0, 60)}')`);
    }
    values.set(key!, rest);
    if (key === 'DATA') break;
  }
  const fail = (msg: string): never => {
    throw new DataFileError(file, `PCD header: ${msg}`);
  };
  const data = values.get('DATA')?.[0] ?? fail('no DATA line (the header is cut, or this is not a PCD file)');
  if (data !== 'ascii' && data !== 'binary' && data !== 'binary_compressed') fail(`unknown DATA '${data}' (expected ascii, binary or binary_compressed)`);
  const names = values.get('FIELDS') ?? fail('no FIELDS line');
  const n = names.length;
  const list = (key: string, dflt: string | undefined): string[] => {
    const v = values.get(key) ?? (dflt === undefined ? fail(`no ${key} line`) : names.map(() => dflt));
    if (v.length !== n) fail(`${key} has ${v.length} entries but FIELDS has ${n}`);
    return v;
  };
  const sizes = list('SIZE', undefined).map(Number);
  const types = list('TYPE', undefined);
  const counts = list('COUNT', '1').map(Number);
  const fields = names.map((name, k): Field => {
    const f = { name, size: sizes[k]!, type: types[k] as Field['type'], count: counts[k]! };
    if (!['I', 'U', 'F'].includes(f.type) || (name !== '_' && kindOf(f) === undefined)) {
      fail(`field '${name}' has TYPE ${types[k]} SIZE ${sizes[k]}, which is not a PCD scalar type`);
    }
    if (!Number.isInteger(f.count) || f.count < 1) fail(`field '${name}' has COUNT ${counts[k]}`);
    return f;
  });
  const width = Number(values.get('WIDTH')?.[0] ?? fail('no WIDTH line'));
  const height = Number(values.get('HEIGHT')?.[0] ?? '1');
  const points = Number(values.get('POINTS')?.[0] ?? width * height);
  if (!Number.isInteger(points) || points < 0) fail(`bad POINTS '${values.get('POINTS')?.[0]}'`);
  if (points !== width * height) fail(`POINTS ${points} differs from WIDTH x HEIGHT = ${width} x ${height}`);
  return { fields, points, data: data as PcdData, start: at };
}

/** Reads a PCD file's points as columns. */
export function readPCD(file: string, bytes: Uint8Array): PointTable {
  const h = parseHeader(file, bytes);
  const n = h.points;
  const slots: { name: string; kind: ScalarKind; values: ColumnData; field: Field }[] = [];
  for (const f of h.fields) {
    const kind = kindOf(f) ?? 'uint8';
    for (let c = 0; c < f.count; c++) {
      slots.push({ name: f.count === 1 ? f.name : `${f.name}_${c}`, kind, values: columnOf(kind, n), field: f });
    }
  }
  const format = `PCD (${h.data})`;
  if (h.data === 'ascii') readAscii(file, bytes.subarray(h.start), n, slots);
  else {
    const stride = h.fields.reduce((s, f) => s + f.size * f.count, 0);
    let body = bytes.subarray(h.start);
    if (h.data === 'binary_compressed') body = decompress(file, body, stride * n);
    if (body.length < stride * n) {
      throw new DataFileError(
        file,
        `truncated binary PCD: POINTS ${n} of ${stride} bytes need ${stride * n} bytes of data, only ${body.length} follow the header (the file ends in point ${Math.floor(body.length / stride)})`,
      );
    }
    const v = viewOf(body);
    let fieldOffset = 0;
    let s = 0;
    for (const f of h.fields) {
      for (let c = 0; c < f.count; c++, s++) {
        const slot = slots[s]!;
        if (f.name === '_') continue;
        for (let i = 0; i < n; i++) {
          // binary: row-major records; binary_compressed: each field's values together (column-major).
          const at = h.data === 'binary' ? i * stride + fieldOffset + c * f.size : fieldOffset * n + (i * f.count + c) * f.size;
          slot.values[i] = readScalar(v, at, slot.kind, true);
        }
      }
      fieldOffset += f.size * f.count;
    }
  }
  const columns: Column[] = [];
  for (const s of slots) {
    if (s.field.name === '_') continue;
    if ((s.name === 'rgb' || s.name === 'rgba') && s.field.size === 4) columns.push(...unpackColor(s.values, s.kind, s.name === 'rgba'));
    else columns.push({ name: s.name, values: s.values });
  }
  return { file, format, count: n, columns };
}

function readAscii(file: string, body: Uint8Array, n: number, slots: readonly { name: string; values: ColumnData }[]): void {
  const lines = new TextDecoder('latin1').decode(body).split('\n');
  let line = 0;
  for (let i = 0; i < n; i++) {
    while (line < lines.length && lines[line]!.trim() === '') line++;
    if (line >= lines.length) throw new DataFileError(file, `truncated ASCII PCD: POINTS is ${n}, the file ends after ${i} points`);
    const t = lines[line]!.trim().split(/\s+/);
    if (t.length !== slots.length) {
      throw new DataFileError(file, `line ${line + 1} of the data (point ${i}): ${t.length} values, the header declares ${slots.length}`);
    }
    for (let k = 0; k < t.length; k++) {
      const x = parseNumber(t[k]!);
      if (Number.isNaN(x) && !/nan/i.test(t[k]!)) throw new DataFileError(file, `line ${line + 1} of the data (point ${i}): '${t[k]}' is not a number (field '${slots[k]!.name}')`);
      slots[k]!.values[i] = x;
    }
    line++;
  }
}

/** Packed PCL colour (a float or uint32 whose bytes are b, g, r, a) as red, green, blue (alpha) columns. */
function unpackColor(values: ColumnData, kind: ScalarKind, alpha: boolean): Column[] {
  const n = values.length;
  const bits = new Uint32Array(n);
  if (kind === 'float32') bits.set(new Uint32Array(Float32Array.from(values).buffer));
  else bits.set(values);
  const chan = (shift: number): Uint8Array => Uint8Array.from(bits, (b) => (b >>> shift) & 0xff);
  return [
    { name: 'red', values: chan(16) },
    { name: 'green', values: chan(8) },
    { name: 'blue', values: chan(0) },
    ...(alpha ? [{ name: 'alpha', values: chan(24) }] : []),
  ];
}

/** LZF decompression of PCD's `binary_compressed` block (sizes header, then LZF data). */
function decompress(file: string, body: Uint8Array, expected: number): Uint8Array {
  const fail = (msg: string): never => {
    throw new DataFileError(file, `corrupt binary_compressed PCD: ${msg}`);
  };
  if (body.length < 8) fail('the data block is shorter than its 8-byte size header');
  const v = viewOf(body);
  const packed = v.getUint32(0, true);
  const size = v.getUint32(4, true);
  if (size !== expected) fail(`the block unpacks to ${size} bytes, the header's fields and POINTS need ${expected}`);
  if (8 + packed > body.length) fail(`truncated: the compressed block is ${packed} bytes, only ${body.length - 8} follow`);
  const src = body.subarray(8, 8 + packed);
  const out = new Uint8Array(size);
  let ip = 0;
  let op = 0;
  while (ip < src.length) {
    const ctrl = src[ip++]!;
    if (ctrl < 32) {
      const len = ctrl + 1;
      if (op + len > size || ip + len > src.length) fail(`a literal run overflows at byte ${ip}`);
      out.set(src.subarray(ip, ip + len), op);
      ip += len;
      op += len;
    } else {
      let len = ctrl >> 5;
      if (len === 7) len += src[ip++] ?? fail('the data ends inside a back-reference');
      const ref = op - ((ctrl & 0x1f) << 8) - 1 - (src[ip++] ?? fail('the data ends inside a back-reference'));
      len += 2;
      if (ref < 0 || op + len > size) fail(`a back-reference points outside the data at byte ${ip}`);
      for (let k = 0; k < len; k++) out[op + k] = out[ref + k]!;
      op += len;
    }
  }
  if (op !== size) fail(`unpacked ${op} bytes, expected ${size}`);
  return out;
}

/** A column to write. */
export interface PcdColumn {
  readonly name: string;
  readonly values: ArrayLike<number>;
  readonly kind: ScalarKind;
}

const TYPE_OF: Readonly<Record<ScalarKind, [string, number]>> = {
  int8: ['I', 1], uint8: ['U', 1], int16: ['I', 2], uint16: ['U', 2], int32: ['I', 4], uint32: ['U', 4], float32: ['F', 4], float64: ['F', 8],
};

/**
 * Writes points as a PCD v0.7 file (`ascii`, `binary`, or `binary_compressed`, which stores the
 * column-major block as LZF literal runs: valid LZF, not smaller).
 */
export function writePCD(columns: readonly PcdColumn[], count: number, data: PcdData = 'binary'): Uint8Array {
  const head = [
    '# .PCD v0.7 - Point Cloud Data file format',
    'VERSION 0.7',
    `FIELDS ${columns.map((c) => c.name).join(' ')}`,
    `SIZE ${columns.map((c) => TYPE_OF[c.kind][1]).join(' ')}`,
    `TYPE ${columns.map((c) => TYPE_OF[c.kind][0]).join(' ')}`,
    `COUNT ${columns.map(() => 1).join(' ')}`,
    `WIDTH ${count}`,
    'HEIGHT 1',
    'VIEWPOINT 0 0 0 1 0 0 0',
    `POINTS ${count}`,
    `DATA ${data}`,
    '',
  ].join('\n');
  const headBytes = new TextEncoder().encode(head);
  if (data === 'ascii') {
    const rows: string[] = [];
    for (let i = 0; i < count; i++) rows.push(columns.map((c) => formatValue(c.values[i]!, c.kind)).join(' '));
    return concat(headBytes, new TextEncoder().encode(rows.join('\n') + (count > 0 ? '\n' : '')));
  }
  const stride = columns.reduce((s, c) => s + TYPE_OF[c.kind][1], 0);
  const raw = new Uint8Array(stride * count);
  const v = viewOf(raw);
  let off = 0;
  for (const c of columns) {
    const size = TYPE_OF[c.kind][1];
    for (let i = 0; i < count; i++) {
      writeScalar(v, data === 'binary' ? i * stride + off : off * count + i * size, c.kind, c.values[i]!, true);
    }
    off += size;
  }
  if (data === 'binary') return concat(headBytes, raw);
  const runs = Math.ceil(raw.length / 32);
  const block = new Uint8Array(8 + raw.length + runs);
  const bv = viewOf(block);
  let at = 8;
  for (let k = 0; k < raw.length; k += 32) {
    const len = Math.min(32, raw.length - k);
    block[at++] = len - 1;
    block.set(raw.subarray(k, k + len), at);
    at += len;
  }
  bv.setUint32(0, at - 8, true);
  bv.setUint32(4, raw.length, true);
  return concat(headBytes, block.subarray(0, at));
}
