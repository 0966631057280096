import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendError, batch, genred, init, KernelflowError, kernelSolve, scope, source, toJSON, fromJSON, Vi, Vj } from '../../src/index.js';
import { OptionError } from '../../src/errors.js';
import { disposeAll } from '../../src/nodes/node.js';
import { getBackend } from '../../src/scheduler/backends.js';

/*
 * Every public entry checks its options up front (issue 12): an unknown key is an OptionError
 * naming it (with the closest known key), pykeops's `dim` is `axis`, and an unknown backend name
 * is a BackendError, wherever it is given.
 */

test.after.each(() => disposeAll());

/** The error `fn` throws (or rejects with). */
async function caught(fn: () => unknown): Promise<unknown> {
  try {
    await fn();
  } catch (e) {
    return e;
  }
  assert.unreachable('expected an error');
  return undefined;
}

async function optionError(fn: () => unknown, option: string, message: string): Promise<void> {
  const e = await caught(fn);
  assert.instance(e, OptionError);
  assert.instance(e, KernelflowError);
  assert.is((e as OptionError).code, 'OPTION');
  assert.is((e as OptionError).option, option);
  assert.is((e as Error).message, message);
}

const pts = (n: number, d = 2) => ({ data: Float32Array.from({ length: n * d }, (_, k) => (k * 0.37) % 1), shape: [n, d] });
const F = 'SqDist(x,y)';
const A = ['x = Vi(2)', 'y = Vj(2)'];

test('genred: an unknown key is an OptionError naming it, with the closest key and the list', async () => {
  await optionError(
    () => genred(F, A, { reduction: 'Sum', axsi: 1 } as never),
    'axsi',
    "genred: unknown option 'axsi' (did you mean 'axis'?); the options are 'reduction', 'axis', 'dim', 'K', 'formula2', 'backend'",
  );
  await optionError(() => genred(F, A, { reduction: 'Sum', axis: 2 } as never), 'axis', "genred: option 'axis' must be one of 0, 1, got 2");
  await optionError(() => genred(F, A, 'Sum' as never), '', "genred: options must be an object, got 'Sum'");
});

test("genred: pykeops's dim is axis (the same values); axis and dim that disagree are an OptionError", async () => {
  const x = pts(5);
  const y = pts(7);
  const byAxis = await genred(F, A, { reduction: 'Min', axis: 1 })(x, y);
  const byDim = await genred(F, A, { reduction: 'Min', dim: 1 })(x, y);
  assert.equal(byDim, byAxis);
  assert.equal((byDim as { shape: number[] }).shape, [5, 1]);
  await optionError(
    () => genred(F, A, { reduction: 'Min', axis: 1, dim: 0 }),
    'dim',
    "genred: 'axis' (1) and its pykeops name 'dim' (0) disagree",
  );
});

test('LazyTensor reductions: unknown keys are OptionErrors; dim and axis say the axis is an argument', async () => {
  const x = source(pts(4).data, [4, 2], 'x');
  const D = Vi(x).sqdist(Vj(x));
  await optionError(() => D.sum(1, { alhpa: 0.1 } as never), 'alhpa', "Sum: unknown option 'alhpa'; the options are 'backend', 'ranges'");
  await optionError(
    () => D.min(1, { dim: 1 } as never),
    'dim',
    "Min: unknown option 'dim' (the axis is the reduction's first argument here, as in x.sum(1)); the options are 'backend', 'ranges'",
  );
  await optionError(() => D.kminArgKmin(2, 1, { bakend: 'cpu' } as never), 'bakend', "KMin_ArgKMin: unknown option 'bakend' (did you mean 'backend'?); the options are 'backend', 'ranges'");
  // LogSumExp's weight is an option of LogSumExp only.
  assert.equal((await D.neg().logsumexp(1, { weight: Vj(x).sqnorm2() }).read()).shape, [4, 1]);
  await optionError(() => D.sumSoftmaxWeight(Vj(x), 1, { weight: Vj(x) } as never), 'weight', "SumSoftMaxWeight: unknown option 'weight'; the options are 'backend', 'ranges'");
});

