/**
 * The readers and writers of src/cli/formats on known bytes: every variant each reader claims
 * (PLY ascii / LE / BE with list properties and other elements, PCD ascii / binary /
 * binary_compressed with back-references, COUNT > 1 and packed rgb, .npy versions, dtypes, byte
 * orders and Fortran order, CSV delimiters and headers, LAS through loaders.gl), attribute
 * selection, and the malformed cases, each a DataFileError naming the file and the fault. Also:
 * the committed samples are exactly what scripts/gen-sample-data.ts writes.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clouds, encodeLAS, sampleFiles, terrain, terrainPositions } from '../../scripts/gen-sample-data.js';
import { DataFileError } from '../../src/cli/errors.js';
import { readCSV, writeCSV } from '../../src/cli/formats/csv.js';
import { readTable } from '../../src/cli/formats/index.js';
import { readLAS } from '../../src/cli/formats/las.js';
import { readNPY, writeNPY } from '../../src/cli/formats/npy.js';
import { readPCD, writePCD } from '../../src/cli/formats/pcd.js';
import { readPLY, writePLY } from '../../src/cli/formats/ply.js';
import { select, type PointTable } from '../../src/cli/formats/table.js';
import { DATA, f32 } from './helpers.js';

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const cat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => Array.from(p)));
const values = (t: PointTable, name: string): number[] => Array.from(t.columns.find((c) => c.name === name)!.values);

/** Asserts that `fn` throws a DataFileError for `file` whose message matches `re`. */
async function rejects(fn: () => unknown, file: string, re: RegExp): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, DataFileError);
    assert.is((e as DataFileError).file, file);
    assert.match((e as Error).message, re);
    assert.ok((e as Error).message.startsWith(`${file}: `), 'the message starts with the file');
    return;
  }
  assert.unreachable(`no error for ${file}`);
}

test('the committed samples are what scripts/gen-sample-data.ts writes', () => {
  for (const [name, bytes] of sampleFiles()) {
    assert.ok(Buffer.from(readFileSync(join(DATA, name))).equals(Buffer.from(bytes)), `examples/data/${name} is up to date (npx tsx scripts/gen-sample-data.ts)`);
  }
  const total = [...sampleFiles().values()].reduce((s, b) => s + b.length, 0);
  assert.ok(total < 300_000, `samples are small (${total} bytes)`);
});

test('PLY: the three encodings read back the same columns; lists and other elements are skipped', () => {
  const cols = [
    { name: 'x', values: [1.5, -2, 3e-8], kind: 'float32' as const },
    { name: 'i', values: [-7, 0, 2147483647], kind: 'int32' as const },
    { name: 'c', values: [0, 128, 255], kind: 'uint8' as const },
    { name: 'd', values: [Math.PI, -1e300, 0.1], kind: 'float64' as const },
  ];
  for (const format of ['ascii', 'binary_little_endian', 'binary_big_endian'] as const) {
    const t = readPLY('a.ply', writePLY(cols, 3, { format }));
    assert.is(t.count, 3);
    assert.equal(values(t, 'x'), Array.from(f32([1.5, -2, 3e-8])), format);
    assert.equal(values(t, 'i'), [-7, 0, 2147483647], format);
    assert.equal(values(t, 'c'), [0, 128, 255], format);
    assert.equal(values(t, 'd'), [Math.PI, -1e300, 0.1], format);
  }
  // Faces before and after the vertices, a list property inside the vertex element, CRLF header.
  const header = 'ply\r\nformat binary_big_endian 1.0\r\ncomment c\r\nelement face 1\r\nproperty list uchar int vertex_indices\r\n' +
    'element vertex 2\r\nproperty float x\r\nproperty list uchar short l\r\nproperty ushort y\r\nend_header\r\n';
  const body = new DataView(new ArrayBuffer(1 + 12 + (4 + 1 + 4 + 2) + (4 + 1 + 2)));
  let o = 0;
  body.setUint8(o, 3); o += 1;
  for (const v of [0, 1, 2]) { body.setInt32(o, v); o += 4; }
  body.setFloat32(o, 0.5); o += 4; body.setUint8(o, 2); o += 1; body.setInt16(o, 9); o += 2; body.setInt16(o, 9); o += 2; body.setUint16(o, 7); o += 2;
  body.setFloat32(o, -1); o += 4; body.setUint8(o, 0); o += 1; body.setUint16(o, 65535);
  const t = readPLY('m.ply', cat(enc(header), new Uint8Array(body.buffer)));
  assert.equal(t.columns.map((c) => c.name), ['x', 'y']);
  assert.equal(values(t, 'x'), [0.5, -1]);
  assert.equal(values(t, 'y'), [7, 65535]);
  const ascii = readPLY('a.ply', enc('ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty list uchar int l\nend_header\n1 2 5 6\n\n-3 0\n'));
  assert.equal(values(ascii, 'x'), [1, -3]);
});

