/**
 * Generates the small sample point clouds of examples/data (docs/cli.md), deterministically:
 *
 *   npx tsx scripts/gen-sample-data.ts          # writes examples/data/*
 *   npx tsx scripts/gen-sample-data.ts --check  # exits 1 if a committed file differs
 *
 * A reference surface `ref` (a bumpy height field over [-1, 1]^2, with normals and an intensity)
 * and a `scan` of the same surface: other sample points, noise, then a small rigid motion (a
 * rotation of 4 degrees about z and a translation), so that the registration example has a step
 * to find. A LiDAR-like `terrain` (LAS, and LAZ by our own LASzip encoder, scripts/laz) for the
 * density example. Each file format the command
 * reads gets a file; test/cli checks that the committed files are what this script writes.
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { Rng } from '../examples/lib/cli.js';
import { writeCSV } from '../src/cli/formats/csv.js';
import { writeNPY } from '../src/cli/formats/npy.js';
import { writePCD } from '../src/cli/formats/pcd.js';
import { writePLY } from '../src/cli/formats/ply.js';
import type { ScalarKind } from '../src/cli/formats/table.js';
import { compressLAS } from './laz/laz.js';

/** A generated cloud: float64 columns (what the files store, before float32 rounding). */
export interface Cloud {
  readonly n: number;
  readonly position: Float64Array;
  readonly normal: Float64Array;
  readonly intensity: Float64Array;
}

/** The surface z = f(u, v) and its unit normal. */
function surface(u: number, v: number): { p: [number, number, number]; nrm: [number, number, number] } {
  const z = 0.25 * Math.sin(2.5 * u) * Math.cos(2 * v) + 0.1 * u;
  const du = 0.625 * Math.cos(2.5 * u) * Math.cos(2 * v) + 0.1;
  const dv = -0.5 * Math.sin(2.5 * u) * Math.sin(2 * v);
  const len = Math.hypot(du, dv, 1);
  return { p: [u, v, z], nrm: [-du / len, -dv / len, 1 / len] };
}

/** Samples n points of the surface; `motion` applies noise and the rigid motion of the scan. */
function sample(n: number, seed: number, motion: boolean): Cloud {
  const rng = new Rng(seed);
  const position = new Float64Array(n * 3);
  const normal = new Float64Array(n * 3);
  const intensity = new Float64Array(n);
  const a = (4 * Math.PI) / 180;
  const [c, s] = [Math.cos(a), Math.sin(a)];
  const t = [0.06, -0.04, 0.03];
  for (let i = 0; i < n; i++) {
    const u = 2 * rng.uniform() - 1;
    const v = 2 * rng.uniform() - 1;
    const { p, nrm } = surface(u, v);
    intensity[i] = 0.5 + 0.5 * Math.sin(4 * u) * Math.sin(4 * v);
    if (motion) {
      for (let k = 0; k < 3; k++) p[k] = p[k]! + 0.004 * rng.normal();
      const rot = (w: number[]): number[] => [c * w[0]! - s * w[1]!, s * w[0]! + c * w[1]!, w[2]!];
      const q = rot(p);
      const m = rot(nrm);
      for (let k = 0; k < 3; k++) {
        p[k] = q[k]! + t[k]!;
        nrm[k] = m[k]!;
      }
    }
    position.set(p, 3 * i);
    normal.set(nrm, 3 * i);
  }
  return { n, position, normal, intensity };
}

/** The first `n` points of a cloud. */
export function head(c: Cloud, n: number): Cloud {
  return { n, position: c.position.slice(0, 3 * n), normal: c.normal.slice(0, 3 * n), intensity: c.intensity.slice(0, n) };
}

/** Column k of an interleaved [n, 3] array. */
const col = (a: Float64Array, k: number): Float64Array => Float64Array.from({ length: a.length / 3 }, (_, i) => a[3 * i + k]!);

