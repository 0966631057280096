/**
 * Compresses a LAS file (1.0 to 1.3, point format 0 or 2) into LAZ, as LASzip's point-wise chunked
 * compressor (compressor 2) writes it: the header with the point format's bit 7 set, a "laszip
 * encoded" VLR (record 22204) listing the items (POINT10 v2, then RGB12 v2 for format 2), the
 * 8-byte offset of the chunk table where the points began, chunks of `chunkSize` points (each an
 * independent arithmetic-coded stream whose first point is raw), then the chunk table: version,
 * chunk count and the chunks' byte sizes, themselves arithmetic-coded. Only the sample-data
 * generator uses it (scripts/gen-sample-data.ts); decoding is `@loaders.gl/las`'s.
 *
 *   const laz = compressLAS(encodeLAS(terrain()), { chunkSize: 50_000 });
 */
import { ArithmeticEncoder } from './arithmetic.js';
import { IntegerCompressor } from './integer.js';
import { Point10Compressor, readPoint10 } from './point10.js';
import { Rgb12Compressor, readRgb } from './rgb12.js';

/** LASzip item types and the item version this encoder writes. */
const ITEM_POINT10 = 6;
const ITEM_RGB12 = 8;
const ITEM_VERSION = 2;
/** Record length per supported point format (no extra bytes). */
const RECORD_LENGTH: Readonly<Record<number, number>> = { 0: 20, 2: 26 };
const VLR_HEADER = 54;

export interface LazOptions {
  /** Points per chunk (LASzip's default is 50 000). */
  readonly chunkSize?: number;
}

/** The header fields the compressor needs, checked. */
function lasLayout(las: Uint8Array) {
  const v = new DataView(las.buffer, las.byteOffset, las.byteLength);
  if (las.length < 227 || String.fromCharCode(...las.subarray(0, 4)) !== 'LASF') throw new Error('compressLAS: not a LAS file');
  const [major, minor] = [las[24]!, las[25]!];
  if (major !== 1 || minor > 3) throw new Error(`compressLAS: LAS ${major}.${minor} (only 1.0 to 1.3)`);
  const format = v.getUint8(104);
  const recordLength = v.getUint16(105, true);
  if (RECORD_LENGTH[format] !== recordLength) throw new Error(`compressLAS: point format ${format} with ${recordLength}-byte records (only 0 and 2, without extra bytes)`);
  const headerSize = v.getUint16(94, true);
  const pointOffset = v.getUint32(96, true);
  const vlrCount = v.getUint32(100, true);
  const count = v.getUint32(107, true);
  if (pointOffset + count * recordLength !== las.length) throw new Error('compressLAS: the points do not end the file');
  // The VLRs end here; bytes between them and the points (if any) are kept after the new VLR.
  let vlrEnd = headerSize;
  for (let i = 0; i < vlrCount; i++) vlrEnd += VLR_HEADER + v.getUint16(vlrEnd + 20, true);
  if (vlrEnd > pointOffset) throw new Error('compressLAS: VLRs overrun the point data');
  return { v, format, recordLength, pointOffset, vlrCount, count, vlrEnd };
}