test('PLY: malformed files name the file and the fault', async () => {
  const good = writePLY([{ name: 'x', values: [1, 2, 3], kind: 'float32' }], 3);
  await rejects(() => readPLY('t.ply', good.subarray(0, good.length - 2)), 't.ply', /truncated binary PLY: the header declares 3 'vertex' records of 4 bytes \(12 bytes\) from byte \d+, but only 10 bytes follow \(the file ends in record 2\)/);
  await rejects(() => readPLY('n.ply', enc('PLY\nformat ascii 1.0\n')), 'n.ply', /not a PLY file/);
  await rejects(() => readPLY('h.ply', enc('ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\n1\n')), 'h.ply', /no 'end_header' line/);
  await rejects(() => readPLY('f.ply', enc('ply\nformat binary 1.0\nend_header\n')), 'f.ply', /header line 2: unknown format 'binary'/);
  await rejects(() => readPLY('k.ply', enc('ply\nformat ascii 1.0\nelement vertex 1\nproprety float x\nend_header\n1\n')), 'k.ply', /header line 4: unknown keyword 'proprety'/);
  await rejects(() => readPLY('v.ply', enc('ply\nformat ascii 1.0\nelement face 0\nend_header\n')), 'v.ply', /declares no 'vertex' element \(elements: face\)/);
  await rejects(() => readPLY('a.ply', enc('ply\nformat ascii 1.0\nelement vertex 2\nproperty float x\nproperty float y\nend_header\n1 2\n3\n')), 'a.ply', /line 2 of the body \('vertex' record 1\): too few values for property 'y'/);
  await rejects(() => readPLY('b.ply', enc('ply\nformat ascii 1.0\nelement vertex 1\nproperty float x\nend_header\nabc\n')), 'b.ply', /'abc' is not a number \(property 'x'\)/);
  await rejects(() => readPLY('c.ply', enc('ply\nformat ascii 1.0\nelement vertex 3\nproperty float x\nend_header\n1\n2\n')), 'c.ply', /truncated ASCII PLY: the header declares 3 'vertex' records, the file ends after 2/);
});

