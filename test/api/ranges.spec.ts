import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shutdown } from '../../src/scheduler/backends.js';
import { genred } from '../../src/api/genred.js';
import { Vi, Vj } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { grad } from '../../src/grad/grad.js';
import { clusterRangesCentroids, fromMatrix, gridCluster, sortClusters } from '../../src/api/clustering.js';
import { BackendError, DataError, KernelflowError } from '../../src/errors.js';
import { toJSON } from '../../src/api/pipeline.js';
import { ClusterBackend } from '../../src/cluster/backend.js';
import { makePlan } from '../../src/kernel/plan.js';
import { kernelRanges } from '../../src/kernel/ranges.js';
import { mkVar } from '../../src/graph/formula.js';
import type { Ranges } from '../../src/kernel/ranges.js';
import { rng, uniform } from '../helpers/random.js';
import { useTestBackend } from '../helpers/backend.js';

/*
 * Block-sparse reductions (pykeops's `ranges`): every result equals the float64 brute force over
 * the kept pairs only (the dense reduction of the masked formula), over both axes; rows without
 * any range get the reduction's value over nothing; malformed ranges are DataErrors naming the array.
 */

test.before(useTestBackend);
test.after(shutdown);

const r = rng(1414);
const f32 = (xs: readonly number[]): number[] => Array.from(Float32Array.from(xs));

/** A clustered cloud in 2-D: points around `k` centres, sorted by grid cell, with the cells' ranges and centroids. */
const CENTRES = uniform(r, 2 * 4, -3, 3);
function clustered(n: number, cell: number, centres = CENTRES) {
  const k = centres.length / 2;
  const raw = new Array<number>(n * 2);
  for (let i = 0; i < n; i++) {
    const c = Math.floor(r() * k);
    raw[2 * i] = Math.fround(centres[2 * c]! + 0.4 * (r() - 0.5));
    raw[2 * i + 1] = Math.fround(centres[2 * c + 1]! + 0.4 * (r() - 0.5));
  }
  const x = { data: Float32Array.from(raw), shape: [n, 2] };
  const labels = gridCluster(x, cell);
  const [xs, lab] = sortClusters(x, labels);
  const [ranges, centroids] = clusterRangesCentroids(xs, lab);
  return { x: xs, values: Array.from(xs.data), lab, ranges, centroids };
}

const M = 53;
const N = 41;
const X = clustered(M, 0.5);
const Y = clustered(N, 0.5);
const B = f32(uniform(r, N * 2, 0.5, 1.5));
const BI = f32(uniform(r, M * 2, 0.5, 1.5));
const Ci = X.ranges.shape[0]!;
const Cj = Y.ranges.shape[0]!;
/** Clusters interact when their centroids are within 0.6 (a deterministic mask), and cluster 0 of i with none. */
const KEEP = Uint8Array.from({ length: Ci * Cj }, (_, t) => {
  const a = Math.floor(t / Cj);
  const b = t % Cj;
  const d = Math.hypot(X.centroids.data[2 * a]! - Y.centroids.data[2 * b]!, X.centroids.data[2 * a + 1]! - Y.centroids.data[2 * b + 1]!);
  return a !== 0 && d < 0.6 ? 1 : 0;
});
const RANGES = fromMatrix(X.ranges, Y.ranges, { data: KEEP, shape: [Ci, Cj] });
const kept = (i: number, j: number): boolean => KEEP[X.lab[i]! * Cj + Y.lab[j]!] === 1;
const sq = (i: number, j: number): number => (X.values[2 * i]! - Y.values[2 * j]!) ** 2 + (X.values[2 * i + 1]! - Y.values[2 * j + 1]!) ** 2;
const G = 2;

