import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DataError, DimensionError, kernelSolve, source, Vi, Vj } from '../../src/index.js';
import { OptionError } from '../../src/errors.js';
import { disposeAll } from '../../src/nodes/node.js';
import { SolveError } from '../../src/solve/cg.js';
import { useTestBackend } from '../helpers/backend.js';

/*
 * A solve checks its options, the warm start's shape and its data before iterating (issue 12):
 * out-of-range options are OptionErrors naming the option, an x0 of the wrong shape is a
 * DimensionError naming x0, NaN or Infinity in b or in the points is a DataError naming the
 * argument (not "not positive definite"), and a kernel that is not positive definite is a
 * SolveError carrying the iteration and the residual. (Runs on WebGPU too: npm run test:webgpu.)
 */

test.before(useTestBackend);
test.after.each(() => disposeAll());

const n = 200;
const pts = (d: number, seed: number) => Float32Array.from({ length: n * d }, (_, k) => ((k + 1) * 0.6180339 * seed) % 1);
const F = 'Exp(-g*SqDist(x,y))*b';
const A = ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(1)', 'g = Pm(1)'];
const X = { data: pts(2, 1), shape: [n, 2] };
const B = { data: pts(1, 3), shape: [n, 1] };
const G = { data: Float32Array.of(20), shape: [1] };

async function caught(fn: () => unknown): Promise<Error> {
  try {
    await fn();
  } catch (e) {
    return e as Error;
  }
  assert.unreachable('expected an error');
  throw new Error('unreachable');
}

const BAD_OPTIONS: [Record<string, unknown>, string, string][] = [
  [{ maxIter: -5 }, 'maxIter', 'must be an integer >= 1, got -5'],
  [{ maxIter: NaN }, 'maxIter', 'must be an integer >= 1, got NaN'],
  [{ maxIter: 2.5 }, 'maxIter', 'must be an integer >= 1, got 2.5'],
  [{ tol: NaN }, 'tol', 'must be a finite number >= 0, got NaN'],
  [{ tol: -1 }, 'tol', 'must be a finite number >= 0, got -1'],
  [{ alpha: Infinity }, 'alpha', 'must be a finite number >= 0, got Infinity'],
  [{ alpha: -0.1 }, 'alpha', 'must be a finite number >= 0, got -0.1'],
  [{ rank: -5 }, 'rank', 'must be an integer >= 1, got -5'],
  [{ rank: 1.5 }, 'rank', 'must be an integer >= 1, got 1.5'],
  [{ precond: 'cholesky' }, 'precond', "must be one of 'nystrom', 'none', got 'cholesky'"],
  [{ landmarks: 'random' }, 'landmarks', "must be one of 'greedy', 'rpcholesky', 'uniform', got 'random'"],
  [{ precondTol: -1 }, 'precondTol', 'must be a finite number >= 0, got -1'],
  [{ refine: -1 }, 'refine', 'must be an integer >= 0, got -1'],
  [{ refine: 0.5 }, 'refine', 'must be an integer >= 0, got 0.5'],
  [{ resident: 'yes' }, 'resident', "must be one of true, false, 'auto', got 'yes'"],
  [{ x0: [0, 0] }, 'x0', 'must be a TensorLike { data, shape }, got an array of 2'],
];

test('LazyTensor.solve: out-of-range options are OptionErrors when the node is made', async () => {
  const x = source(X.data, X.shape, 'x');
  const b = source(B.data, B.shape, 'b');
  const K = Vi(x).sqdist(Vj(x)).mul(-20).exp();
  for (const [opts, option, problem] of BAD_OPTIONS) {
    const e = await caught(() => K.solve(b, { alpha: 0.1, ...opts }));
    assert.instance(e, OptionError, JSON.stringify(opts));
    assert.is((e as OptionError).option, option);
    assert.is(e.message, `solve: option '${option}' ${problem}`);
  }
  const e = await caught(() => K.solve(b, { alhpa: 0.1 } as never));
  assert.is(e.message, "solve: unknown option 'alhpa' (did you mean 'alpha'?); the options are 'alpha', 'tol', 'maxIter', 'x0', 'precond', 'rank', 'landmarks', 'precondTol', 'backend', 'refine', 'resident'");
});

test('kernelSolve: the same options are checked in its defaults and per call', async () => {
  const solve = kernelSolve(F, A, 'b', { axis: 1 });
  for (const [opts, option, problem] of BAD_OPTIONS) {
    const perCall = await caught(() => solve(X, X, B, G, { alpha: 0.1, ...opts }));
    assert.instance(perCall, OptionError, JSON.stringify(opts));
    assert.is(perCall.message, `kernelSolve (per-call options): option '${option}' ${problem}`);
    const made = await caught(() => kernelSolve(F, A, 'b', { axis: 1, ...opts }));
    assert.is(made.message, `kernelSolve: option '${option}' ${problem}`);
  }
});

