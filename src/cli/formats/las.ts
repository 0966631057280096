/**
 * LAS and LAZ (ASPRS LiDAR): decoded by `@loaders.gl/las` (its laz-perf build is bundled, so LAZ
 * needs no download) through `@loaders.gl/core`'s `parse`, on the main thread. The header (and a
 * LAZ file's VLRs and chunk table offset) is checked here first, so that a truncated or foreign
 * file gets a precise message instead of a decoder's. Columns: x, y, z (scale and offset applied,
 * float64), intensity, classification, and red, green, blue when the point format has colour
 * (8-bit: the high byte of LAS's 16-bit channels, or the values themselves when all of a file's
 * colours fit in 8 bits, as loaders.gl's `colorDepth: 'auto'` decides).
 */
import { DataFileError } from '../errors.js';
import { viewOf, type Column, type ColumnData, type PointTable } from './table.js';

/** The LAS header fields this reader checks. */
interface LasHeader {
  readonly version: string;
  readonly pointFormat: number;
  readonly compressed: boolean;
  readonly offset: number;
  readonly recordLength: number;
  readonly count: number;
}

function parseHeader(file: string, bytes: Uint8Array): LasHeader {
  const sig = new TextDecoder('latin1').decode(bytes.subarray(0, 4));
  if (sig !== 'LASF') throw new DataFileError(file, "not a LAS/LAZ file: it does not start with the signature 'LASF'");
  if (bytes.length < 227) throw new DataFileError(file, `truncated LAS header: ${bytes.length} bytes, a LAS header has at least 227`);
  const v = viewOf(bytes);
  const major = v.getUint8(24);
  const minor = v.getUint8(25);
  const headerSize = v.getUint16(94, true);
  const offset = v.getUint32(96, true);
  const id = v.getUint8(104);
  const recordLength = v.getUint16(105, true);
  let count = v.getUint32(107, true);
  if (major === 1 && minor >= 4 && bytes.length >= 255 && count === 0) count = Number(v.getBigUint64(247, true));
  const h = { version: `${major}.${minor}`, pointFormat: id & 0x3f, compressed: (id & 0xc0) !== 0, offset, recordLength, count };
  if (major !== 1 || minor > 4) throw new DataFileError(file, `LAS version ${h.version} is not a LAS 1.x file`);
  if (minor > 3) throw new DataFileError(file, `LAS ${h.version} is not supported (@loaders.gl/las reads LAS/LAZ 1.0 to 1.3)`);
  if (h.pointFormat > 3) throw new DataFileError(file, `LAS point data format ${h.pointFormat} is not supported (@loaders.gl/las reads formats 0 to 3)`);
  if (headerSize < 227 || offset < headerSize) throw new DataFileError(file, `bad LAS header: header size ${headerSize}, point data offset ${offset}`);
  if (!h.compressed && offset + count * recordLength > bytes.length) {
    const have = Math.max(0, bytes.length - offset);
    throw new DataFileError(
      file,
      `truncated LAS: the header declares ${count} points of ${recordLength} bytes (${count * recordLength} bytes) from byte ${offset}, ` +
        `but only ${have} bytes follow (the file ends in point ${Math.floor(have / Math.max(1, recordLength))})`,
    );
  }
  if (h.compressed) checkLAZ(file, bytes, headerSize, v.getUint32(100, true), offset);
  return h;
}

/**
 * Checks a LAZ file's frame before the decoder sees it (the wasm decoders report a truncated file
 * only as "Failed to open file: undefined"): the VLRs fit, one is LASzip's, and the chunk table
 * that LASzip writes after the compressed points is inside the file.
 */