/** Max relative error of got against want, over want's largest magnitude. */
function relErr(got: ArrayLike<number>, want: readonly number[]): number {
  assert.is(got.length, want.length, 'length');
  let err = 0;
  let scale = 1e-30;
  want.forEach((w, k) => {
    if (w === got[k]) return; // equal infinities
    err = Math.max(err, Math.abs(got[k]! - w));
    scale = Math.max(scale, Math.abs(w));
  });
  return err / scale;
}

test('the mask is sparse but not trivial: some pairs kept, most not, an i-cluster with none', () => {
  let n = 0;
  for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) n += kept(i, j) ? 1 : 0;
  assert.ok(n > 0.05 * M * N && n < 0.7 * M * N, `${n} of ${M * N} pairs kept`);
  assert.ok(Ci >= 3 && Cj >= 3, `${Ci} x ${Cj} clusters`);
});

test('genred Sum over j (axis 1): the Gaussian sum over kept pairs only, float64 brute force', async () => {
  const op = genred('Exp(-g*SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1 });
  const got = await op(X.x, Y.x, { data: Float32Array.from(B), shape: [N, 2] }, { data: Float32Array.of(G), shape: [1] }, { ranges: RANGES });
  const want: number[] = [];
  for (let i = 0; i < M; i++) {
    const acc = [0, 0];
    for (let j = 0; j < N; j++) if (kept(i, j)) for (let k = 0; k < 2; k++) acc[k]! += Math.exp(-G * sq(i, j)) * B[2 * j + k]!;
    want.push(...acc);
  }
  assert.equal(got.shape, [M, 2]);
  assert.ok(relErr(got.data, want) < 1e-5, `rel err ${relErr(got.data, want)}`);
  // Rows of i-cluster 0 interact with nothing: exactly 0, the sum over nothing.
  for (let i = X.ranges.data[0]!; i < X.ranges.data[1]!; i++) assert.is(got.data[2 * i], 0);
});

test('genred Sum over i (axis 0): reads the transposed arrays (ranges_j, slices_j, redranges_i)', async () => {
  const op = genred('Exp(-g*SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vi(2)', 'g = Pm(1)'], { reduction: 'Sum', axis: 0 });
  const got = await op(X.x, Y.x, { data: Float32Array.from(BI), shape: [M, 2] }, { data: Float32Array.of(G), shape: [1] }, { ranges: RANGES });
  const want: number[] = [];
  for (let j = 0; j < N; j++) {
    const acc = [0, 0];
    for (let i = 0; i < M; i++) if (kept(i, j)) for (let k = 0; k < 2; k++) acc[k]! += Math.exp(-G * sq(i, j)) * BI[2 * i + k]!;
    want.push(...acc);
  }
  assert.equal(got.shape, [N, 2]);
  assert.ok(relErr(got.data, want) < 1e-5, `rel err ${relErr(got.data, want)}`);
});

