/**
 * NumPy `.npy` (format versions 1, 2 and 3): a reader for 1-D and 2-D arrays of the common
 * numeric dtypes, either byte order, C or Fortran order (columns `0, 1, ...`), and a writer
 * (`<f4` for values, `<i4` for indices, the tensor's shape as is).
 */
import { DataFileError } from '../errors.js';
import { concat, readScalar, SIZE, viewOf, type Column, type PointTable, type ScalarKind } from './table.js';

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

const DTYPES: Readonly<Record<string, ScalarKind>> = {
  i1: 'int8', u1: 'uint8', b1: 'uint8', i2: 'int16', u2: 'uint16', i4: 'int32', u4: 'uint32', f4: 'float32', f8: 'float64',
};

/** Parses the header dict (a Python literal) of an .npy file. */
function parseDict(file: string, text: string): { descr: string; fortran: boolean; shape: number[] } {
  const fail = (msg: string): never => {
    throw new DataFileError(file, `npy header ${msg}: ${text.trim().slice(0, 120)}`);
  };
  const descr = /['"]descr['"]\s*:\s*['"]([^'"]+)['"]/.exec(text)?.[1] ?? fail("has no 'descr'");
  const fo = /['"]fortran_order['"]\s*:\s*(True|False)/.exec(text)?.[1] ?? fail("has no 'fortran_order'");
  const shapeText = /['"]shape['"]\s*:\s*\(([^)]*)\)/.exec(text)?.[1] ?? fail("has no 'shape'");
  const shape = shapeText.split(',').map((s) => s.trim()).filter((s) => s !== '').map(Number);
  if (shape.some((d) => !Number.isInteger(d) || d < 0)) fail('has a bad shape');
  return { descr, fortran: fo === 'True', shape };
}

/** Reads an .npy array as a table: a 2-D `[n, d]` array gives columns `0 ... d-1`, a 1-D one column `0`. */
export function readNPY(file: string, bytes: Uint8Array): PointTable {
  if (bytes.length < 10 || MAGIC.some((b, k) => bytes[k] !== b)) throw new DataFileError(file, 'not a .npy file: it does not start with \\x93NUMPY');
  const v = viewOf(bytes);
  const major = bytes[6]!;
  if (major < 1 || major > 3) throw new DataFileError(file, `unsupported .npy format version ${major}.${bytes[7]}`);
  const headerLen = major === 1 ? v.getUint16(8, true) : bytes.length >= 12 ? v.getUint32(8, true) : 0;
  const start = (major === 1 ? 10 : 12) + headerLen;
  if (start > bytes.length) throw new DataFileError(file, `truncated .npy: the header says ${headerLen} bytes, the file has ${bytes.length}`);
  const text = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(bytes.subarray(major === 1 ? 10 : 12, start));
  const { descr, fortran, shape } = parseDict(file, text);
  const m = /^([<>|=])([a-z])(\d+)$/.exec(descr);
  const kind = m === null ? undefined : DTYPES[`${m[2]}${m[3]}`];
  if (m === null || kind === undefined) throw new DataFileError(file, `unsupported .npy dtype '${descr}' (use a numeric dtype such as '<f4', '<f8', '<i4')`);
  if (shape.length === 0 || shape.length > 2) {
    throw new DataFileError(file, `.npy array of shape (${shape.join(', ')}): expected 1-D (n,) or 2-D (n, d) point data`);
  }
  const n = shape[0]!;
  const d = shape[1] ?? 1;
  const size = SIZE[kind];
  const need = n * d * size;
  if (bytes.length - start < need) {
    throw new DataFileError(file, `truncated .npy: shape (${shape.join(', ')}) of '${descr}' needs ${need} bytes of data, ${bytes.length - start} follow the header`);
  }
  const little = m[1] !== '>';
  const columns: Column[] = [];
  for (let k = 0; k < d; k++) {
    const values = new Float64Array(n);
    for (let i = 0; i < n; i++) values[i] = readScalar(v, start + (fortran ? k * n + i : i * d + k) * size, kind, little);
    columns.push({ name: String(k), values });
  }
  return { file, format: `.npy (${descr})`, count: n, columns };
}

/** Writes a tensor as .npy (version 1.0), with its own shape: `<f4` for Float32Array, `<i4` for Int32Array. */
export function writeNPY(data: Float32Array | Int32Array | Float64Array, shape: readonly number[]): Uint8Array {
  const descr = data instanceof Int32Array ? '<i4' : data instanceof Float64Array ? '<f8' : '<f4';
  const shapeText = shape.length === 1 ? `(${shape[0]},)` : `(${shape.join(', ')})`;
  let dict = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shapeText}, }`;
  const pad = 64 - ((10 + dict.length + 1) % 64);
  dict += ' '.repeat(pad === 64 ? 0 : pad) + '\n';
  const head = new Uint8Array(10 + dict.length);
  head.set([...MAGIC, 1, 0], 0);
  viewOf(head).setUint16(8, dict.length, true);
  head.set(new TextEncoder().encode(dict), 10);
  const body = new Uint8Array(data.byteLength);
  const bv = viewOf(body);
  const kind: ScalarKind = data instanceof Int32Array ? 'int32' : data instanceof Float64Array ? 'float64' : 'float32';
  for (let i = 0; i < data.length; i++) {
    if (kind === 'int32') bv.setInt32(i * 4, data[i]!, true);
    else if (kind === 'float64') bv.setFloat64(i * 8, data[i]!, true);
    else bv.setFloat32(i * 4, data[i]!, true);
  }
  return concat(head, body);
}
