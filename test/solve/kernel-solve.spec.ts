import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkVar } from '../../src/graph/formula.js';
import { op } from '../../src/ops/build.js';
import { SolveError } from '../../src/solve/cg.js';
import { solveKernel } from '../../src/solve/kernel-solve.js';
import { choleskySolve, gaussianMatrix, relErr } from '../helpers/dense.js';
import { rng, uniform } from '../helpers/random.js';
import { useTestBackend } from '../helpers/backend.js';

// The seed problem: points in the unit square, Gaussian kernel sigma = 0.1, alpha = 0.01, Dv = 2.
const D = 2;
const Dv = 2;
const g = 0.5 / 0.1 ** 2;
const alpha = 0.01;
const gauss = (sign: 1 | -1) => {
  const k = op('Exp', [op('Minus', [op('Mult', [mkVar(2, 1, 2), op('SqDist', [mkVar(0, D, 0), mkVar(1, D, 1)])])])]);
  return sign === 1 ? k : op('Minus', [k]);
};
const problem = (n: number, seed: number) => {
  const r = rng(seed);
  const x = Float32Array.from(uniform(r, n * D, 0, 1));
  const b = Float32Array.from(uniform(r, n * Dv, 0, 1));
  const vals = [{ data: x, shape: [n, D] }, { data: x, shape: [n, D] }, { data: Float32Array.of(g), shape: [1] }];
  return { x, b, vals };
};

for (const precond of ['nystrom', 'none'] as const) {
  test(`seed problem (n = 600, ${precond}): c matches a dense float64 solve and reconstructs b`, async () => {
    const n = 600;
    const { x, b, vals } = problem(n, 11);
    const res = await solveKernel(gauss(1), vals, { data: b, shape: [n, Dv] }, { alpha, precond, rank: 128 });
    const A = gaussianMatrix(x, n, D, g, alpha);
    const want = choleskySolve(A, n, b, Dv);
    assert.ok(relErr(res.c.data, want) < 1e-3, `relative error ${relErr(res.c.data, want)}`);
    let mse = 0;
    for (let i = 0; i < n; i++)
      for (let c = 0; c < Dv; c++) {
        let s = 0;
        for (let j = 0; j < n; j++) s += A[i * n + j]! * res.c.data[j * Dv + c]!;
        mse += (s - b[i * Dv + c]!) ** 2;
      }
    assert.ok(mse / (n * Dv) < 1e-5, `reconstruction mse ${mse / (n * Dv)}`);
    if (precond === 'nystrom') assert.ok(res.iterations <= 50, `${res.iterations} iterations`);
  });
}


test.before(useTestBackend);
test('the Nyström preconditioner cuts the iteration count of the seed problem', async () => {
  const n = 600;
  const { b, vals } = problem(n, 12);
  const plain = await solveKernel(gauss(1), vals, { data: b, shape: [n, Dv] }, { alpha, precond: 'none' });
  const pre = await solveKernel(gauss(1), vals, { data: b, shape: [n, Dv] }, { alpha, precond: 'nystrom', rank: 128 });
  assert.ok(pre.iterations * 4 < plain.iterations, `${pre.iterations} vs ${plain.iterations}`);
});

test('a warm start from the solution converges at once', async () => {
  const n = 300;
  const { b, vals } = problem(n, 13);
  const first = await solveKernel(gauss(1), vals, { data: b, shape: [n, Dv] }, { alpha, tol: 1e-5 });
  const again = await solveKernel(gauss(1), vals, { data: b, shape: [n, Dv] }, { alpha, tol: 1e-5, x0: first.c });
  assert.ok(again.iterations < first.iterations, `${again.iterations} vs ${first.iterations}`);
});

test('a negative definite kernel rejects with a SolveError naming the breakdown', async () => {
  const n = 100;
  const { b, vals } = problem(n, 14);
  try {
    await solveKernel(gauss(-1), vals, { data: b, shape: [n, Dv] }, { alpha: 0, precond: 'none' });
    assert.unreachable('should reject');
  } catch (e) {
    assert.instance(e, SolveError);
    assert.match((e as Error).message, /not positive definite/);
    assert.match((e as Error).message, /residual reached/);
  }
});

test('not converging within maxIter rejects with the residual reached and the iteration count', async () => {
  const n = 300;
  const { b, vals } = problem(n, 15);
  try {
    await solveKernel(gauss(1), vals, { data: b, shape: [n, Dv] }, { alpha, precond: 'none', maxIter: 3 });
    assert.unreachable('should reject');
  } catch (e) {
    assert.instance(e, SolveError);
    assert.match((e as Error).message, /did not converge in 3 iterations: relative residual \d/);
    assert.is((e as SolveError).iterations, 3);
  }
});

test.run();