function checkLAZ(file: string, bytes: Uint8Array, headerSize: number, vlrCount: number, offset: number): void {
  const v = viewOf(bytes);
  let at = headerSize;
  let laszip = false;
  for (let i = 0; i < vlrCount; i++) {
    if (at + 54 > bytes.length) throw new DataFileError(file, `truncated LAZ: the file ends at byte ${bytes.length}, inside variable length record ${i + 1} of ${vlrCount} (from byte ${at})`);
    const user = new TextDecoder('latin1').decode(bytes.subarray(at + 2, at + 18)).replace(/\0.*$/s, '');
    laszip ||= user === 'laszip encoded' && v.getUint16(at + 18, true) === 22204;
    at += 54 + v.getUint16(at + 20, true);
  }
  if (at > offset) throw new DataFileError(file, `bad LAS header: the variable length records end at byte ${at}, after the point data offset ${offset}`);
  if (!laszip) throw new DataFileError(file, "LAZ without the LASzip record (user id 'laszip encoded', record 22204): the point format marks compressed points, but no LASzip description follows");
  // Points begin with the 8-byte offset of the chunk table (-1 when the writer could not seek back).
  if (offset + 8 > bytes.length) throw new DataFileError(file, `truncated LAZ: the file ends at byte ${bytes.length}, before the end of the 8-byte chunk table offset that starts the point data (byte ${offset})`);
  const table = v.getBigInt64(offset, true);
  if (table === -1n) return;
  if (table < BigInt(offset + 8)) throw new DataFileError(file, `corrupt LAZ: the chunk table offset ${table} points before the compressed points (byte ${offset + 8})`);
  if (table + 8n > BigInt(bytes.length)) {
    throw new DataFileError(file, `truncated LAZ: the chunk table is at byte ${table}, but the file has only ${bytes.length} bytes (it ends inside the compressed points)`);
  }
}

/** A loaders.gl mesh attribute (`{ value, size }`). */
interface Attribute {
  readonly value: ColumnData;
  readonly size: number;
}

/** Reads a LAS or LAZ file's points as columns. */
export async function readLAS(file: string, bytes: Uint8Array): Promise<PointTable> {
  const h = parseHeader(file, bytes);
  // loaders.gl is an optional peer dependency: only LAS/LAZ users need it installed.
  const loaded = await Promise.all([import('@loaders.gl/core'), import('@loaders.gl/las')]).catch(() => undefined);
  if (loaded === undefined) throw new DataFileError(file, "reading LAS/LAZ needs the optional packages '@loaders.gl/core' and '@loaders.gl/las' (npm install @loaders.gl/core @loaders.gl/las)");
  const [{ parse }, { LASLoader }] = loaded;
  const buffer = bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength) as ArrayBuffer;
  let attributes: Record<string, Attribute>;
  try {
    // colorDepth 'auto': its default (8) stores 16-bit channels into bytes, keeping the low byte.
    const mesh = await parse(buffer, LASLoader, { worker: false, las: { fp64: true, colorDepth: 'auto' } });
    attributes = mesh.attributes as unknown as Record<string, Attribute>;
  } catch (e) {
    throw new DataFileError(file, `${h.compressed ? 'LAZ' : 'LAS'} ${h.version} decoding failed (@loaders.gl/las: ${e instanceof Error ? e.message : String(e)}): the file is truncated or corrupt`);
  }
  const pos = attributes.POSITION;
  if (pos === undefined || pos.value.length !== h.count * 3) {
    throw new DataFileError(file, `${h.compressed ? 'LAZ' : 'LAS'} decoding gave ${pos === undefined ? 'no' : pos.value.length / 3} positions for ${h.count} points (truncated or corrupt)`);
  }
  const n = h.count;
  const columns: Column[] = ['x', 'y', 'z'].map((name, k) => ({ name, values: Float64Array.from({ length: n }, (_, i) => pos.value[i * 3 + k]!) }));
  for (const name of ['intensity', 'classification']) {
    const a = attributes[name];
    if (a !== undefined) columns.push({ name, values: a.value });
  }
  const color = attributes.COLOR_0;
  if (color !== undefined) {
    ['red', 'green', 'blue'].forEach((name, k) => {
      columns.push({ name, values: Uint8Array.from({ length: n }, (_, i) => color.value[i * color.size + k]!) });
    });
  }
  return { file, format: `${h.compressed ? 'LAZ' : 'LAS'} ${h.version} (point format ${h.pointFormat})`, count: n, columns };
}
