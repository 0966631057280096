import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkVar } from '../../src/graph/formula.js';
import { op } from '../../src/ops/build.js';
import { conjugateGradient } from '../../src/solve/cg.js';
import { solveKernel } from '../../src/solve/kernel-solve.js';
import { refine } from '../../src/solve/refine.js';
import { choleskySolve, gaussianMatrix, relErr } from '../helpers/dense.js';
import { rng, uniform } from '../helpers/random.js';
import { useTestBackend } from '../helpers/backend.js';

/*
 * Iterative refinement (issue 19): a CG whose operator is slightly wrong (float32 kernel values)
 * solves a nearby system; residuals b - A x computed with the right operator and corrections
 * solved with the wrong one bring x to the right system's solution.
 */

test.before(useTestBackend);

/** A dense symmetric positive definite system: Gaussian kernel on m points plus alpha I, and a version with symmetric relative noise of size `noise` in every entry. */
function perturbed(m: number, noise: number, seed: number) {
  const r = rng(seed);
  const x = uniform(r, m * 2, 0, 1);
  const A = gaussianMatrix(x, m, 2, 50, 0.01);
  const E = Float64Array.from(A);
  for (let i = 0; i < m; i++)
    for (let j = 0; j <= i; j++) {
      const f = 1 + noise * (2 * r() - 1);
      E[i * m + j]! *= f;
      if (j !== i) E[j * m + i] = E[i * m + j]!;
    }
  const matvec = (M: Float64Array) => (v: Float64Array) => {
    const cols = v.length / m;
    const out = new Float64Array(v.length);
    for (let i = 0; i < m; i++)
      for (let j = 0; j < m; j++) for (let c = 0; c < cols; c++) out[i * cols + c]! += M[i * m + j]! * v[j * cols + c]!;
    return out;
  };
  return { A, exact: matvec(A), noisy: matvec(E), b: Float64Array.from(uniform(r, m * 2, 0, 1)) };
}

test('refine: exact residuals and corrections through a perturbed operator reach the exact solution', async () => {
  const m = 300;
  const { A, exact, noisy, b } = perturbed(m, 1e-4, 5);
  const want = choleskySolve(A, m, b, 2);
  const solveNoisy = (rhs: Float64Array, tol: number) => conjugateGradient(async (v) => noisy(v), rhs, 2, { tol, maxIter: 2000 });
  const x = (await solveNoisy(b, 1e-12)).x;
  const before = relErr(x, want);
  // The perturbed system's solution is off by far more than its tolerance: the operator, not CG, limits it.
  assert.ok(before > 1e-4, `error before refinement ${before}`);
  const residual = async (v: Float64Array) => {
    const Av = exact(v);
    return Av.map((a, k) => b[k]! - a);
  };
  const out = await refine(x, b, 2, { steps: 3, tol: 1e-10, residual, correct: solveNoisy });
  const after = relErr(x, want);
  assert.is(out.steps, 3);
  // Each step multiplies the error by about |A^-1 E| (1/40 here): 1.3e-2 -> 1.5e-7 in three.
  assert.ok(after < before * 1e-4, `error ${before} -> ${after}`);
  assert.ok(out.checked > 0 && out.checked < 1e-5, `float64 residual before the last correction ${out.checked}`);
});

test('refine: a residual already below tol makes no correction', async () => {
  const m = 120;
  const { A, exact, b } = perturbed(m, 0, 6);
  const x = choleskySolve(A, m, b, 2);
  let corrections = 0;
  const out = await refine(x, b, 2, {
    steps: 2,
    tol: 1e-8,
    residual: async (v) => exact(v).map((a, k) => b[k]! - a),
    correct: async () => {
      corrections++;
      throw new Error('no correction expected');
    },
  });
  assert.is(corrections, 0);
  assert.is(out.steps, 0);
  assert.ok(out.checked < 1e-8 && out.residual === out.checked, `${out.checked}`);
});

// The seed problem of bench/solve.ts at n = 1500: points in the unit square, sigma 0.1, alpha 0.01.
test('solveKernel with refine: 1 is closer to a dense float64 solve than without, and within 1e-5 of it', async () => {
  const n = 1500;
  const r = rng(21);
  const x = Float32Array.from(uniform(r, n * 2, 0, 1));
  const b = Float32Array.from(uniform(r, n * 2, 0, 1));
  const g = 50;
  const K = op('Exp', [op('Minus', [op('Mult', [mkVar(2, 1, 2), op('SqDist', [mkVar(0, 2, 0), mkVar(1, 2, 1)])])])]);
  const vals = [{ data: x, shape: [n, 2] }, { data: x, shape: [n, 2] }, { data: Float32Array.of(g), shape: [1] }];
  const want = choleskySolve(gaussianMatrix(x, n, 2, g, 0.01), n, b, 2);
  const plain = await solveKernel(K, vals, { data: b, shape: [n, 2] }, { alpha: 0.01 });
  const refined = await solveKernel(K, vals, { data: b, shape: [n, 2] }, { alpha: 0.01, refine: 1 });
  const [e0, e1] = [relErr(plain.c.data, want), relErr(refined.c.data, want)];
  assert.ok(e1 < 1e-5 && e1 < e0, `error without ${e0}, with refinement ${e1}`);
  assert.is(plain.info.refinements, 0);
  assert.ok(Number.isNaN(plain.info.float64Residual));
  assert.is(refined.info.refinements, 1);
  // The float64 residual of the unrefined solution (rounded to float32) is what the correction removed.
  assert.ok(refined.info.float64Residual > 0 && refined.info.float64Residual < 1e-3, `${refined.info.float64Residual}`);
  // The same first solve (seeded landmarks), then the correction's iterations.
  assert.ok(refined.iterations > plain.iterations, `${plain.iterations} -> ${refined.iterations}`);
});

test.run();