for (const axis of [0, 1] as const) {
  test(`LazyTensor over axis ${axis}: LogSumExp, Min_ArgMin and ArgKMin over kept pairs; rows with no pair get -inf, +inf`, async () => {
    const x = source(X.x.data, [M, 2]);
    const y = source(Y.x.data, [N, 2]);
    const D = Vi(x).sqdist(Vj(y));
    const lse = await D.neg().logsumexp(axis, { ranges: RANGES }).read();
    const [mn, am] = D.minArgmin(axis, { ranges: RANGES });
    const [minv, argv] = [await mn.read(), await am.read()];
    const knn = await D.argKmin(2, axis, { ranges: RANGES }).read();
    const rows = axis === 1 ? M : N;
    const others = axis === 1 ? N : M;
    const pair = (a: number, b: number): [number, number] => (axis === 1 ? [a, b] : [b, a]);
    for (let a = 0; a < rows; a++) {
      const ds: [number, number][] = [];
      for (let b = 0; b < others; b++) if (kept(...pair(a, b))) ds.push([sq(...pair(a, b)), b]);
      if (ds.length === 0) {
        assert.is(lse.data[a], -Infinity, `lse of row ${a} without pairs`);
        assert.is(minv.data[a], Infinity, `min of row ${a} without pairs`);
        continue;
      }
      const m = Math.max(...ds.map(([d]) => -d));
      const wantLse = m + Math.log(ds.reduce((s, [d]) => s + Math.exp(-d - m), 0));
      assert.ok(Math.abs(lse.data[a]! - wantLse) < 1e-5 * Math.max(1, Math.abs(wantLse)), `lse row ${a}: ${lse.data[a]} vs ${wantLse}`);
      ds.sort((p, q) => p[0] - q[0]);
      assert.ok(Math.abs(minv.data[a]! - ds[0]![0]) < 1e-5 * Math.max(1, ds[0]![0]), `min row ${a}`);
      // Indices: the argmin is a kept partner at the minimal distance (float32 ties aside).
      const j = argv.data[a]!;
      assert.ok(kept(...pair(a, j)), `argmin of row ${a} (${j}) is a kept partner`);
      assert.ok(Math.abs(sq(...pair(a, j)) - ds[0]![0]) < 1e-5 * Math.max(1, ds[0]![0]), `argmin row ${a}`);
      if (ds.length >= 2) {
        for (let k = 0; k < 2; k++) {
          const jk = knn.data[2 * a + k]!;
          assert.ok(kept(...pair(a, jk)) && Math.abs(sq(...pair(a, jk)) - ds[k]![0]) < 1e-5 * Math.max(1, ds[k]![0]), `argKmin row ${a}, k ${k}`);
        }
      }
    }
  });
}

test('rows outside every block of ranges_i, and a block whose slice is empty, get the neutral value; overlapping j-ranges count twice', async () => {
  // Rows 0-1: no block; block [2, 4) meets j in [0, 2) and [1, 3) (j = 1 twice); block [4, 5) meets nothing; row 5: no block.
  const ranges: Ranges = [Int32Array.of(2, 4, 4, 5), Int32Array.of(2, 2), Int32Array.of(0, 2, 1, 3), Int32Array.of(0, 3), Int32Array.of(0), new Int32Array(0)];
  const x = { data: Float32Array.of(1, 2, 3, 4, 5, 6), shape: [6, 1] };
  const y = { data: Float32Array.of(10, 20, 30), shape: [3, 1] };
  const sum = genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 });
  assert.equal(Array.from((await sum(x, y, { ranges })).data), [0, 0, 3 * 80, 4 * 80, 0, 0]);
  const mx = genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Max', axis: 1 });
  assert.equal(Array.from((await mx(x, y, { ranges })).data), [-Infinity, -Infinity, 90, 120, -Infinity, -Infinity]);
  // Over i: the j-block [0, 3) has an empty slice, so every j gets 0.
  const sum0 = genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 0 });
  assert.equal(Array.from((await sum0(x, y, { ranges })).data), [0, 0, 0]);
});

