import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Subject } from 'rxjs';
import { Pm, Vi, Vj } from '../../src/api/lazy.js';
import { disposeAll } from '../../src/nodes/node.js';
import { source } from '../../src/api/source.js';
import type { Tensor, TensorLike } from '../../src/tensor.js';
import { resetStats, stats } from '../../src/stats.js';
import { settle } from '../helpers/graph.js';
import { rng, uniform } from '../helpers/random.js';

const r = rng(21);

test.after.each(() => disposeAll());

/** Float64 sum_j exp(-|x_i - y_j|^2 / 2) and the nearest j of each i. */
function brute(x: Float32Array, y: Float32Array): { sums: number[]; nearest: number[] } {
  const M = x.length / 3;
  const N = y.length / 3;
  const sums: number[] = [];
  const nearest: number[] = [];
  for (let i = 0; i < M; i++) {
    let s = 0;
    let best = Infinity;
    let at = -1;
    for (let j = 0; j < N; j++) {
      let d2 = 0;
      for (let k = 0; k < 3; k++) d2 += (x[i * 3 + k]! - y[j * 3 + k]!) ** 2;
      s += Math.exp(-d2 / 2);
      if (d2 < best) [best, at] = [d2, j];
    }
    sums.push(s);
    nearest.push(at);
  }
  return { sums, nearest };
}

test('point clouds of a different size every frame: correct values, nothing compiled after the first frame', async () => {
  const frames = new Subject<TensorLike>();
  const x = source(frames, [0, 3], 'moving');
  const yData = Float32Array.from(uniform(r, 40 * 3));
  const y = source(yData, [40, 3], 'reference');
  const sums = Vi(x).sqdist(Vj(y)).mul(Pm(-0.5)).exp().sum(1);
  const nearest = Vi(x).sqdist(Vj(y)).argKmin(1, 1);
  const got: [Tensor, Tensor][] = [];
  let last: Tensor | undefined;
  sums.observe().subscribe((t) => (last = t));
  nearest.observe().subscribe((t) => got.push([last!, t]));
  const sizes = [7, 31, 1, 64, 12];
  const sent: Float32Array[] = [];
  for (const [k, n] of sizes.entries()) {
    const data = Float32Array.from(uniform(r, n * 3));
    sent.push(data);
    frames.next({ data, shape: [n, 3] });
    await settle();
    if (k === 0) resetStats();
  }
  assert.is(stats().pipelinesCompiled, 0, 'the kernels of the first frame serve every size');
  assert.is(stats().dispatches, sizes.length - 1, 'the two reductions run as one fused kernel per frame');
  assert.is(got.length, sizes.length);
  got.forEach(([s, idx], k) => {
    const want = brute(sent[k]!, yData);
    assert.equal(s.shape, [sizes[k], 1]);
    assert.equal(idx.shape, [sizes[k], 1]);
    assert.equal([...idx.data], want.nearest);
    want.sums.forEach((v, i) => assert.ok(Math.abs(s.data[i]! - v) <= 1e-5 * Math.max(1, v), `frame ${k} row ${i}`));
  });
});

test('set(data, shape) with a new number of points, on a plain source', async () => {
  const x = source(Float32Array.from(uniform(r, 5 * 3)), [5, 3], 'x');
  const s = Vi(x).sqnorm2().sum(0);
  await s.read();
  resetStats();
  const data = Float32Array.from(uniform(r, 9 * 3));
  x.set(data, [9, 3]);
  const t = await s.read();
  let want = 0;
  for (const v of data) want += v * v;
  assert.ok(Math.abs(t.data[0]! - want) < 1e-5 * want);
  assert.is(stats().pipelinesCompiled, 0);
});

test.run();