/** A cloud's columns for the writers; `names` spells the normal columns (PLY nx, PCD normal_x). */
export function columns(c: Cloud, normals: readonly string[] | null, extra: readonly { name: string; values: ArrayLike<number>; kind: ScalarKind }[] = []) {
  return [
    ...['x', 'y', 'z'].map((name, k) => ({ name, values: col(c.position, k), kind: 'float32' as const })),
    ...(normals === null ? [] : normals.map((name, k) => ({ name, values: col(c.normal, k), kind: 'float32' as const }))),
    { name: 'intensity', values: c.intensity, kind: 'float32' as const },
    ...extra,
  ];
}

/** The LAS sample: a LiDAR-like terrain of 1000 points, 50 m square, millimetre quantisation. */
export interface Terrain {
  readonly n: number;
  /** Integer record coordinates (the file's X, Y, Z). */
  readonly xyz: Int32Array;
  readonly scale: readonly [number, number, number];
  readonly offset: readonly [number, number, number];
  readonly intensity: Uint16Array;
  readonly rgb: Uint16Array;
}

export function terrain(n = 1000, seed = 7): Terrain {
  const rng = new Rng(seed);
  const scale = [0.001, 0.001, 0.001] as const;
  const offset = [0, 0, 100] as const;
  const xyz = new Int32Array(n * 3);
  const intensity = new Uint16Array(n);
  const rgb = new Uint16Array(n * 3);
  for (let i = 0; i < n; i++) {
    // Denser near two tree-like clusters, as a LiDAR scan of a field with two copses.
    const cluster = rng.uniform();
    let x: number, y: number;
    if (cluster < 0.3) [x, y] = [12 + 2 * rng.normal(), 15 + 2 * rng.normal()];
    else if (cluster < 0.5) [x, y] = [35 + 1.5 * rng.normal(), 30 + 1.5 * rng.normal()];
    else [x, y] = [50 * rng.uniform(), 50 * rng.uniform()];
    const z = 100 + 2 * Math.sin(x / 8) + 1.5 * Math.cos(y / 11) + (cluster < 0.5 ? 6 * rng.uniform() : 0.05 * rng.normal());
    xyz[3 * i] = Math.round((x - offset[0]) / scale[0]);
    xyz[3 * i + 1] = Math.round((y - offset[1]) / scale[1]);
    xyz[3 * i + 2] = Math.round((z - offset[2]) / scale[2]);
    intensity[i] = Math.round(200 + 1000 * rng.uniform());
    const g = cluster < 0.5 ? 40000 : 30000;
    rgb.set([Math.round(g * 0.4), g, Math.round(g * 0.3)], 3 * i);
  }
  return { n, xyz, scale, offset, intensity, rgb };
}

/** The positions a LAS reader gives for a terrain (float64: scale and offset applied). */
export function terrainPositions(t: Terrain): Float64Array {
  return Float64Array.from(t.xyz, (q, k) => q * t.scale[k % 3]! + t.offset[k % 3]!);
}

/** Encodes a terrain as LAS 1.2, point data format 2 (with RGB). */
export function encodeLAS(t: Terrain): Uint8Array {
  const header = 227;
  const rec = 26;
  const bytes = new Uint8Array(header + t.n * rec);
  const v = new DataView(bytes.buffer);
  bytes.set(new TextEncoder().encode('LASF'), 0);
  v.setUint8(24, 1);
  v.setUint8(25, 2);
  bytes.set(new TextEncoder().encode('kernelflow gen-sample-data'), 58);
  v.setUint16(90, 1, true);
  v.setUint16(92, 2025, true);
  v.setUint16(94, header, true);
  v.setUint32(96, header, true);
  v.setUint32(100, 0, true);
  v.setUint8(104, 2);
  v.setUint16(105, rec, true);
  v.setUint32(107, t.n, true);
  v.setUint32(111, t.n, true); // all first returns
  const pos = terrainPositions(t);
  for (let k = 0; k < 3; k++) {
    v.setFloat64(131 + 8 * k, t.scale[k]!, true);
    v.setFloat64(155 + 8 * k, t.offset[k]!, true);
    let lo = Infinity;
    let hi = -Infinity;
    for (let i = 0; i < t.n; i++) {
      lo = Math.min(lo, pos[3 * i + k]!);
      hi = Math.max(hi, pos[3 * i + k]!);
    }
    v.setFloat64(179 + 16 * k, hi, true);
    v.setFloat64(187 + 16 * k, lo, true);
  }
  for (let i = 0; i < t.n; i++) {
    const o = header + i * rec;
    for (let k = 0; k < 3; k++) v.setInt32(o + 4 * k, t.xyz[3 * i + k]!, true);
    v.setUint16(o + 12, t.intensity[i]!, true);
    v.setUint8(o + 14, 0b00001001); // return 1 of 1
    v.setUint8(o + 15, 2); // ground
    for (let k = 0; k < 3; k++) v.setUint16(o + 20 + 2 * k, t.rgb[3 * i + k]!, true);
  }
  return bytes;
}

