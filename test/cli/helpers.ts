/**
 * Shared by the command's tests: running `kernelflow` from source as a child process, an
 * independent .npy reader, and float64 references computed from the sample generator's points.
 */
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as assert from 'uvu/assert';

export const ROOT = fileURLToPath(new URL('../../', import.meta.url));
export const DATA = join(ROOT, 'examples/data');
export const MAIN = join(ROOT, 'src/cli/main.ts');

/** A finished command. */
export interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * The child's environment: no V8 coverage (the child runs under tsx's loader, whose source maps
 * differ from the runner's, so c8 would count its ranges on wrong lines), no KF_BACKEND override.
 */
export function childEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = { ...process.env };
  delete env.KF_BACKEND;
  // Node copies NODE_V8_COVERAGE into children unless the child's env sets it; empty turns it off.
  if (env.NODE_V8_COVERAGE !== undefined) env.NODE_V8_COVERAGE = '';
  return env;
}

/** `node --import tsx src/cli/main.ts ...args` in `cwd` (default: the repository root). */
export function kernelflow(args: readonly string[], cwd = ROOT): Promise<Run> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd, env: childEnv(), timeout: 60_000, maxBuffer: 1 << 24 }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
      resolve({ code, stdout, stderr });
    });
  });
}

/** Starts `kernelflow ...args` without waiting (for --watch). */
export function startKernelflow(args: readonly string[], cwd = ROOT): ChildProcess {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], { cwd, env: childEnv(), stdio: ['ignore', 'pipe', 'pipe'] });
}

/** A minimal .npy reader, independent of src/cli: little-endian f4, f8 or i4, C order. */
export function parseNpy(bytes: Uint8Array): { descr: string; shape: number[]; data: Float64Array } {
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  assert.is(String.fromCharCode(...bytes.subarray(1, 6)), 'NUMPY');
  const len = v.getUint16(8, true);
  const header = new TextDecoder().decode(bytes.subarray(10, 10 + len));
  const descr = /'descr': '([^']+)'/.exec(header)![1]!;
  const shape = /'shape': \(([^)]*)\)/.exec(header)![1]!.split(',').filter((s) => s.trim() !== '').map(Number);
  const n = shape.reduce((a, b) => a * b, 1);
  const size = descr === '<f8' ? 8 : 4;
  const at = 10 + len;
  const data = Float64Array.from({ length: n }, (_, i) =>
    descr === '<i4' ? v.getInt32(at + i * 4, true) : descr === '<f8' ? v.getFloat64(at + i * 8, true) : v.getFloat32(at + i * 4, true));
  assert.is(bytes.length, at + n * size, 'npy file length');
  return { descr, shape, data };
}

/** Float32-rounded copy (the files store float32; the references use what the files hold). */
export const f32 = (a: ArrayLike<number>): Float64Array => Float64Array.from(a, (x) => Math.fround(x));

/** Squared distance between row i of x and row j of y (d columns), in float64. */
export function sqdist(x: ArrayLike<number>, i: number, y: ArrayLike<number>, j: number, d: number): number {
  let s = 0;
  for (let k = 0; k < d; k++) {
    const t = x[i * d + k]! - y[j * d + k]!;
    s += t * t;
  }
  return s;
}

/** Float64 nearest neighbour of each row of x among the rows of y: [min squared distance, index]. */
export function nearest(x: ArrayLike<number>, y: ArrayLike<number>, d: number): { d2: Float64Array; nn: Int32Array } {
  const m = x.length / d;
  const n = y.length / d;
  const d2 = new Float64Array(m);
  const nn = new Int32Array(m);
  for (let i = 0; i < m; i++) {
    let best = Infinity;
    for (let j = 0; j < n; j++) {
      const s = sqdist(x, i, y, j, d);
      if (s < best) [best, nn[i]] = [s, j];
    }
    d2[i] = best;
  }
  return { d2, nn };
}

/** Float64 Gaussian density: sum over rows j of y of exp(-g |x_i - y_j|^2). */
export function density(x: ArrayLike<number>, y: ArrayLike<number>, d: number, g: number): Float64Array {
  const m = x.length / d;
  const n = y.length / d;
  return Float64Array.from({ length: m }, (_, i) => {
    let s = 0;
    for (let j = 0; j < n; j++) s += Math.exp(-g * sqdist(x, i, y, j, d));
    return s;
  });
}

/** Float64 soft match: the softmax(-g d_ij)-weighted mean of the rows of y, for each row of x. */
export function softTarget(x: ArrayLike<number>, y: ArrayLike<number>, d: number, g: number): Float64Array {
  const m = x.length / d;
  const n = y.length / d;
  const out = new Float64Array(m * d);
  for (let i = 0; i < m; i++) {
    let lo = Infinity;
    for (let j = 0; j < n; j++) lo = Math.min(lo, g * sqdist(x, i, y, j, d));
    let z = 0;
    for (let j = 0; j < n; j++) {
      const w = Math.exp(lo - g * sqdist(x, i, y, j, d));
      z += w;
      for (let k = 0; k < d; k++) out[i * d + k] = out[i * d + k]! + w * y[j * d + k]!;
    }
    for (let k = 0; k < d; k++) out[i * d + k] = out[i * d + k]! / z;
  }
  return out;
}

/** Asserts |a - b| <= atol + rtol |b| elementwise, naming the first failure. */
export function assertClose(a: ArrayLike<number>, b: ArrayLike<number>, rtol: number, atol: number, what: string): void {
  assert.is(a.length, b.length, `${what}: length`);
  for (let i = 0; i < a.length; i++) {
    const err = Math.abs(a[i]! - b[i]!);
    if (!(err <= atol + rtol * Math.abs(b[i]!))) assert.unreachable(`${what}[${i}]: ${a[i]} vs float64 ${b[i]} (error ${err})`);
  }
}

/**
 * Asserts that nearest-neighbour indices are right: equal to the float64 argmin, or (a float32
 * near-tie) pointing at a neighbour as near to within 1e-6 relative.
 */
export function assertNearest(nn: ArrayLike<number>, x: ArrayLike<number>, y: ArrayLike<number>, d: number, ref: { d2: Float64Array; nn: Int32Array }, what: string): void {
  assert.is(nn.length, ref.nn.length, `${what}: length`);
  for (let i = 0; i < nn.length; i++) {
    if (nn[i] === ref.nn[i]) continue;
    const got = sqdist(x, i, y, nn[i]!, d);
    if (!(Math.abs(got - ref.d2[i]!) <= 1e-6 * ref.d2[i]! + 1e-12)) assert.unreachable(`${what}[${i}]: index ${nn[i]} (d2 ${got}), float64 nearest ${ref.nn[i]} (d2 ${ref.d2[i]})`);
  }
}

/** Reads CSV text written by the command: header names and rows of numbers. */
export function parseCsv(text: string): { names: string[]; rows: number[][] } {
  const lines = text.trim().split('\n');
  return { names: lines[0]!.split(','), rows: lines.slice(1).map((l) => l.split(',').map(Number)) };
}
