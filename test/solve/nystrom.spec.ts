import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { nystromPreconditioner } from '../../src/solve/nystrom.js';

/** Gaussian kernel matrix between point lists (float64), rounded to float32 like a kernel's output. */
function block(a: readonly number[][], b: readonly number[][], g: number): Float64Array {
  const out = new Float64Array(a.length * b.length);
  a.forEach((p, i) => b.forEach((q, j) => (out[i * b.length + j] = Math.fround(Math.exp(-g * ((p[0]! - q[0]!) ** 2 + (p[1]! - q[1]!) ** 2))))));
  return out;
}

test('landmarks that nearly coincide (Kmm indefinite by float32 rounding) still give a preconditioner', () => {
  let s = 3;
  const rand = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const pts = Array.from({ length: 600 }, () => [rand(), rand()]);
  // 256 landmarks in the unit square at sigma 0.1: many pairs closer than 1e-3, so Kmm is singular in float32.
  const land = pts.slice(0, 256);
  land[1] = [land[0]![0]! + 1e-6, land[0]![1]!];
  const g = 50;
  // A GPU kernel evaluates exp to a few float32 ulps, each entry (and its mirror) on its own.
  const Kmm = block(land, land, g).map((v) => v * (1 + 4 * 2 ** -23 * (rand() - 0.5)));
  const Knm = block(pts, land, g);
  const alpha = 0.01;
  const apply = nystromPreconditioner(Knm, Kmm, pts.length, land.length, alpha);
  // P = alpha I + Knm Kmm^-1 Kmn is symmetric positive definite: <r, P^-1 r> > 0 and P^-1 is finite.
  const r = Float64Array.from({ length: pts.length }, () => rand() - 0.5);
  const z = apply(r);
  let dot = 0;
  for (let i = 0; i < r.length; i++) dot += r[i]! * z[i]!;
  assert.ok(z.every(Number.isFinite), 'P^-1 r is finite');
  assert.ok(dot > 0, `<r, P^-1 r> = ${dot} > 0`);
  // And it is close to the exact inverse on a vector in the landmarks' span (P^-1 (alpha I + K) r ≈ r there).
  const K = block(pts, pts, g);
  const Ar = new Float64Array(r.length);
  for (let i = 0; i < r.length; i++) {
    let acc = alpha * r[i]!;
    for (let j = 0; j < r.length; j++) acc += K[i * r.length + j]! * r[j]!;
    Ar[i] = acc;
  }
  const back = apply(Ar);
  let num = 0;
  let den = 0;
  for (let i = 0; i < r.length; i++) {
    num += (back[i]! - r[i]!) ** 2;
    den += r[i]! ** 2;
  }
  assert.ok(Math.sqrt(num / den) < 0.5, `P^-1 A r is within 50% of r (${Math.sqrt(num / den)}): a useful preconditioner`);
});

test.run();