/** Points per LAZ chunk in terrain.laz: 1000 points make 4 chunks. */
export const LAZ_CHUNK = 256;

/** The sample clouds. */
export function clouds(): { scan: Cloud; ref: Cloud; terrain: Terrain } {
  return { scan: sample(800, 11, true), ref: sample(1200, 22, false), terrain: terrain() };
}

/** Every sample file, by name. */
export function sampleFiles(): Map<string, Uint8Array> {
  const { scan, ref, terrain: t } = clouds();
  const small = head(scan, 300);
  const smallRef = head(ref, 300);
  const colors = (c: Cloud) => ['red', 'green', 'blue'].map((name, k) => ({
    name,
    kind: 'uint8' as const,
    values: Uint8Array.from({ length: c.n }, (_, i) => Math.round(255 * Math.min(1, Math.max(0, 0.5 + c.normal[3 * i + k]! / 2)))),
  }));
  const files = new Map<string, Uint8Array>();
  files.set('scan.ply', writePLY(columns(scan, ['nx', 'ny', 'nz']), scan.n, { comments: ['kernelflow sample: scan (moved surface)'] }));
  files.set('scan-be.ply', writePLY(columns(small, ['nx', 'ny', 'nz'], colors(small)), small.n, { format: 'binary_big_endian', comments: ['kernelflow sample: first 300 scan points'] }));
  files.set('scan-ascii.ply', writePLY(columns(small, ['nx', 'ny', 'nz']), small.n, { format: 'ascii', comments: ['kernelflow sample: first 300 scan points'] }));
  files.set('ref.pcd', writePCD(columns(ref, ['normal_x', 'normal_y', 'normal_z']), ref.n, 'binary'));
  files.set('ref-ascii.pcd', writePCD(columns(smallRef, ['normal_x', 'normal_y', 'normal_z']), smallRef.n, 'ascii'));
  files.set('ref-compressed.pcd', writePCD(columns(smallRef, null), smallRef.n, 'binary_compressed'));
  files.set('terrain.las', encodeLAS(t));
  // Chunks of 256 points (LASzip's default is 50 000) so that the sample has several chunks.
  files.set('terrain.laz', compressLAS(encodeLAS(t), { chunkSize: LAZ_CHUNK }));
  files.set('scan.npy', writeNPY(Float32Array.from(scan.position), [scan.n, 3]));
  files.set('scan.csv', writeCSV(columns(small, null), small.n));
  return files;
}

const DIR = join(dirname(fileURLToPath(import.meta.url)), '../examples/data');

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const check = process.argv.includes('--check');
  let stale = 0;
  mkdirSync(DIR, { recursive: true });
  for (const [name, bytes] of sampleFiles()) {
    const path = join(DIR, name);
    if (check) {
      let old: Uint8Array | undefined;
      try {
        old = readFileSync(path);
      } catch {
        old = undefined;
      }
      if (old === undefined || Buffer.compare(Buffer.from(old), Buffer.from(bytes)) !== 0) {
        console.log(`${name}: differs from what the script writes`);
        stale++;
      }
    } else {
      writeFileSync(path, bytes);
      console.log(`wrote examples/data/${name} (${bytes.length} bytes)`);
    }
  }
  if (stale > 0) process.exitCode = 1;
}