test('PCD: ascii, binary and binary_compressed (LZF back-references), COUNT > 1, packed rgb, padding', async () => {
  const cols = [
    { name: 'x', values: [1, 2, 3], kind: 'float32' as const },
    { name: 'intensity', values: [0.25, 0.5, 0.75], kind: 'float32' as const },
    { name: 'label', values: [7, 8, 9], kind: 'uint16' as const },
  ];
  for (const data of ['ascii', 'binary', 'binary_compressed'] as const) {
    const t = readPCD('p.pcd', writePCD(cols, 3, data));
    assert.equal(values(t, 'x'), [1, 2, 3], data);
    assert.equal(values(t, 'intensity'), [0.25, 0.5, 0.75], data);
    assert.equal(values(t, 'label'), [7, 8, 9], data);
  }
  // LZF with a back-reference: literal [1,2,3,4] then "copy 4 bytes from 4 back" -> 1,2,3,4,1,2,3,4.
  const head = 'VERSION .7\nFIELDS a\nSIZE 1\nTYPE U\nCOUNT 8\nWIDTH 1\nHEIGHT 1\nPOINTS 1\nDATA binary_compressed\n';
  const lzf = Uint8Array.from([3, 1, 2, 3, 4, (2 << 5) | 0, 3]);
  const sizes = new Uint8Array(8);
  new DataView(sizes.buffer).setUint32(0, lzf.length, true);
  new DataView(sizes.buffer).setUint32(4, 8, true);
  const t = readPCD('z.pcd', cat(enc(head), sizes, lzf));
  assert.equal(t.columns.map((c) => c.name), ['a_0', 'a_1', 'a_2', 'a_3', 'a_4', 'a_5', 'a_6', 'a_7']);
  assert.equal(t.columns.map((c) => c.values[0]), [1, 2, 3, 4, 1, 2, 3, 4]);
  // Packed rgb (a float holding 0x00RRGGBB) and a padding field.
  const rgb = new Float32Array(new Uint32Array([0x00ff8001]).buffer)[0]!;
  const body = new DataView(new ArrayBuffer(12));
  body.setFloat32(0, 2, true);
  body.setFloat32(4, 123, true);
  body.setFloat32(8, rgb, true);
  const c = readPCD('c.pcd', cat(enc('# c\nVERSION 0.7\nFIELDS x _ rgb\nSIZE 4 4 4\nTYPE F F F\nCOUNT 1 1 1\nWIDTH 1\nHEIGHT 1\nVIEWPOINT 0 0 0 1 0 0 0\nPOINTS 1\nDATA binary\n'), new Uint8Array(body.buffer)));
  assert.equal(c.columns.map((k) => k.name), ['x', 'red', 'green', 'blue']);
  assert.equal(c.columns.map((k) => k.values[0]), [2, 255, 128, 1]);
  assert.equal(select(c, 'color').data, Float32Array.of(255, 128, 1));
});

test('PCD: malformed files name the file and the fault', async () => {
  const good = writePCD([{ name: 'x', values: [1, 2], kind: 'float32' }], 2, 'binary');
  await rejects(() => readPCD('t.pcd', good.subarray(0, good.length - 1)), 't.pcd', /truncated binary PCD: POINTS 2 of 4 bytes need 8 bytes of data, only 7 follow the header \(the file ends in point 1\)/);
  await rejects(() => readPCD('n.pcd', enc('hello\n')), 'n.pcd', /not a PCD file/);
  await rejects(() => readPCD('d.pcd', enc('VERSION 0.7\nFIELDS x\nSIZE 4\nTYPE F\nWIDTH 1\n')), 'd.pcd', /no DATA line/);
  await rejects(() => readPCD('s.pcd', enc('VERSION 0.7\nFIELDS x y\nSIZE 4\nTYPE F F\nWIDTH 1\nPOINTS 1\nDATA ascii\n1 2\n')), 's.pcd', /SIZE has 1 entries but FIELDS has 2/);
  await rejects(() => readPCD('w.pcd', enc('VERSION 0.7\nFIELDS x\nSIZE 4\nTYPE F\nWIDTH 2\nHEIGHT 1\nPOINTS 3\nDATA ascii\n1\n2\n3\n')), 'w.pcd', /POINTS 3 differs from WIDTH x HEIGHT = 2 x 1/);
  await rejects(() => readPCD('a.pcd', enc('VERSION 0.7\nFIELDS x y\nSIZE 4 4\nTYPE F F\nWIDTH 2\nPOINTS 2\nDATA ascii\n1 2\n3\n')), 'a.pcd', /line 2 of the data \(point 1\): 1 values, the header declares 2/);
  const c = writePCD([{ name: 'x', values: [1, 2], kind: 'float32' }], 2, 'binary_compressed');
  await rejects(() => readPCD('c.pcd', c.subarray(0, c.length - 3)), 'c.pcd', /corrupt binary_compressed PCD: truncated/);
});

