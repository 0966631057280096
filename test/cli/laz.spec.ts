/**
 * LAZ (issue 20): our LASzip encoder (scripts/laz, used by the sample generator) is right when
 * the decoders bundled in `@loaders.gl/las`, laz-perf and laz-rs, give back exactly the records it
 * was given: every byte of every point, for 1, 2, 3 and thousands of points, one chunk and many,
 * point formats 0 and 2, and the values that exercise each coding path (random bytes, int32
 * extremes, negative coordinates, a point repeated, multiple returns, classification, scan angle,
 * user data, point source and colour changes). Then the reader: terrain.laz reads as terrain.las
 * does, and a truncated LAZ file gives a DataFileError naming the file and where it ends.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Rng } from '../../examples/lib/cli.js';
import { encodeLAS, LAZ_CHUNK, terrain } from '../../scripts/gen-sample-data.js';
import { compressLAS } from '../../scripts/laz/laz.js';
import { DataFileError } from '../../src/cli/errors.js';
import { readTable } from '../../src/cli/formats/index.js';
import { readLAS } from '../../src/cli/formats/las.js';
import type { PointTable } from '../../src/cli/formats/table.js';
import { DATA } from './helpers.js';
import { lazPerfRecords, lazRsRecords } from './laz-decoders.js';

const RECORD = { 0: 20, 2: 26 } as const;

/** A LAS 1.2 file (scale 1, offset 0) whose n records of point format `format` `fill` writes. */
function lasOf(format: 0 | 2, n: number, fill: (v: DataView, o: number, i: number) => void): Uint8Array {
  const rec = RECORD[format];
  const bytes = new Uint8Array(227 + n * rec);
  const v = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode('LASF'));
  v.setUint8(24, 1);
  v.setUint8(25, 2);
  v.setUint16(94, 227, true);
  v.setUint32(96, 227, true);
  v.setUint8(104, format);
  v.setUint16(105, rec, true);
  v.setUint32(107, n, true);
  for (let k = 0; k < 3; k++) v.setFloat64(131 + 8 * k, 1, true);
  for (let i = 0; i < n; i++) fill(v, 227 + i * rec, i);
  return bytes;
}

const columns = (t: PointTable): Record<string, number[]> => Object.fromEntries(t.columns.map((c) => [c.name, Array.from(c.values)]));

/** Asserts that both decoders give back the LAS file's records from its LAZ compression. */
async function roundTrip(what: string, las: Uint8Array, chunkSize?: number): Promise<Uint8Array> {
  const v = new DataView(las.buffer, las.byteOffset);
  const [n, rec, offset] = [v.getUint32(107, true), v.getUint16(105, true), v.getUint32(96, true)];
  const laz = compressLAS(las, { chunkSize });
  const want = las.subarray(offset);
  for (const [name, decode] of [['laz-perf', lazPerfRecords], ['laz-rs', lazRsRecords]] as const) {
    const got = await decode(laz, n, rec);
    const bad = got.findIndex((b, i) => b !== want[i]);
    if (bad >= 0) assert.unreachable(`${what}, ${name}: point ${Math.floor(bad / rec)} byte ${bad % rec} is ${got[bad]}, not ${want[bad]}`);
  }
  // And through the command's reader (loaders.gl's parse): the same columns as from the LAS file.
  assert.equal(columns(await readLAS('t.laz', laz)), columns(await readLAS('t.las', las)), `${what}: readLAS columns`);
  return laz;
}

const rng = new Rng(20);
const int = (lo: number, hi: number): number => lo + Math.floor(rng.uniform() * (hi - lo + 1));
const pick = <T>(xs: readonly T[]): T => xs[int(0, xs.length - 1)]!;

test('1, 2, 3 and 1000 points in one chunk, 1000 in chunks of 256, 40 in chunks of 1: every record byte-exact through laz-perf and laz-rs', async () => {
  for (const n of [1, 2, 3, 1000]) await roundTrip(`terrain(${n})`, encodeLAS(terrain(n, 3)));
  await roundTrip('terrain(1000), chunks of 256', encodeLAS(terrain(1000, 3)), 256);
  await roundTrip('terrain(40), chunks of 1', encodeLAS(terrain(40, 3)), 1);
});

