import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { pivotedCholesky, type KernelColumns, type LandmarkRule } from '../../src/solve/nystrom.js';
import { nystromPreconditioner } from '../../src/solve/preconditioner.js';

/*
 * The Nyström factor K ≈ F F^T from a pivoted partial Cholesky, on host kernels that behave like
 * the backends' float32 ones: entries rounded to float32 and perturbed by a few ulps, each entry
 * and its mirror on its own (a GPU evaluates K[i, p] for column p and K[p, i] for column i apart).
 */

const g = 50;
const alpha = 0.01;

function cloud(n: number, seed: number): number[][] {
  let s = seed;
  const rand = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  return Array.from({ length: n }, () => [rand(), rand()]);
}

/** Host kernel columns: float32-rounded Gaussian with `ulps` of independent noise per entry. */
function hostColumns(pts: readonly number[][], ulps: number, seed = 5): KernelColumns & { calls: number } {
  let s = seed;
  const rand = (): number => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
  const k = (i: number, j: number): number => Math.exp(-g * ((pts[i]![0]! - pts[j]![0]!) ** 2 + (pts[i]![1]! - pts[j]![1]!) ** 2));
  const out = {
    n: pts.length,
    calls: 0,
    diagonal: async () => new Float64Array(pts.length).fill(1),
    columns: async (idx: Int32Array) => {
      out.calls++;
      const C = new Float32Array(pts.length * idx.length);
      for (let i = 0; i < pts.length; i++)
        idx.forEach((p, c) => (C[i * idx.length + c] = i === p ? 1 : k(i, p) * (1 + ulps * 2 ** -23 * (rand() - 0.5))));
      return C;
    },
  };
  return out;
}

/** Exact (alpha I + K) r in float64. */
function applyA(pts: readonly number[][], r: Float64Array): Float64Array {
  const n = pts.length;
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    let acc = alpha * r[i]!;
    for (let j = 0; j < n; j++) acc += Math.exp(-g * ((pts[i]![0]! - pts[j]![0]!) ** 2 + (pts[i]![1]! - pts[j]![1]!) ** 2)) * r[j]!;
    out[i] = acc;
  }
  return out;
}

const RULES: LandmarkRule[] = ['greedy', 'rpcholesky', 'uniform'];

for (const rule of RULES) {
  test(`${rule}: landmarks that nearly coincide (float32 kernels with ulp noise) still give a positive definite, useful preconditioner`, async () => {
    const pts = cloud(600, 3);
    // Candidates in this order for 'uniform': point 1 is point 0 moved by 1e-6, so K restricted to
    // them is singular in float32 (the failure the old jitter fixed, f40745e).
    pts[1] = [pts[0]![0]! + 1e-6, pts[0]![1]!];
    const order = Int32Array.from({ length: 600 }, (_, i) => i);
    const f = await pivotedCholesky(hostColumns(pts, 4), { rule, maxRank: 256, stop: 0, block: 32, order });
    assert.ok(f.rank > 100, `rank ${f.rank}`);
    const pv = Array.from(f.pivots);
    assert.not.ok(pv.includes(0) && pv.includes(1), 'the near-duplicate pair is never both taken');
    assert.ok(f.F.every(Number.isFinite), 'F is finite');
    const apply = nystromPreconditioner(f, alpha);
    let s = 11;
    const r = Float64Array.from({ length: pts.length }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) - 0.5);
    const z = apply(r);
    let dot = 0;
    for (let i = 0; i < r.length; i++) dot += r[i]! * z[i]!;
    assert.ok(z.every(Number.isFinite), 'P^-1 r is finite');
    assert.ok(dot > 0, `<r, P^-1 r> = ${dot} > 0`);
    // Close to the exact inverse: P^-1 (alpha I + K) r ≈ r.
    const back = apply(applyA(pts, r));
    let num = 0;
    let den = 0;
    for (let i = 0; i < r.length; i++) {
      num += (back[i]! - r[i]!) ** 2;
      den += r[i]! ** 2;
    }
    assert.ok(Math.sqrt(num / den) < 0.5, `P^-1 A r is within 50% of r (${Math.sqrt(num / den)}): a useful preconditioner`);
  });
}

test('the search stops when the residual diagonal is below `stop`, and the factor explains K to that level', async () => {
  const pts = cloud(800, 7);
  const K = hostColumns(pts, 0);
  const stop = 1e-3;
  const f = await pivotedCholesky(K, { rule: 'greedy', maxRank: 400, stop, block: 16 });
  assert.ok(f.rank < 400, `stopped early at rank ${f.rank}`);
  assert.ok(f.maxResidual <= stop, `largest residual ${f.maxResidual}`);
  // K_ii - |F_i|^2 is the residual diagonal: all in [-noise, stop].
  let worst = 0;
  for (let i = 0; i < pts.length; i++) {
    let s = 0;
    for (let a = 0; a < f.rank; a++) s += f.F[i * f.rank + a]! ** 2;
    worst = Math.max(worst, Math.abs(1 - s));
    assert.ok(1 - s <= stop * 1.001 && 1 - s > -1e-5, `row ${i}: residual ${1 - s}`);
  }
  assert.ok(f.pivots.length === f.rank && new Set(f.pivots).size === f.rank, 'distinct pivots');
  assert.ok(worst <= stop * 1.001);
});

test('greedy takes each pivot within a factor 2 of the largest residual, and fewer landmarks reach a residual than uniform', async () => {
  const pts = cloud(800, 9);
  const stop = 1e-2;
  const greedy = await pivotedCholesky(hostColumns(pts, 0), { rule: 'greedy', maxRank: 400, stop, block: 16 });
  const uniform = await pivotedCholesky(hostColumns(pts, 0), { rule: 'uniform', maxRank: 400, stop, block: 16 });
  assert.ok(greedy.maxResidual <= stop && uniform.maxResidual <= stop);
  assert.ok(greedy.rank < uniform.rank, `greedy ${greedy.rank} vs uniform ${uniform.rank} landmarks`);
});

test('a cancelled search returns the factor so far', async () => {
  const pts = cloud(500, 4);
  let rounds = 0;
  const f = await pivotedCholesky(hostColumns(pts, 0), { rule: 'rpcholesky', maxRank: 300, stop: 0, block: 16, cancelled: () => ++rounds >= 2 });
  assert.ok(f.rank > 0 && f.rank <= 32, `rank ${f.rank}`);
});

test.run();