test('an x0 of the wrong shape is a DimensionError naming x0', async () => {
  const want = 'solve: x0 (the initial guess) has shape [3, 2] but b has [200, 1]: they must match';
  const x0 = { data: new Float32Array(6), shape: [3, 2] };
  const e1 = await caught(() => kernelSolve(F, A, 'b', { axis: 1 })(X, X, B, G, { alpha: 0.1, x0 }));
  assert.instance(e1, DimensionError);
  assert.is(e1.message, want);
  const x = source(X.data, X.shape, 'x');
  const e2 = await caught(() => Vi(x).sqdist(Vj(x)).mul(-20).exp().solve(B, { alpha: 0.1, x0 }).read());
  assert.instance(e2, DimensionError);
  assert.is(e2.message, want);
  const e3 = await caught(() => kernelSolve(F, A, 'b', { axis: 1 })(X, X, B, G, { alpha: 0.1, x0: { data: new Float32Array(5), shape: [2, 3] } }));
  assert.is(e3.message, 'x0: data has 5 values but shape [2, 3] needs 6');
});

test('NaN or Infinity in b or in the points is a DataError naming the argument', async () => {
  const solve = kernelSolve(F, A, 'b', { axis: 1 });
  const withBad = (t: { data: Float32Array; shape: number[] }, at: number, v: number) => {
    const data = Float32Array.from(t.data);
    data[at] = v;
    return { data, shape: t.shape };
  };
  const e1 = await caught(() => solve(X, X, withBad(B, 7, NaN), G, { alpha: 0.1 }));
  assert.instance(e1, DataError);
  assert.is(e1.message, "'b': non-finite value NaN at row 7, column 0; a solve needs finite data");
  const e2 = await caught(() => solve(withBad(X, 5, Infinity), X, B, G, { alpha: 0.1 }));
  assert.instance(e2, DataError);
  assert.is(e2.message, "'x': non-finite value Infinity at row 2, column 1; a solve needs finite data");
  const e3 = await caught(() => solve(X, X, B, { data: Float32Array.of(NaN), shape: [1] }, { alpha: 0.1 }));
  assert.is(e3.message, "'g': non-finite value NaN at row 0, column 0; a solve needs finite data");
  // The same through the graph: the nodes are named by their labels.
  const x = source(withBad(X, 0, -Infinity).data, X.shape, 'cloud');
  const b = source(withBad(B, 3, NaN).data, B.shape, 'rhs');
  const e4 = await caught(() => Vi(x).sqdist(Vj(x)).mul(-20).exp().solve(b, { alpha: 0.1 }).read());
  assert.instance(e4, DataError);
  assert.is(e4.message, "source 'rhs': non-finite value NaN at row 3, column 0; a solve needs finite data");
  b.set(B.data);
  const e5 = await caught(() => Vi(x).sqdist(Vj(x)).mul(-20).exp().solve(b, { alpha: 0.1 }).read());
  assert.is(e5.message, "source 'cloud': non-finite value -Infinity at row 0, column 0; a solve needs finite data");
});

test('a kernel that is not positive definite, with the Nyström preconditioner, is a SolveError with iteration and residual', async () => {
  const x = source(X.data, X.shape, 'x');
  const b = source(B.data, B.shape, 'b');
  // -exp(-1e6 d^2) is about -Id: its diagonal is -1, so the landmark search fails at once (even for alpha 2, where alpha Id + K happens to be definite).
  const negative = Vi(x).sqdist(Vj(x)).mul(-1e6).exp().neg();
  const e1 = await caught(() => negative.solve(b, { alpha: 2, rank: 16 }).read());
  assert.instance(e1, SolveError);
  assert.is((e1 as SolveError).iterations, 0);
  assert.is((e1 as SolveError).residual, 1);
  assert.match(e1.message, /the kernel's diagonal is negative \(K\(x_i, x_i\) = -1 at row 0\): the kernel is not positive definite \(found before the first iteration; relative residual 1\.000e\+0\)/);
  // Without the preconditioner, the first CG step finds the negative curvature.
  const e2 = await caught(() => negative.solve(b, { alpha: 0.5, rank: 16, precond: 'none' }).read());
  assert.instance(e2, SolveError);
  assert.is((e2 as SolveError).iterations, 1);
  assert.is((e2 as SolveError).residual, 1);
  assert.match(e2.message, /broke down at iteration 1 .*not positive definite/);
});

test.run();
