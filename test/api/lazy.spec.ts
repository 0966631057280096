import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { firstValueFrom, take, toArray } from 'rxjs';
import { Pm, Vi, Vj } from '../../src/api/lazy.js';
import { batch, disposeAll } from '../../src/nodes/node.js';
import { source } from '../../src/api/source.js';
import { resetStats, stats } from '../../src/stats.js';
import { rng, uniform } from '../helpers/random.js';

const r = rng(3);
const M = 17;
const N = 29;
const xs = uniform(r, M * 3);
const ys = uniform(r, N * 3);
const bs = uniform(r, N * 2);

/** Float64 Gaussian kernel product sum_j exp(-g |x_i - y_j|^2) b_j. */
function gaussRef(x: number[], y: number[], b: number[], g: number, Dv: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length / 3; i++)
    for (let v = 0; v < Dv; v++) {
      let s = 0;
      for (let j = 0; j < y.length / 3; j++) {
        let d2 = 0;
        for (let k = 0; k < 3; k++) d2 += (x[i * 3 + k]! - y[j * 3 + k]!) ** 2;
        s += Math.exp(-g * d2) * b[j * Dv + v]!;
      }
      out.push(s);
    }
  return out;
}

function close(got: ArrayLike<number>, want: readonly number[], tol = 1e-5): void {
  assert.is(got.length, want.length);
  for (let k = 0; k < want.length; k++) {
    if (!(Math.abs(got[k]! - want[k]!) <= tol * Math.max(1, Math.abs(want[k]!)))) assert.unreachable(`[${k}] got ${got[k]} want ${want[k]}`);
  }
}

test('a Gaussian kernel product K_ij @ b equals the float64 sum', async () => {
  const x = source(Float32Array.from(xs), [M, 3]);
  const y = source(Float32Array.from(ys), [N, 3]);
  const b = source(Float32Array.from(bs), [N, 2]);
  const K = Vi(x).sub(Vj(y)).square().sum(-1).mul(Pm(0.7)).neg().exp();
  const a = await K.matmul(b).read();
  assert.equal(a.shape, [M, 2]);
  close(a.data, gaussRef(xs, ys, bs, 0.7, 2));
  const same = await K.mul(Vj(b)).sum(1).read();
  close(same.data, [...a.data]);
});

test('formulas print as KeOps prints them, variables numbered by first appearance', () => {
  const x = source(Float32Array.from(xs), [M, 3]);
  const y = source(Float32Array.from(ys), [N, 3]);
  assert.is(Vi(x).sub(Vj(y)).square().sum(-1).formulaString, 'Sum(Square((Var(0,3,0) - Var(1,3,1))))');
  assert.is(Vj(y).sub(Vi(x)).formulaString, '(Var(0,3,1) - Var(1,3,0))');
});

test('a one-index formula reduces with the missing extent 1: scalar losses and elementwise maps', async () => {
  const a = { data: Float32Array.from([1, 2, 3, 4]), shape: [2, 2] };
  const loss = await Vi(a).square().sum(-1).sum(0).read();
  assert.equal(loss.shape, [1, 1]);
  close(loss.data, [30]);
  const map = await Vi(a).mul(2).sum(1).read();
  assert.equal(map.shape, [2, 2]);
  close(map.data, [2, 4, 6, 8]);
});

test('a pair reduction is one dispatch shared by both nodes', async () => {
  const x = source(Float32Array.from(xs), [M, 3]);
  const y = source(Float32Array.from(ys), [N, 3]);
  const [vals, idx] = Vi(x).sqdist(Vj(y)).minArgmin(1);
  resetStats();
  const [v, i] = await Promise.all([vals.read(), idx.read()]);
  assert.is(stats().dispatches, 1);
  assert.ok(i.data instanceof Int32Array);
  for (let row = 0; row < M; row++) {
    let best = Infinity;
    let at = -1;
    for (let j = 0; j < N; j++) {
      let d2 = 0;
      for (let k = 0; k < 3; k++) d2 += (xs[row * 3 + k]! - ys[j * 3 + k]!) ** 2;
      if (d2 < best) [best, at] = [d2, j];
    }
    assert.is(i.data[row], at);
    close([v.data[row]!], [best]);
  }
});

test('set() recomputes dependents; read() of an unchanged graph does not recompute', async () => {
  const x = source(Float32Array.from(xs), [M, 3]);
  const s = Vi(x).sqnorm2().sum(0);
  resetStats();
  const first = await s.read();
  await s.read();
  assert.is(stats().dispatches, 1);
  const doubled = Float32Array.from(xs, (v) => 2 * v);
  x.set(doubled);
  const second = await s.read();
  close(second.data, [4 * first.data[0]!]);
  assert.is(stats().dispatches, 2);
});

test('observe() emits the current value, then once per batch of changes', async () => {
  const x = source(Float32Array.from([1, 2]), [2, 1]);
  const y = source(Float32Array.from([10]), [1, 1]);
  const s = Vi(x).add(Vj(y)).sum(1);
  const got = firstValueFrom(s.observe().pipe(take(2), toArray()));
  await new Promise((res) => setTimeout(res, 10));
  batch(() => {
    x.set(Float32Array.from([3, 4]));
    y.set(Float32Array.from([20]));
  });
  const [a, b] = await got;
  close(a!.data, [11, 12]);
  close(b!.data, [23, 24]);
});

test('user data is never mutated: sources copy, reductions only read', async () => {
  const data = Float32Array.from(xs);
  const before = Float32Array.from(data);
  const x = source(data, [M, 3]);
  await Vi(x).sub(Vj({ data, shape: [M, 3] })).sqnorm2().kmin(3, 1).read();
  x.set(data);
  data[0] = 42;
  const after = await Vi(x).sum(-1).sum(1).read();
  assert.equal(Float32Array.from(data.subarray(1)), before.subarray(1));
  close([after.data[0]!], [before[0]! + before[1]! + before[2]!]);
});

// Leave no live nodes (and no counted bytes) to the test files that run after this one.
test.after(() => disposeAll());

test.run();
