import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { genred } from '../../src/api/genred.js';
import { Vi } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { LimitError } from '../../src/errors.js';
import { kernelSolve } from '../../src/api/kernel-solve.js';
import { init, shutdown, type BackendName } from '../../src/scheduler/backends.js';
import { webgpuTestable } from '../helpers/adapter.js';

/*
 * A call owns what it was given when it was called (issue 12): overwriting or detaching the
 * caller's arrays right after the call returns changes nothing; and IEEE edge cases of the
 * reductions give the same values on both backends (LogSumExp of only -inf terms is -inf, a Sum
 * with an infinite term is infinite, not NaN).
 */
const backends: BackendName[] = ['cpu'];
if (webgpuTestable(test, 'ownership and IEEE cases on WebGPU')) backends.push('webgpu');
test.after(async () => {
  await init({ backend: 'cpu' });
  await shutdown();
});

const T = (data: number[], shape: number[]) => ({ data: Float32Array.from(data), shape });

for (const backend of backends) {
  test(`${backend}: overwriting the arguments right after genred's call does not change its result`, async () => {
    const op = genred('SqDist(x,y)', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1, backend });
    const x = T([0, 1, 2], [3, 1]);
    const y = T([1, 3], [2, 1]);
    const pending = op(x, y);
    x.data.fill(100);
    y.data.fill(-100);
    // sum_j (x_i - y_j)^2 for x = 0, 1, 2 and y = 1, 3.
    assert.equal(Array.from((await pending).data), [1 + 9, 0 + 4, 1 + 1]);
  });

  test(`${backend}: detaching the argument's buffer right after the call does not change its result`, async () => {
    const op = genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1, backend });
    const x = T([1, 2], [2, 1]);
    const y = T([3, 4], [2, 1]);
    const pending = op(x, y);
    structuredClone(x.data.buffer, { transfer: [x.data.buffer] }); // detaches the caller's buffer
    assert.is(x.data.length, 0, 'detached');
    assert.equal(Array.from((await pending).data), [7, 14]);
  });

  test(`${backend}: a SharedArrayBuffer-backed argument is read like any other`, async () => {
    const shared = new Float32Array(new SharedArrayBuffer(12));
    shared.set([1, 2, 3]);
    const op = genred('x', ['x = Vi(1)'], { reduction: 'Sum', axis: 0, backend });
    assert.equal(Array.from((await op({ data: shared, shape: [3, 1] })).data), [6]);
  });

  test(`${backend}: kernelSolve owns its arguments for all its iterations`, async () => {
    const n = 30;
    const pts = Array.from({ length: n }, (_, i) => i / n);
    const b = Array.from({ length: n }, (_, i) => Math.sin(i));
    const solve = kernelSolve('Exp(-SqDist(x,y))*v', ['x = Vi(1)', 'y = Vj(1)', 'v = Vj(1)'], 'v', { axis: 1, alpha: 1, backend });
    const X = T(pts, [n, 1]);
    const B = T(b, [n, 1]);
    const pending = solve(X, X, B);
    X.data.fill(0);
    B.data.fill(0);
    const c = (await pending).data;
    // (alpha I + K) c = b with the original data, checked in float64.
    for (let i = 0; i < n; i++) {
      let acc = c[i]!;
      for (let j = 0; j < n; j++) acc += Math.exp(-((pts[i]! - pts[j]!) ** 2)) * c[j]!;
      assert.ok(Math.abs(acc - b[i]!) < 1e-4, `row ${i}: ${acc} vs ${b[i]}`);
    }
  });

  test(`${backend}: LogSumExp over only -inf terms is -inf (scipy, torch), and finite rows are unaffected`, async () => {
    const op = genred('x+y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'LogSumExp', axis: 1, backend });
    const out = await op(T([-Infinity, 0], [2, 1]), T([0, Math.log(3)], [2, 1]));
    assert.is(out.data[0], -Infinity);
    assert.ok(Math.abs(out.data[1]! - Math.log(4)) < 1e-6, String(out.data[1]));
    const weighted = genred('x+y', ['x = Vi(1)', 'y = Vj(1)', 'w = Vj(2)'], { reduction: 'LogSumExp', formula2: 'w', axis: 1, backend });
    const wout = await weighted(T([-Infinity], [1, 1]), T([0, 1], [2, 1]), T([1, 2, 3, 4], [2, 2]));
    assert.equal(Array.from(wout.data), [-Infinity, -Infinity]);
  });

  test(`${backend}: LogSumExp of only NaN terms is NaN, of +inf terms +inf (scipy, torch), weighted or not`, async () => {
    const op = genred('y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'LogSumExp', axis: 1, backend });
    const x = T([0], [1, 1]);
    assert.ok(Number.isNaN((await op(x, T([NaN, NaN, NaN], [3, 1]))).data[0]));
    assert.ok(Number.isNaN((await op(x, T([-Infinity, NaN, -Infinity], [3, 1]))).data[0]));
    assert.is((await op(x, T([Infinity, Infinity, -Infinity], [3, 1]))).data[0], Infinity);
    assert.is((await op(x, T([-Infinity, -Infinity], [2, 1]))).data[0], -Infinity);
    // Split over many blocks (merges of all -inf, all +inf and finite states) gives the same.
    const long = Array.from({ length: 5000 }, (_, j) => (j % 7 === 3 ? Infinity : -Infinity));
    assert.is((await op(x, T(long, [5000, 1]))).data[0], Infinity);
    assert.is((await op(x, T(long.map(() => -Infinity), [5000, 1]))).data[0], -Infinity);
    const weighted = genred('y', ['x = Vi(1)', 'y = Vj(1)', 'w = Vj(1)'], { reduction: 'LogSumExp', formula2: 'w', axis: 1, backend });
    assert.is((await weighted(x, T([Infinity, Infinity, 0], [3, 1]), T([1, 2, 3], [3, 1]))).data[0], Infinity);
    assert.ok(Number.isNaN((await weighted(x, T([NaN, NaN], [2, 1]), T([1, 2], [2, 1]))).data[0]));
    // Only -inf terms: log(sum 0 * w) = log 0 = -inf, whatever the weights' sum (here negative).
    assert.is((await weighted(x, T([-Infinity, -Infinity], [2, 1]), T([1, -3], [2, 1]))).data[0], -Infinity);
  });

  test(`${backend}: a Sum with an infinite term is infinite, one with +inf and -inf is NaN`, async () => {
    const op = genred('y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1, backend });
    const out = await op(T([0], [1, 1]), T([1, Infinity, 2, 3], [4, 1]));
    assert.is(out.data[0], Infinity);
    const both = await op(T([0], [1, 1]), T([1, Infinity, -Infinity], [3, 1]));
    assert.ok(Number.isNaN(both.data[0]));
  });

  test(`${backend}: x*0 and x-x of an infinite or NaN x are NaN, as IEEE says (not folded to 0)`, async () => {
    const x = T([NaN, Infinity, -Infinity, 2], [4, 1]);
    const y = T([3], [1, 1]);
    for (const f of ['x*0', '0*x', 'x-x', 'x*y-x*y', '(x-x)*y', 'Concat(x,x)-Concat(x,x)']) {
      const op = genred(f, ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1, backend });
      const out = Array.from((await op(x, y)).data);
      const w = out.length / 4;
      // The reference: the same arithmetic in float64 (NaN for the three non-finite rows, 0 for x = 2).
      assert.ok(out.slice(0, 3 * w).every(Number.isNaN), `${f}: ${out}`);
      assert.equal(out.slice(3 * w), Array(w).fill(0), `${f}: ${out}`);
    }
  });

  test(`${backend}: a source of dimension 0 is a typed error naming the dimension, not generated-code garbage`, async () => {
    await init({ backend });
    const x = source(new Float32Array(0), [5, 0], 'empty');
    try {
      await Vi(x).sqnorm2().sum(1).read();
      assert.unreachable('dimension 0 must fail');
    } catch (e) {
      assert.instance(e, LimitError);
      assert.match((e as Error).message, /dimension 0/);
    }
  });
}

test.run();
