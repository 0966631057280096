/**
 * What people see: LazyTensor.shape (pykeops's `S_ij.shape`), toString and console.log of
 * LazyTensors and nodes (formula in KeOps syntax, shape, dtype, backend) instead of internals.
 */
import { inspect } from 'node:util';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grad, Pm, source, Vi, Vj } from '../../src/index.js';
import { disposeAll } from '../../src/nodes/node.js';
import { init } from '../../src/scheduler/backends.js';

test.before(async () => {
  await init({ backend: 'cpu', quiet: true });
});
test.after.each(disposeAll);

test('LazyTensor.shape is [M, N] for a scalar formula and [M, N, D] for a vector one, as in pykeops', () => {
  const x = source(new Float32Array(300), [100, 3], 'x');
  const y = source(new Float32Array(600), [200, 3], 'y');
  assert.equal(Vi(x).sqdist(Vj(y)).shape, [100, 200]);
  assert.equal(Vi(x).sub(Vj(y)).shape, [100, 200, 3]);
  assert.equal(Vj(y).sub(Vi(x)).square().sum().shape, [100, 200]);
  // A missing index has extent 1 (pykeops: None -> 1).
  assert.equal(Vi(x).mul(2).shape, [100, 1, 3]);
  assert.equal(Vj(y).sqnorm2().shape, [1, 200]);
  assert.equal(Pm([1, 2]).shape, [1, 1, 2]);
  // Dense data lifted inline, and a new size after set().
  assert.equal(Vi({ data: new Float32Array(8), shape: [4, 2] }).sqdist(Vj({ data: new Float32Array(6), shape: [3, 2] })).shape, [4, 3]);
  x.set(new Float32Array(30), [10, 3]);
  assert.equal(Vi(x).sqdist(Vj(y)).shape, [10, 200]);
  // Rows from nodes: a reduction keeps the rows of its kept index, a gradient its target's.
  const a = Vi(x).sqdist(Vj(y)).sum(0); // [200, 1]
  const [dx] = grad(Vi(x).sqdist(Vj(y)).sum(1), [x]);
  assert.equal(Vi(a).mul(Vj(dx)).shape, [200, 10, 3]);
});

test('LazyTensor prints its formula in KeOps syntax and its shape', () => {
  const x = source(new Float32Array(300), [100, 3], 'x');
  const y = source(new Float32Array(600), [200, 3], 'y');
  const D = Vi(x).sub(Vj(y)).square().sum(-1);
  assert.is(D.formulaString, 'Sum(Square((Var(0,3,0) - Var(1,3,1))))');
  assert.is(String(D), 'LazyTensor Sum(Square((Var(0,3,0) - Var(1,3,1)))) shape [100, 200]');
  assert.is(inspect(D), String(D));
  assert.is(inspect({ K: D.neg().exp() }, { breakLength: Infinity }), '{ K: LazyTensor Exp(-Sum(Square((Var(0,3,0) - Var(1,3,1))))) shape [100, 200] }');
});

test('nodes print their kind, reduction, shape, dtype and backend', async () => {
  const x = source(new Float32Array(300), [100, 3], 'x');
  const y = source(new Float32Array(600), [200, 3], 'y');
  assert.is(String(x), "SourceNode #0 source 'x' [100, 3] float32".replace('#0', `#${x.id}`));
  const S = Vi(x).sqdist(Vj(y));
  const idx = S.argKmin(5, 1);
  assert.is(String(idx), `ReductionNode #${idx.id} ArgKMin(SqDist(Var(0,3,0),Var(1,3,1)), axis 1) [100, 5] int32 on cpu`);
  const [m, am] = S.minArgmin(0);
  assert.match(String(m), /Min_ArgMin\(.*axis 0\) \[200, 1\] float32 on cpu$/);
  assert.match(String(am), /\[200, 1\] int32 on cpu$/);
  const v = Vi(x).sub(Vj(y)).kmin(2, 1, { backend: 'webgpu' });
  assert.match(String(v), /\[100, 2, 3\] float32 on webgpu$/);
  const c = S.neg().exp().solve(x, { alpha: 0.1 });
  assert.match(String(c), /^SolveNode #\d+ solve\(.*\) \[100, 3\] float32 on cpu$/);
  const d = S.sum(1).mul(2).add(1);
  assert.match(String(d), /^DenseNode #\d+ add\(#\d+, 1\) \[100, 1\]$/);
  assert.is(inspect(idx), String(idx));
  assert.is(inspect([x]), `[ ${String(x)} ]`);
  idx.dispose();
  assert.match(String(idx), /\(disposed\)$/);
  // A stream source before its first frame: the declared shape.
  const frames = source((async function* () {})(), [0, 2], 'frames');
  assert.is(String(frames), `SourceNode #${frames.id} source 'frames' [0, 2]`);
});

test.run();