test("an unknown backend name is a BackendError wherever it is given (it used to run on the CPU)", async () => {
  const x = source(pts(4).data, [4, 2], 'x');
  const cases: [string, () => unknown][] = [
    ['genred', () => genred(F, A, { reduction: 'Sum', axis: 1, backend: 'cuda' as never })],
    ['a LazyTensor reduction', () => Vi(x).sqdist(Vj(x)).sum(1, { backend: 'cuda' as never })],
    ['LazyTensor.solve', () => Vi(x).sqdist(Vj(x)).neg().exp().solve(x, { alpha: 1, backend: 'cuda' as never })],
    ['kernelSolve', () => kernelSolve('Exp(-SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)'], 'b', { axis: 1, backend: 'cuda' as never })],
    [
      'kernelSolve per call',
      () => kernelSolve('Exp(-SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)'], 'b', { axis: 1 })(pts(4), pts(4), pts(4), { backend: 'cuda' as never }),
    ],
    ['fromJSON', () => fromJSON(toJSON([Vi(x).sqnorm2().sum(1)]), { backend: 'cuda' as never })],
    ['init', () => init({ backend: 'cuda' as never })],
    ['getBackend', () => getBackend('cuda' as never)],
  ];
  for (const [where, fn] of cases) {
    const e = await caught(fn);
    assert.instance(e, BackendError, where);
    assert.match((e as Error).message, /unknown backend 'cuda' \(use 'auto', 'webgpu', 'cpu', 'cluster'\)/, where);
  }
});

test('kernelSolve: unknown keys in its defaults or per-call options are OptionErrors; dim is axis', async () => {
  const f = 'Exp(-SqDist(x,y))*b';
  const al = ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)'];
  await optionError(
    () => kernelSolve(f, al, 'b', { axis: 1, alhpa: 0.1 } as never),
    'alhpa',
    "kernelSolve: unknown option 'alhpa' (did you mean 'alpha'?); the options are 'axis', 'dim', 'alpha', 'tol', 'maxIter', 'x0', 'precond', 'rank', 'landmarks', 'precondTol', 'backend', 'refine', 'resident', 'onProgress'",
  );
  const solve = kernelSolve(f, al, 'b', { axis: 1 });
  await optionError(
    () => solve(pts(6), pts(6), pts(6), { alpha: 1, axis: 1 } as never),
    'axis',
    "kernelSolve (per-call options): unknown option 'axis'; the options are 'alpha', 'tol', 'maxIter', 'x0', 'precond', 'rank', 'landmarks', 'precondTol', 'backend', 'refine', 'resident', 'onProgress'",
  );
  const byDim = await kernelSolve(f, al, 'b', { dim: 1 })(pts(6), pts(6), pts(6), { alpha: 1 });
  const byAxis = await solve(pts(6), pts(6), pts(6), { alpha: 1 });
  assert.equal(byDim, byAxis);
});

test('init, toJSON and fromJSON check their options', async () => {
  await optionError(() => init({ backnd: 'cpu' } as never), 'backnd', "init: unknown option 'backnd' (did you mean 'backend'?); the options are 'backend', 'kernelCacheSize', 'quiet', 'servers', 'cluster', 'float64', 'gpuProfile', 'autotune', 'kernelShape', 'cpuKernels', 'fuse'");
  await optionError(() => init({ cpuKernels: 'simd' } as never), 'cpuKernels', "init: option 'cpuKernels' must be one of 'auto', 'wasm', 'js', got 'simd'");
  const x = source(pts(2).data, [2, 2], 'x');
  const n = Vi(x).sqnorm2().sum(1);
  await optionError(() => toJSON([n], { data: 'hex' as never }), 'data', "toJSON: option 'data' must be one of 'base64', 'array', got 'hex'");
  await optionError(() => fromJSON(toJSON([n]), { backedn: 'cpu' } as never), 'backedn', "fromJSON: unknown option 'backedn' (did you mean 'backend'?); the options are 'backend'");
});

test('scope and batch name a non-function argument in a typed error (not a TypeError from inside)', async () => {
  for (const [name, call] of [['scope', () => scope(5 as never)], ['batch', () => batch('x' as never)]] as const) {
    const e = await caught(call);
    assert.instance(e, KernelflowError, name);
    assert.match((e as Error).message, new RegExp(`^${name}: expected a function, got`));
  }
});

test.run();