test('random bytes in every field, point formats 2 and 0, 25 chunks of 100', async () => {
  for (const format of [2, 0] as const) {
    const las = lasOf(format, 2500, (v, o) => {
      for (let k = 0; k < RECORD[format]; k++) v.setUint8(o + k, int(0, 255));
    });
    await roundTrip(`random, format ${format}`, las, 100);
  }
});

test('edge values: int32 extremes and negative coordinates, intensity 0 and 65535, colour bytes 0, 255, 256, 65535', async () => {
  const ext = [-(2 ** 31), 2 ** 31 - 1, 0, -1, 1, -123456789];
  const las = lasOf(2, 600, (v, o, i) => {
    for (let k = 0; k < 3; k++) v.setInt32(o + 4 * k, pick(ext), true);
    v.setUint16(o + 12, i % 3 === 0 ? 65535 : 0, true);
    v.setUint8(o + 14, int(0, 255));
    v.setInt8(o + 16, pick([-128, 127, 0]));
    v.setUint16(o + 18, pick([0, 65535]), true);
    for (let k = 0; k < 3; k++) v.setUint16(o + 20 + 2 * k, pick([0, 255, 256, 65535, 65280]), true);
  });
  await roundTrip('extremes', las, 200);
});

test('the same point repeated compresses to a few bytes a point, and decodes', async () => {
  const las = lasOf(2, 3000, (v, o) => {
    v.setInt32(o, -5, true);
    v.setInt32(o + 4, 7, true);
    v.setInt32(o + 8, -100000, true);
    v.setUint8(o + 14, 0b00001001);
    v.setUint16(o + 22, 1000, true);
  });
  const laz = await roundTrip('repeated', las, 1000);
  assert.ok(laz.length < las.length / 20, `${laz.length} bytes for ${las.length}`);
});

test('LiDAR-like: multiple returns, classification, scan angle, user data and point source changes, grey and coloured points', async () => {
  const las = lasOf(2, 12000, (v, o, i) => {
    const returns = int(1, 5);
    v.setInt32(o, -1_000_000 + 37 * i + int(-20, 20), true);
    v.setInt32(o + 4, 5_000_000 + int(-3000, 3000), true);
    v.setInt32(o + 8, int(-50000, 50000), true);
    v.setUint16(o + 12, int(0, 3) === 0 ? int(0, 4000) : 300, true);
    v.setUint8(o + 14, int(1, returns) | (returns << 3) | (int(0, 1) << 6) | (Number(int(0, 50) === 0) << 7));
    v.setUint8(o + 15, pick([1, 2, 2, 2, 5, 6]));
    v.setInt8(o + 16, int(-90, 90));
    v.setUint8(o + 17, int(0, 9) === 0 ? int(0, 255) : 0);
    v.setUint16(o + 18, int(0, 99) === 0 ? int(0, 65535) : 12, true);
    const g = int(0, 65535);
    v.setUint16(o + 20, g, true);
    v.setUint16(o + 22, int(0, 1) ? g : int(0, 65535), true);
    v.setUint16(o + 24, int(0, 1) ? g : Math.min(65535, Math.max(0, g + int(-600, 600))), true);
  });
  const laz = await roundTrip('lidar-like', las, 5000);
  assert.ok(laz.length < 0.7 * las.length, `${laz.length} bytes for ${las.length}`);
});

test('compressLAS refuses what it cannot write: point format 1, LAS 1.4, extra bytes', () => {
  const las = encodeLAS(terrain(5, 1));
  const f1 = las.slice();
  f1[104] = 1;
  assert.throws(() => compressLAS(f1), /point format 1 with 26-byte records \(only 0 and 2, without extra bytes\)/);
  const v14 = las.slice();
  v14[25] = 4;
  assert.throws(() => compressLAS(v14), /LAS 1\.4 \(only 1\.0 to 1\.3\)/);
  assert.throws(() => compressLAS(las, { chunkSize: 0 }), /chunk size 0/);
});