test('2000 x 3000 points: many-row clusters (several workgroup tiles each on WebGPU, worker threads on the CPU), both axes', async () => {
  const cent = uniform(r, 2 * 6, -3, 3);
  const A = clustered(2000, 0.7, cent);
  const Bc = clustered(3000, 0.7, cent);
  const [ca, cb] = [A.ranges.shape[0]!, Bc.ranges.shape[0]!];
  const keep = Uint8Array.from({ length: ca * cb }, (_, t) => {
    const [a, b] = [Math.floor(t / cb), t % cb];
    return Math.hypot(A.centroids.data[2 * a]! - Bc.centroids.data[2 * b]!, A.centroids.data[2 * a + 1]! - Bc.centroids.data[2 * b + 1]!) < 0.8 ? 1 : 0;
  });
  const ranges = fromMatrix(A.ranges, Bc.ranges, { data: keep, shape: [ca, cb] });
  const largest = Math.max(...Array.from({ length: ca }, (_, c) => A.ranges.data[2 * c + 1]! - A.ranges.data[2 * c]!));
  assert.ok(largest > 256, `largest i-cluster ${largest} rows`);
  const d2 = (i: number, j: number): number => (A.values[2 * i]! - Bc.values[2 * j]!) ** 2 + (A.values[2 * i + 1]! - Bc.values[2 * j + 1]!) ** 2;
  const isKept = (i: number, j: number): boolean => keep[A.lab[i]! * cb + Bc.lab[j]!] === 1;
  const op1 = genred('Exp(-SqDist(x,y))', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'Sum', axis: 1 });
  const op0 = genred('Exp(-SqDist(x,y))', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'Sum', axis: 0 });
  const [s1, s0] = [await op1(A.x, Bc.x, { ranges }), await op0(A.x, Bc.x, { ranges })];
  const w1 = new Array<number>(2000).fill(0);
  const w0 = new Array<number>(3000).fill(0);
  let pairs = 0;
  for (let i = 0; i < 2000; i++) {
    for (let j = 0; j < 3000; j++) {
      if (!isKept(i, j)) continue;
      const e = Math.exp(-d2(i, j));
      w1[i]! += e;
      w0[j]! += e;
      pairs++;
    }
  }
  assert.ok(pairs > 2 ** 18 && pairs < 0.5 * 2000 * 3000, `${pairs} pairs kept`);
  assert.ok(relErr(s1.data, w1) < 1e-5, `axis 1 rel err ${relErr(s1.data, w1)}`);
  assert.ok(relErr(s0.data, w0) < 1e-5, `axis 0 rel err ${relErr(s0.data, w0)}`);
});

test('a ranged reduction equals the dense one when the ranges keep every pair', async () => {
  const all = fromMatrix(X.ranges, Y.ranges, { data: new Uint8Array(Ci * Cj).fill(1), shape: [Ci, Cj] });
  const op = genred('Exp(-SqDist(x,y))', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'Sum', axis: 1 });
  const dense = await op(X.x, Y.x);
  const sparse = await op(X.x, Y.x, { ranges: all });
  assert.ok(relErr(sparse.data, Array.from(dense.data)) < 1e-6);
});

test('the gradient of a ranged Gaussian sum, in x (over j) and in y (over i), is the masked closed form', async () => {
  const x = source(X.x.data, [M, 2]);
  const y = source(Y.x.data, [N, 2]);
  const a = Vi(x).sqdist(Vj(y)).mul(-G).exp().sum(1, { ranges: RANGES });
  const [dx, dy] = grad(a, [x, y]);
  const [gx, gy] = [await dx.read(), await dy.read()];
  const wx = new Array<number>(M * 2).fill(0);
  const wy = new Array<number>(N * 2).fill(0);
  for (let i = 0; i < M; i++) {
    for (let j = 0; j < N; j++) {
      if (!kept(i, j)) continue;
      const e = Math.exp(-G * sq(i, j));
      for (let k = 0; k < 2; k++) {
        const d = X.values[2 * i + k]! - Y.values[2 * j + k]!;
        wx[2 * i + k]! += -2 * G * d * e;
        wy[2 * j + k]! += 2 * G * d * e;
      }
    }
  }
  assert.ok(relErr(gx.data, wx) < 1e-4, `d/dx rel err ${relErr(gx.data, wx)}`);
  assert.ok(relErr(gy.data, wy) < 1e-4, `d/dy rel err ${relErr(gy.data, wy)}`);
});

/** Runs a Sum over j of 4 x 3 points with these ranges and returns the error thrown. */
async function rangesError(ranges: unknown): Promise<Error> {
  const op = genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 });
  const x = { data: new Float32Array(4), shape: [4, 1] };
  const y = { data: new Float32Array(3), shape: [3, 1] };
  try {
    await op(x, y, { ranges } as { ranges: Ranges });
  } catch (e) {
    return e as Error;
  }
  throw new Error('no error');
}

