/**
 * File formats by extension (or, for an unknown extension, by the first bytes): read a point file
 * as a table, write tensors as .npy, CSV, PLY or PCD.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import { extname } from 'node:path';
import type { Tensor } from '../../index.js';
import { DataFileError } from '../errors.js';
import { readCSV, writeCSV } from './csv.js';
import { readLAS } from './las.js';
import { readNPY, writeNPY } from './npy.js';
import { readPCD, writePCD } from './pcd.js';
import { readPLY, writePLY } from './ply.js';
import type { PointTable, ScalarKind } from './table.js';

export { select, ATTRIBUTE_NAMES, type PointTable } from './table.js';

/** The formats the command reads. */
export type ReadFormat = 'ply' | 'pcd' | 'las' | 'npy' | 'csv';
/** The formats the command writes. */
export type WriteFormat = 'npy' | 'csv' | 'ply' | 'pcd';

const EXT: Readonly<Record<string, ReadFormat>> = {
  '.ply': 'ply', '.pcd': 'pcd', '.las': 'las', '.laz': 'las', '.npy': 'npy', '.csv': 'csv', '.tsv': 'csv', '.txt': 'csv', '.xyz': 'csv',
};

/** The format of a file to read: by extension, else by its first bytes. */
export function readFormatOf(file: string, bytes: Uint8Array): ReadFormat {
  const byExt = EXT[extname(file).toLowerCase()];
  if (byExt !== undefined) return byExt;
  const head = new TextDecoder('latin1').decode(bytes.subarray(0, 64));
  if (/^ply\r?\n/.test(head)) return 'ply';
  if (head.startsWith('LASF')) return 'las';
  if (head.startsWith('\x93NUMPY')) return 'npy';
  if (/^(#[^\n]*\n)*\s*VERSION\s/.test(head) || head.startsWith('# .PCD')) return 'pcd';
  throw new DataFileError(file, `unknown file format (extension '${extname(file)}'): use .ply, .pcd, .las, .laz, .npy or .csv`);
}

/** Reads a point file as a table of columns (any read error is a DataFileError naming the file). */
export async function readTable(file: string): Promise<PointTable> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new DataFileError(file, code === 'ENOENT' ? 'no such file' : code === 'EISDIR' ? 'is a directory, not a file' : `cannot read: ${(e as Error).message}`);
  }
  switch (readFormatOf(file, bytes)) {
    case 'ply': return readPLY(file, bytes);
    case 'pcd': return readPCD(file, bytes);
    case 'las': return readLAS(file, bytes);
    case 'npy': return readNPY(file, bytes);
    default: return readCSV(file, bytes);
  }
}

/** The format to write a file in, by extension; undefined for an unknown one. */
export function writeFormatOf(file: string): WriteFormat | undefined {
  const e = extname(file).toLowerCase();
  return e === '.npy' ? 'npy' : e === '.csv' ? 'csv' : e === '.ply' ? 'ply' : e === '.pcd' ? 'pcd' : undefined;
}

/** A named tensor to write. */
export interface Named {
  readonly name: string;
  readonly tensor: Tensor;
}

/** The columns of a tensor `[n, ...]`: `name` when each row is one value, else `name_0, name_1, ...`. */
function columnsOf(t: Named, names?: readonly string[]): { name: string; values: ArrayLike<number>; kind: ScalarKind }[] {
  const n = t.tensor.shape[0] ?? 1;
  const width = n === 0 ? 0 : t.tensor.data.length / n;
  const kind: ScalarKind = t.tensor.data instanceof Int32Array ? 'int32' : 'float32';
  return Array.from({ length: width }, (_, k) => ({
    name: names?.[k] ?? (width === 1 ? t.name : `${t.name}_${k}`),
    kind,
    values: Array.from({ length: n }, (_, i) => t.tensor.data[i * width + k]!),
  }));
}

/**
 * Encodes results as a file: `.npy` takes one tensor (its own shape); CSV, PLY and PCD put the
 * `points` columns (x, y, z) first, then each result's columns, all with the same row count.
 */
export function encode(format: WriteFormat, results: readonly Named[], points?: Named): Uint8Array {
  if (format === 'npy') {
    const t = results[0]!.tensor;
    return writeNPY(t.data, t.shape);
  }
  const pointCols = points === undefined ? [] : columnsOf(points, points.tensor.data.length === 3 * (points.tensor.shape[0] ?? 0) ? ['x', 'y', 'z'] : undefined);
  const cols = [...pointCols, ...results.flatMap((r) => columnsOf(r))];
  const n = (points ?? results[0])?.tensor.shape[0] ?? 0;
  if (format === 'csv') return writeCSV(cols, n);
  if (format === 'pcd') return writePCD(cols, n, 'binary');
  return writePLY(cols, n, { comments: ['written by kernelflow'] });
}

/** Writes bytes to a file atomically (a temporary file renamed over it), so a watcher never sees half a file. */
export async function writeAtomic(file: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  await writeFile(tmp, bytes);
  await rename(tmp, file);
}