test('examples/data/terrain.laz: smaller than terrain.las, read to the same columns, the same records through laz-perf and laz-rs', async () => {
  const [las, laz] = [readFileSync(join(DATA, 'terrain.las')), readFileSync(join(DATA, 'terrain.laz'))];
  assert.ok(laz.length < 0.5 * las.length, `terrain.laz ${laz.length} bytes, terrain.las ${las.length}`);
  const [a, b] = [await readTable(join(DATA, 'terrain.las')), await readTable(join(DATA, 'terrain.laz'))];
  assert.is(b.format, 'LAZ 1.2 (point format 2)');
  assert.is(b.count, 1000);
  assert.equal(columns(b), columns(a));
  const ter = terrain();
  ['red', 'green', 'blue'].forEach((c, k) => assert.equal(columns(b)[c], Array.from({ length: 1000 }, (_, i) => ter.rgb[3 * i + k]! >> 8), `${c}: the high byte`));
  // The chunk table lists ceil(1000 / 256) chunks.
  const table = Number(laz.readBigInt64LE(laz.readUInt32LE(96)));
  assert.is(laz.readUInt32LE(table + 4), Math.ceil(1000 / LAZ_CHUNK));
  // Both decoders give back terrain.las's records, byte for byte.
  for (const decode of [lazPerfRecords, lazRsRecords]) assert.ok(Buffer.from(await decode(laz, 1000, 26)).equals(las.subarray(227)), decode.name);
});

test('colour columns: the high byte of 16-bit channels; a file whose colours all fit in 8 bits as it is', async () => {
  const rgb = [[0, 255, 256], [65535, 1000, 12345]];
  const wide = await readLAS('w.laz', compressLAS(lasOf(2, 2, (v, o, i) => rgb[i]!.forEach((c, k) => v.setUint16(o + 20 + 2 * k, c, true)))));
  assert.equal([columns(wide).red, columns(wide).green, columns(wide).blue], [[0, 255], [0, 3], [1, 48]]);
  const narrow = await readLAS('n.laz', compressLAS(lasOf(2, 2, (v, o, i) => [7, 200, 255].forEach((c, k) => v.setUint16(o + 20 + 2 * k, c - i, true)))));
  assert.equal([columns(narrow).red, columns(narrow).green, columns(narrow).blue], [[7, 6], [200, 199], [255, 254]]);
});

/** Asserts a DataFileError for `file` matching `re`. */
async function rejects(fn: () => Promise<unknown>, file: string, re: RegExp): Promise<void> {
  const e = await fn().then(() => undefined, (err: unknown) => err);
  assert.instance(e, DataFileError, `an error for ${file}`);
  assert.is((e as DataFileError).file, file);
  assert.match((e as Error).message, re);
}

test('truncated or broken LAZ: a DataFileError naming the file and where it ends, before the decoder runs', async () => {
  const laz = compressLAS(encodeLAS(terrain(1000, 7)), { chunkSize: 300 });
  const v = new DataView(laz.buffer);
  const start = v.getUint32(96, true);
  const table = Number(v.getBigInt64(start, true));
  const cut = (n: number): Uint8Array => laz.subarray(0, n);
  await rejects(() => readLAS('a.laz', cut(table - 20)), 'a.laz', new RegExp(`^a\\.laz: truncated LAZ: the chunk table is at byte ${table}, but the file has only ${table - 20} bytes \\(it ends inside the compressed points\\)$`));
  await rejects(() => readLAS('b.laz', cut(start + 40)), 'b.laz', /truncated LAZ: the chunk table is at byte \d+, but the file has only \d+ bytes/);
  await rejects(() => readLAS('c.laz', cut(start + 3)), 'c.laz', new RegExp(`truncated LAZ: the file ends at byte ${start + 3}, before the end of the 8-byte chunk table offset that starts the point data \\(byte ${start}\\)`));
  await rejects(() => readLAS('d.laz', cut(250)), 'd.laz', /truncated LAZ: the file ends at byte 250, inside variable length record 1 of 1 \(from byte 227\)/);
  const noVlr = laz.slice();
  noVlr[2 + 227] = 'X'.charCodeAt(0);
  await rejects(() => readLAS('e.laz', noVlr), 'e.laz', /LAZ without the LASzip record \(user id 'laszip encoded', record 22204\)/);
  const before = laz.slice();
  new DataView(before.buffer).setBigInt64(start, 100n, true);
  await rejects(() => readLAS('f.laz', before), 'f.laz', new RegExp(`corrupt LAZ: the chunk table offset 100 points before the compressed points \\(byte ${start + 8}\\)`));
  // The whole file reads.
  assert.is((await readLAS('g.laz', laz)).count, 1000);
});

test.run();
