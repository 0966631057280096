/**
 * The dense toolkit on result nodes (src/api/dense.ts): values against plain loops, NumPy
 * broadcasting, axes, reactivity, gradients through it, and nested arrays.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DimensionError, grad, source, toArray, Vi, Vj, type Node, type Tensor } from '../../src/index.js';
import { disposeAll, graphState } from '../../src/nodes/node.js';
import { rng, uniform } from '../helpers/random.js';
import { settle } from '../helpers/graph.js';

test.after.each(disposeAll);

const r = rng(11);
const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol = 1e-5, what = ''): void => {
  assert.is(got.length, want.length, `${what}: length`);
  for (let k = 0; k < want.length; k++) {
    const w = want[k]!;
    assert.ok(Math.abs(got[k]! - w) <= tol * Math.max(1, Math.abs(w)), `${what}[${k}]: ${got[k]} vs ${w}`);
  }
};
const read = (n: Node): Promise<Tensor> => n.read();

test('add sub mul div broadcast like NumPy against nodes, TensorLikes and numbers', async () => {
  const av = uniform(r, 6, 1, 2);
  const bv = uniform(r, 2, 1, 2);
  const cv = uniform(r, 3, 1, 2);
  const a = source(Float32Array.from(av), [3, 2], 'a');
  const c = source(Float32Array.from(cv), [3, 1], 'c');
  const b = { data: Float32Array.from(bv), shape: [2] };
  const f32 = (v: number): number => Math.fround(v);
  const cases: [Node, (i: number, j: number) => number][] = [
    [a.add(b), (i, j) => f32(av[i * 2 + j]!) + f32(bv[j]!)],
    [a.sub(c), (i, j) => f32(av[i * 2 + j]!) - f32(cv[i]!)],
    [a.mul(2.5), (i, j) => f32(av[i * 2 + j]!) * 2.5],
    [a.div(c), (i, j) => f32(av[i * 2 + j]!) / f32(cv[i]!)],
    [c.mul(b), (i, j) => f32(cv[i]!) * f32(bv[j]!)], // [3, 1] x [2] -> [3, 2]
  ];
  for (const [node, ref] of cases) {
    const t = await read(node);
    assert.equal(t.shape, [3, 2], String(node));
    assert.ok(t.data instanceof Float32Array);
    close(t.data, [0, 1, 2].flatMap((i) => [0, 1].map((j) => ref(i, j))), 1e-6, String(node));
  }
  // Shapes that do not broadcast: a DimensionError naming both, when computed.
  const bad = a.add({ data: new Float32Array(3), shape: [3] });
  const e = await bad.read().then(
    () => undefined,
    (err: unknown) => err,
  );
  assert.ok(e instanceof DimensionError, String(e));
  assert.match(String((e as Error).message), /\[3, 2\] and \[3\] do not broadcast/);
});

test('sum mean max min norm over axes (negative, lists, keepDims, all) against plain loops', async () => {
  const v = uniform(r, 24, -2, 2).map(Math.fround);
  const x = source(Float32Array.from(v), [2, 3, 4], 'x');
  const at = (i: number, j: number, k: number): number => v[(i * 3 + j) * 4 + k]!;
  const over = (keep: (i: number, j: number, k: number) => number, n: number, fold: (xs: number[]) => number): number[] => {
    const groups: number[][] = Array.from({ length: n }, () => []);
    for (let i = 0; i < 2; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 4; k++) groups[keep(i, j, k)]!.push(at(i, j, k));
    return groups.map(fold);
  };
  const sum = (xs: number[]): number => xs.reduce((s, y) => s + y, 0);
  const folds = {
    sum,
    mean: (xs: number[]): number => sum(xs) / xs.length,
    max: (xs: number[]): number => Math.max(...xs),
    min: (xs: number[]): number => Math.min(...xs),
    norm: (xs: number[]): number => Math.sqrt(sum(xs.map((y) => y * y))),
  };
  for (const [name, fold] of Object.entries(folds) as [keyof typeof folds, (xs: number[]) => number][]) {
    const cases: [Node, number[], number[]][] = [
      [x[name](), [], over(() => 0, 1, fold)],
      [x[name](0), [3, 4], over((_i, j, k) => j * 4 + k, 12, fold)],
      [x[name](-1), [2, 3], over((i, j) => i * 3 + j, 6, fold)],
      [x[name]([0, 2]), [3], over((_i, j) => j, 3, fold)],
      [x[name](1, true), [2, 1, 4], over((i, _j, k) => i * 4 + k, 8, fold)],
    ];
    for (const [node, shape, want] of cases) {
      const t = await read(node);
      assert.equal(t.shape, shape, `${name}: ${String(node)}`);
      close(t.data, want, 1e-6, String(node));
    }
  }
  assert.not.throws(() => x.sum(3)); // the axis is checked against the rank when computed
  const e = await x.sum(3).read().catch((err: unknown) => err);
  assert.ok(e instanceof DimensionError && /axis 3 is out of range for rank 3/.test(e.message), String(e));
});

test('dense nodes are graph nodes: they recompute when a source changes, and feed formulas', async () => {
  const x = source(new Float32Array([1, 2, 3, 4]), [2, 2], 'x');
  const y = source(new Float32Array([0, 0, 1, 1, 2, 2]), [3, 2], 'y');
  const d = Vi(x).sqdist(Vj(y)).sum(1); // [2, 1]
  const centred = d.sub(d.mean()); // [2, 1] - []
  const seen: number[][] = [];
  const sub = centred.observe().subscribe((t) => seen.push([...t.data]));
  await settle();
  // d = [1+4 + 0+1 + 1+0, 9+16 + 4+9 + 1+4] = [7, 43]; mean 25
  close(seen[0]!, [-18, 18]);
  x.set(new Float32Array([0, 0, 0, 0]));
  await settle();
  // d = [0 + 2 + 8, same] = [10, 10]
  close(seen[1]!, [0, 0]);
  assert.is(seen.length, 2);
  sub.unsubscribe();
  // A dense node lifted back into a formula: its static shape gives the variable's dimension.
  const twice = x.mul(2); // [2, 2]
  assert.is(twice.dim, 2);
  assert.equal(Vi(twice).sqdist(Vj(y)).shape, [2, 3]);
  close((await Vi(twice).sqnorm2().sum(1).read()).data, [0, 0]);
  x.set(new Float32Array([1, 0, 0, 1]));
  close((await Vi(twice).sqnorm2().sum(1).read()).data, [4, 4]);
});

test("the issue's residual: alpha * a + K @ a - b and its norm, against plain loops", async () => {
  const n = 50;
  const pv = uniform(r, n * 2).map(Math.fround);
  const bv = uniform(r, n).map(Math.fround);
  const p = source(Float32Array.from(pv), [n, 2]);
  const b = source(Float32Array.from(bv), [n, 1]);
  const K = Vi(p).sqdist(Vj(p)).mul(-10).exp();
  const a = K.solve(b, { alpha: 0.1 });
  const residual = a.mul(0.1).add(K.matmul(a)).sub(b);
  const [res, av] = await Promise.all([residual.norm().read(), a.read()]);
  // The same residual by plain loops from the solution read.
  let sq = 0;
  for (let i = 0; i < n; i++) {
    let s = 0.1 * av.data[i]!;
    for (let j = 0; j < n; j++) s += Math.exp(-10 * ((pv[2 * i]! - pv[2 * j]!) ** 2 + (pv[2 * i + 1]! - pv[2 * j + 1]!) ** 2)) * av.data[j]!;
    sq += (s - bv[i]!) ** 2;
  }
  assert.equal(res.shape, []);
  assert.ok(Math.abs(res.data[0]! - Math.sqrt(sq)) <= 1e-5 * Math.hypot(...bv) + 1e-6, `${res.data[0]} vs ${Math.sqrt(sq)}`);
  assert.ok(res.data[0]! < 1e-4 * Math.hypot(...bv), 'the solve converged');
});

test('grad differentiates through dense ops (first order), against closed forms', async () => {
  const M = 4;
  const N = 5;
  const xv = uniform(r, M * 2).map(Math.fround);
  const yv = uniform(r, N * 2).map(Math.fround);
  const x = source(Float32Array.from(xv), [M, 2], 'x');
  const y = source(Float32Array.from(yv), [N, 2], 'y');
  // mean_i sum_j |x_i - y_j|^2: d/dx_i = (2/M) sum_j (x_i - y_j)
  const [g1] = grad(Vi(x).sqdist(Vj(y)).sum(1).mean(), [x]);
  const want1 = xv.map((xk, f) => (2 / M) * yv.filter((_, q) => q % 2 === f % 2).reduce((s, yk) => s + xk - yk, 0));
  assert.equal((await g1.read()).shape, [M, 2]);
  close((await g1.read()).data, want1, 1e-5, 'mean of a reduction');
  // |x|_F: x / |x|; max over rows then sum: one-hot on the largest of each column; 3 x + x*x over columns.
  const nrm = Math.hypot(...xv);
  const [g2, g3] = [grad(x.norm(), [x])[0], grad(x.max(0).sum(), [x])[0]];
  close((await g2.read()).data, xv.map((v) => v / nrm), 1e-5, 'norm');
  const colMax = [0, 1].map((c) => Math.max(...xv.filter((_, f) => f % 2 === c)));
  close((await g3.read()).data, xv.map((v, f) => (v === colMax[f % 2] ? 1 : 0)), 0, 'max');
  const [g4] = grad(x.mul(3).add(x.mul(x)).div(2).sum(), [x]);
  close((await g4.read()).data, xv.map((v) => (3 + 2 * v) / 2), 1e-5, 'polynomial');
  // With respect to both operands of a broadcast: d/dw sum(x * w) = column sums of x.
  const w = source(new Float32Array([2, -1]), [2], 'w');
  const [gx, gw] = grad(x.mul(w).sum(), [x, w]);
  close((await gx.read()).data, xv.map((_, f) => (f % 2 === 0 ? 2 : -1)), 0, 'd/dx');
  assert.equal((await gw.read()).shape, [2]);
  close((await gw.read()).data, [0, 1].map((c) => xv.filter((_, f) => f % 2 === c).reduce((s, v) => s + v, 0)), 1e-6, 'd/dw');
});

test('toArray and node.array() give nested arrays, one level per axis', async () => {
  assert.equal(toArray({ data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] }), [[1, 2, 3], [4, 5, 6]]);
  assert.equal(toArray({ data: new Int32Array([7]), shape: [] }), 7);
  assert.equal(toArray({ data: new Float32Array([1, 2]), shape: [2] }), [1, 2]);
  assert.equal(toArray({ data: new Float32Array(8).map((_, k) => k), shape: [2, 2, 2] }), [[[0, 1], [2, 3]], [[4, 5], [6, 7]]]);
  assert.equal(toArray({ data: new Float32Array(0), shape: [0, 3] }), []);
  const x = source(new Float32Array([0, 1, 3]), [3, 1]);
  assert.equal(await Vi(x).sqdist(Vj(x)).argKmin(2, 1).array(), [[0, 1], [1, 0], [2, 1]]);
  assert.equal(await x.sum().array(), 4);
  assert.throws(() => toArray({ data: new Float32Array(3), shape: [2, 2] }), /needs 4/);
});

test('bad operands and axes are errors that say what was expected', () => {
  const x = source(new Float32Array(4), [2, 2]);
  assert.throws(() => x.add('2' as unknown as number), /expected a Node, a TensorLike \{ data, shape \} or a number/);
  assert.throws(() => x.sum(0.5), /an axis must be an integer/);
  const before = graphState().nodes.size;
  x.sum([0, 1]).dispose();
  assert.is(graphState().nodes.size, before);
});

test.run();