const ok = [Int32Array.of(0, 2, 2, 4), Int32Array.of(1, 2), Int32Array.of(0, 3, 0, 1), Int32Array.of(0, 3), Int32Array.of(2), Int32Array.of(0, 2, 2, 4)];
const BAD: readonly [string, unknown, RegExp][] = [
  ['five arrays', ok.slice(0, 5), /six arrays/],
  ['float ranges_i', [Float32Array.of(0, 2, 2, 4), ...ok.slice(1)], /ranges\[0\] \(ranges_i\).*Int32Array/],
  ['ranges_i past M', [Int32Array.of(0, 2, 2, 5), ...ok.slice(1)], /ranges_i\)\[1\] = \[2, 5\) is out of bounds \[0, 4\]/],
  ['ranges_i not increasing', [Int32Array.of(2, 4, 0, 2), ...ok.slice(1)], /ranges_i\)\[1\].*disjoint and increasing/],
  ['a range ending before it starts', [Int32Array.of(0, 2, 3, 2), ...ok.slice(1)], /ranges_i\)\[1\] = \[3, 2\) ends before it starts/],
  ['a shape not [n, 2]', [{ data: Int32Array.of(0, 2, 2, 4), shape: [4] }, ...ok.slice(1)], /ranges_i\): expected shape \[n, 2\]/],
  ['slices of the wrong length', [ok[0], Int32Array.of(2), ...ok.slice(2)], /slices_i\): has 1 entries, one per block/],
  ['decreasing slices', [ok[0], Int32Array.of(2, 1), ...ok.slice(2)], /slices_i\)\[1\] = 1 is less than/],
  ['slices past redranges_j', [ok[0], Int32Array.of(1, 3), ...ok.slice(2)], /slices_i\)\[1\] = 3 is out of bounds/],
  ['redranges_j past N', [ok[0], ok[1], Int32Array.of(0, 4, 0, 1), ...ok.slice(3)], /redranges_j\)\[0\] = \[0, 4\) is out of bounds \[0, 3\]/],
];
for (const [what, ranges, message] of BAD) {
  test(`malformed ranges (${what}) are a DataError naming the array`, async () => {
    const e = await rangesError(ranges);
    assert.instance(e, DataError);
    assert.match(e.message, message);
  });
}

test('nothing runs a block-sparse reduction densely: toJSON refuses it, the cluster backend refuses it', async () => {
  const x = source(X.x.data, [M, 2]);
  const y = source(Y.x.data, [N, 2]);
  const a = Vi(x).sqdist(Vj(y)).sum(1, { ranges: RANGES });
  assert.throws(() => toJSON([a]), (e: unknown) => e instanceof KernelflowError && /block-sparse/.test((e as Error).message));
  const plan = makePlan(mkVar(0, 1, 0), { reduction: 'Sum', axis: 1 });
  const cluster = new ClusterBackend('nats://127.0.0.1:1');
  const err = await cluster.run(plan, [new Float32Array(M)], M, N, kernelRanges(RANGES, 1, M, N)).catch((e: unknown) => e);
  assert.instance(err, BackendError);
  assert.match((err as Error).message, /does not run block-sparse reductions/);
});