test('.npy: dtypes, byte orders, Fortran order, 1-D, version 2; writer shapes; malformed files', async () => {
  const t = readNPY('a.npy', writeNPY(Float32Array.of(1, 2, 3, 4, 5, 6), [3, 2]));
  assert.equal(t.columns.map((c) => Array.from(c.values)), [[1, 3, 5], [2, 4, 6]]);
  const i = readNPY('i.npy', writeNPY(Int32Array.of(-1, 5), [2]));
  assert.equal(i.columns.map((c) => Array.from(c.values)), [[-1, 5]]);
  // Hand-made: big-endian float64, Fortran order, version 2.0 header.
  const dict = "{'descr': '>f8', 'fortran_order': True, 'shape': (2, 2), }";
  const head = new Uint8Array(12);
  head.set([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 2, 0]);
  new DataView(head.buffer).setUint32(8, dict.length, true);
  const body = new DataView(new ArrayBuffer(32));
  [1, 2, 3, 4].forEach((x, k) => body.setFloat64(8 * k, x, false)); // column-major: col0 = [1, 2], col1 = [3, 4]
  const f = readNPY('f.npy', cat(head, enc(dict), new Uint8Array(body.buffer)));
  assert.equal(f.columns.map((c) => Array.from(c.values)), [[1, 2], [3, 4]]);
  const good = writeNPY(Float32Array.of(1, 2, 3), [3, 1]);
  assert.is((good.length - good.length % 64) % 64, 0, 'header aligned to 64 bytes');
  await rejects(() => readNPY('t.npy', good.subarray(0, good.length - 1)), 't.npy', /truncated \.npy: shape \(3, 1\) of '<f4' needs 12 bytes of data, 11 follow the header/);
  await rejects(() => readNPY('m.npy', enc('PK\x03\x04 a zip')), 'm.npy', /not a \.npy file/);
  const obj = cat(Uint8Array.from([0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59, 1, 0, 58, 0]), enc("{'descr': '|O', 'fortran_order': False, 'shape': (1,), }    \n"));
  await rejects(() => readNPY('o.npy', obj), 'o.npy', /unsupported \.npy dtype '\|O'/);
  const three = writeNPY(new Float32Array(8), [2, 2, 2]);
  await rejects(() => readNPY('3.npy', three), '3.npy', /array of shape \(2, 2, 2\): expected 1-D \(n,\) or 2-D \(n, d\) point data/);
});

test('CSV: delimiters, header or not, comments, quotes; writer round trip; malformed files', async () => {
  const a = readCSV('a.csv', enc('# comment\n"x";"y"\r\n1;2\r\n3.5;-4e-3\r\n'));
  assert.equal(a.columns.map((c) => [c.name, Array.from(c.values)]), [['x', [1, 3.5]], ['y', [2, -0.004]]]);
  const b = readCSV('b.txt', enc('1 2 3\n4   5 6\n'));
  assert.equal(b.columns.map((c) => c.name), ['0', '1', '2']);
  assert.equal(select(b, undefined).shape, [2, 3]);
  assert.equal(select(b, '2,0').data, Float32Array.of(3, 1, 6, 4));
  const c = readCSV('c.tsv', enc('X\tY\tZ\n1\t2\t3\n'));
  assert.equal(select(c, 'position').data, Float32Array.of(1, 2, 3), 'position matches X, Y, Z case-insensitively');
  const w = readCSV('w.csv', writeCSV([{ name: 'v', values: [0.1, 1 / 3, NaN], kind: 'float32' }, { name: 'k', values: [1, 2, 3], kind: 'int32' }], 3));
  assert.equal(Array.from(select(w, 'v').data, String), ['0.10000000149011612', '0.3333333432674408', 'NaN'], 'float32 values written as the shortest text read back exactly');
  assert.match(new TextDecoder().decode(writeCSV([{ name: 'v', values: [0.1, 1 / 3], kind: 'float32' }], 2)), /^v\n0\.1\n0\.33333334\n$/);
  assert.equal(values(w, 'k'), [1, 2, 3]);
  await rejects(() => readCSV('r.csv', enc('x,y\n1,2\n3\n')), 'r.csv', /line 3: 1 values, the header has 2/);
  await rejects(() => readCSV('n.csv', enc('x,y\n1,two\n')), 'n.csv', /line 2, column 'y': 'two' is not a number/);
  await rejects(() => readCSV('e.csv', enc('\n# only a comment\n')), 'e.csv', /empty CSV file/);
  await rejects(() => readCSV('z.csv', Uint8Array.of(1, 0, 2)), 'z.csv', /not a text file/);
});