/** The "laszip encoded" VLR (header and payload) for the items of `format`. */
function lazVlr(format: number, chunkSize: number): Uint8Array {
  const items = format === 2 ? [[ITEM_POINT10, 20], [ITEM_RGB12, 6]] : [[ITEM_POINT10, 20]];
  const payload = 34 + 6 * items.length;
  const bytes = new Uint8Array(VLR_HEADER + payload);
  const v = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode('laszip encoded'), 2);
  v.setUint16(18, 22204, true);
  v.setUint16(20, payload, true);
  bytes.set(new TextEncoder().encode('kernelflow LAZ sample encoder'), 22);
  const p = VLR_HEADER;
  v.setUint16(p, 2, true); // compressor: point-wise chunked
  v.setUint16(p + 2, 0, true); // coder: arithmetic
  v.setUint8(p + 4, 2); // LASzip version 2.2 r0: the v2 items
  v.setUint8(p + 5, 2);
  v.setUint16(p + 6, 0, true);
  v.setUint32(p + 8, 0, true); // options
  v.setUint32(p + 12, chunkSize, true);
  v.setBigInt64(p + 16, -1n, true); // number of special EVLRs: none
  v.setBigInt64(p + 24, -1n, true); // their offset: none
  v.setUint16(p + 32, items.length, true);
  items.forEach(([type, size], i) => {
    v.setUint16(p + 34 + 6 * i, type!, true);
    v.setUint16(p + 36 + 6 * i, size!, true);
    v.setUint16(p + 38 + 6 * i, ITEM_VERSION, true);
  });
  return bytes;
}

/** One chunk: the first record raw, the others arithmetic-coded item by item. */
function compressChunk(v: DataView, format: number, recordLength: number, first: number, n: number): Uint8Array {
  const enc = new ArithmeticEncoder();
  const point = new Point10Compressor(enc);
  const rgb = format === 2 ? new Rgb12Compressor(enc) : undefined;
  for (let i = 0; i < n; i++) {
    const o = (first + i) * recordLength;
    point.compress(readPoint10(v, o));
    rgb?.compress(readRgb(v, o + 20));
  }
  const body = enc.done();
  const out = new Uint8Array(recordLength + body.length);
  out.set(new Uint8Array(v.buffer, v.byteOffset + first * recordLength, recordLength));
  out.set(body, recordLength);
  return out;
}

/** The chunk table: version 0, the chunk count, then the chunk byte sizes, each predicted by the last. */
function chunkTable(sizes: readonly number[]): Uint8Array {
  const enc = new ArithmeticEncoder();
  const ic = new IntegerCompressor(32, 2);
  let pred = 0;
  for (const s of sizes) {
    ic.compress(enc, pred, s, 1);
    pred = s;
  }
  const body = enc.done();
  const out = new Uint8Array(8 + body.length);
  const v = new DataView(out.buffer);
  v.setUint32(0, 0, true);
  v.setUint32(4, sizes.length, true);
  out.set(body, 8);
  return out;
}

/** Compresses a LAS 1.0-1.3 file with point format 0 or 2 into LAZ (see the module comment). */
export function compressLAS(las: Uint8Array, options: LazOptions = {}): Uint8Array {
  const chunkSize = options.chunkSize ?? 50_000;
  if (!(Number.isInteger(chunkSize) && chunkSize >= 1 && chunkSize < 2 ** 32)) throw new Error(`compressLAS: chunk size ${chunkSize}`);
  const { format, recordLength, pointOffset, vlrCount, count, vlrEnd } = lasLayout(las);
  const points = new DataView(las.buffer, las.byteOffset + pointOffset, count * recordLength);
  const chunks: Uint8Array[] = [];
  for (let first = 0; first < count; first += chunkSize) chunks.push(compressChunk(points, format, recordLength, first, Math.min(chunkSize, count - first)));
  const vlr = lazVlr(format, chunkSize);
  const table = chunkTable(chunks.map((c) => c.length));
  const start = pointOffset + vlr.length;
  const tableOffset = start + 8 + chunks.reduce((s, c) => s + c.length, 0);
  const out = new Uint8Array(tableOffset + table.length);
  const v = new DataView(out.buffer);
  out.set(las.subarray(0, vlrEnd));
  out.set(vlr, vlrEnd);
  out.set(las.subarray(vlrEnd, pointOffset), vlrEnd + vlr.length);
  v.setUint32(96, start, true);
  v.setUint32(100, vlrCount + 1, true);
  v.setUint8(104, 0x80 | format);
  v.setBigInt64(start, BigInt(tableOffset), true);
  let at = start + 8;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  out.set(table, at);
  return out;
}