test('gridCluster: same label exactly when same cell, labels compact and in lexicographic cell order', () => {
  const n = 200;
  const pts = f32(uniform(r, n * 3, -2, 2));
  const lab = gridCluster({ data: Float32Array.from(pts), shape: [n, 3] }, [0.7, 1.1, 0.5]);
  const sizes = [0.7, 1.1, 0.5];
  const lo = [0, 1, 2].map((d) => Math.min(...pts.filter((_, t) => t % 3 === d)));
  const cell = (i: number): number[] => [0, 1, 2].map((d) => Math.floor((pts[3 * i + d]! - lo[d]!) / sizes[d]!));
  const keys = [...new Set(Array.from({ length: n }, (_, i) => cell(i).join(',')))].map((k) => k.split(',').map(Number));
  keys.sort((a, b) => a[0]! - b[0]! || a[1]! - b[1]! || a[2]! - b[2]!);
  const rank = new Map(keys.map((k, c) => [k.join(','), c]));
  for (let i = 0; i < n; i++) assert.is(lab[i], rank.get(cell(i).join(',')), `label of point ${i}`);
  assert.throws(() => gridCluster({ data: Float32Array.from(pts), shape: [n, 3] }, [1, 1]), (e: unknown) => e instanceof DataError && /size has 2 entries/.test((e as Error).message));
  assert.throws(() => gridCluster({ data: Float32Array.from(pts), shape: [n, 3] }, 0), (e: unknown) => e instanceof DataError && /positive/.test((e as Error).message));
});

test('sortClusters (stable, with the permutation) and clusterRangesCentroids (weighted means in float64)', () => {
  const n = 60;
  const pts = f32(uniform(r, n * 2));
  const labels = Int32Array.from({ length: n }, () => Math.floor(r() * 5));
  const w = f32(uniform(r, n, 0.1, 2));
  const [[xs, ws], lab, perm] = sortClusters([{ data: Float32Array.from(pts), shape: [n, 2] }, { data: Float32Array.from(w), shape: [n] }], labels);
  for (let k = 0; k < n; k++) {
    assert.is(lab[k], labels[perm[k]!]);
    assert.is(xs!.data[2 * k], pts[2 * perm[k]!]);
    assert.is(ws!.data[k], w[perm[k]!]);
    if (k > 0) assert.ok(lab[k - 1]! < lab[k]! || (lab[k - 1] === lab[k] && perm[k - 1]! < perm[k]!), 'stable ascending');
  }
  const [ranges, centroids, totals] = clusterRangesCentroids(xs!, lab, ws!);
  for (let c = 0; c < 5; c++) {
    const members = Array.from({ length: n }, (_, i) => i).filter((i) => labels[i] === c);
    assert.is(ranges.data[2 * c + 1]! - ranges.data[2 * c]!, members.length);
    const tw = members.reduce((s, i) => s + w[i]!, 0);
    assert.ok(Math.abs(totals.data[c]! - tw) < 1e-5 * tw);
    for (let d = 0; d < 2; d++) {
      const want = members.reduce((s, i) => s + w[i]! * pts[2 * i + d]!, 0) / tw;
      assert.ok(Math.abs(centroids.data[2 * c + d]! - want) < 1e-5, `centroid ${c}, ${d}`);
    }
  }
  assert.throws(() => clusterRangesCentroids(xs!, labels), (e: unknown) => e instanceof DataError && /must be sorted/.test((e as Error).message));
});

test('fromMatrix: each block reads exactly the kept clusters, in both directions (pykeops example)', () => {
  const [ri, si, rj, rrj, sj, rri] = fromMatrix(
    { data: Int32Array.of(2, 5, 7, 12), shape: [2, 2] },
    Int32Array.of(1, 4, 4, 9, 20, 30),
    { data: [true, true, false, false, true, false], shape: [2, 3] },
  );
  assert.equal(Array.from(ri.data), [2, 5, 7, 12]);
  assert.equal(Array.from(si.data), [2, 3]);
  assert.equal(Array.from(rj.data), [1, 4, 4, 9, 4, 9]);
  assert.equal(Array.from(rrj.data), [1, 4, 4, 9, 20, 30]);
  assert.equal(Array.from(sj.data), [1, 3, 3]);
  assert.equal(Array.from(rri.data), [2, 5, 2, 5, 7, 12]);
  assert.throws(() => fromMatrix(Int32Array.of(0, 1), Int32Array.of(0, 1), { data: [1, 1], shape: [2, 1] }), (e: unknown) => e instanceof DataError && /keep must have shape \[1, 1\]/.test((e as Error).message));
});

test.run();