test('attribute selection: default position else every column; named attributes; missing ones list the columns', async () => {
  const { scan } = clouds();
  const t = await readTable(join(DATA, 'scan.ply'));
  assert.equal(select(t, undefined).data, Float32Array.from(scan.position));
  assert.equal(select(t, 'normal').data, Float32Array.from(scan.normal));
  assert.equal(select(t, 'intensity').shape, [800, 1]);
  assert.equal(select(t, 'nz,x').shape, [800, 2]);
  const p = await readTable(join(DATA, 'ref.pcd'));
  assert.equal(select(p, 'normal').data, Float32Array.from(clouds().ref.normal), 'PCD normal_x, normal_y, normal_z');
  await rejects(() => select(t, 'color'), join(DATA, 'scan.ply'), /no attribute 'color' \(columns red,green,blue or r,g,b\) in this PLY \(binary_little_endian\) file; its columns are: x, y, z, nx, ny, nz, intensity/);
  await rejects(() => select(t, 'x,w,q'), join(DATA, 'scan.ply'), /no columns 'w', 'q' in this PLY/);
  await rejects(() => readTable(join(DATA, 'missing.ply')), join(DATA, 'missing.ply'), /no such file/);
  await rejects(() => readTable(join(DATA, '../cli/registration.json')), join(DATA, '../cli/registration.json'), /unknown file format \(extension '\.json'\)/);
});

test('LAS through @loaders.gl/las: positions with scale and offset, intensity, colour; truncated and foreign files', async () => {
  const t = await readTable(join(DATA, 'terrain.las'));
  const ter = terrain();
  assert.is(t.format, 'LAS 1.2 (point format 2)');
  assert.equal(Array.from(select(t, 'position').data), Array.from(f32(terrainPositions(ter))));
  assert.equal(Array.from(select(t, 'intensity').data), Array.from(ter.intensity));
  assert.equal(select(t, 'color').shape, [1000, 3]);
  assert.equal(Array.from(values(t, 'classification').slice(0, 3)), [2, 2, 2]);
  const bytes = encodeLAS(terrain(10, 1));
  await rejects(() => readLAS('t.las', bytes.subarray(0, bytes.length - 5)), 't.las', /truncated LAS: the header declares 10 points of 26 bytes \(260 bytes\) from byte 227, but only 255 bytes follow \(the file ends in point 9\)/);
  await rejects(() => readLAS('h.las', bytes.subarray(0, 100)), 'h.las', /truncated LAS header: 100 bytes/);
  await rejects(() => readLAS('x.las', enc('LASX and more')), 'x.las', /not a LAS\/LAZ file/);
  const v14 = bytes.slice();
  v14[25] = 4;
  await rejects(() => readLAS('v.las', v14), 'v.las', /LAS 1\.4 is not supported \(@loaders\.gl\/las reads LAS\/LAZ 1\.0 to 1\.3\)/);
});

test.run();
