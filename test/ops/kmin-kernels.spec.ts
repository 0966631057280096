import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromMatrix } from '../../src/api/clustering.js';
import { genred } from '../../src/api/genred.js';
import { Vi, Vj } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { init, shutdown, type BackendName } from '../../src/scheduler/backends.js';
import { resetStats, stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * K-lists of more than 16 entries are heaps (src/ops/kmin.ts): every kernel variant that carries
 * them gives the K nearest in order, ties by lower index, against a float64 brute force: dense
 * with the reduced axis split (WebGPU) or over the worker pool (CPU), block-sparse, batched, and
 * fused with a sibling Sum. Coordinates on a coarse grid make exact ties common.
 */
const backends: BackendName[] = ['cpu'];
if (webgpuTestable(test, 'wide K-lists on WebGPU')) backends.push('webgpu');
test.after(async () => {
  await init({ backend: 'cpu' });
  await shutdown();
});

const K = 24;
const r = rng(2024);
/** Points on a grid of step 1/4 in [0, 2]^2: many equal distances. */
const grid = (n: number): Float32Array => Float32Array.from(uniform(r, n * 2, 0, 2).map((v) => Math.round(v * 4) / 4));

/** The K nearest of row i among the terms `js` (ascending), by (squared distance, index): values and indices, padded with (inf, -1). */
function nearest(x: Float32Array, y: Float32Array, i: number, js: readonly number[]): { d: number[]; j: number[] } {
  const d2 = (j: number): number => (x[2 * i]! - y[2 * j]!) ** 2 + (x[2 * i + 1]! - y[2 * j + 1]!) ** 2;
  const order = js.map((j) => ({ v: d2(j), j })).sort((a, b) => a.v - b.v || a.j - b.j);
  return { d: Array.from({ length: K }, (_, k) => order[k]?.v ?? Infinity), j: Array.from({ length: K }, (_, k) => order[k]?.j ?? -1) };
}

function check(values: ArrayLike<number>, indices: ArrayLike<number>, want: (i: number) => { d: number[]; j: number[] }, rows: number, what: string): void {
  for (let i = 0; i < rows; i++) {
    const w = want(i);
    assert.equal(Array.from(indices).slice(i * K, (i + 1) * K), w.j, `${what}: row ${i} indices`);
    const v = Array.from(values).slice(i * K, (i + 1) * K);
    v.forEach((g, k) => assert.ok(g === w.d[k] || Math.abs(g - w.d[k]!) <= 1e-6, `${what}: row ${i} value ${k}: ${g} vs ${w.d[k]}`));
  }
}

const range = (n: number): number[] => Array.from({ length: n }, (_, j) => j);

for (const backend of backends) {
  test(`${backend}: dense, 100 x 6000 (few rows, many terms: the reduced axis split on WebGPU, the worker pool on the CPU)`, async () => {
    const [M, N] = [100, 6000];
    const [x, y] = [grid(M), grid(N)];
    const op = genred('SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'KMin_ArgKMin', K, axis: 1, backend });
    const [v, j] = await op({ data: x, shape: [M, 2] }, { data: y, shape: [N, 2] });
    check(v.data, j.data, (i) => nearest(x, y, i, range(N)), M, 'dense');
  });

  test(`${backend}: block-sparse over cluster pairs`, async () => {
    const [M, N] = [120, 300];
    const [x, y] = [grid(M), grid(N)];
    const ri = Int32Array.of(0, 50, 50, 51, 51, 120);
    const rj = Int32Array.of(0, 10, 10, 200, 200, 300);
    const keep = Uint8Array.of(1, 0, 1, 0, 0, 0, 1, 1, 1);
    const op = genred('SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'KMin_ArgKMin', K, axis: 1, backend });
    const [v, j] = await op({ data: x, shape: [M, 2] }, { data: y, shape: [N, 2] }, { ranges: fromMatrix(ri, rj, { data: keep, shape: [3, 3] }) });
    const keptOf = (i: number): number[] => (i < 50 ? [...range(10), ...range(100).map((t) => 200 + t)] : i < 51 ? [] : range(N));
    check(v.data, j.data, (i) => nearest(x, y, i, keptOf(i)), M, 'block-sparse');
  });

  test(`${backend}: batched, 3 clouds of 40 x 90`, async () => {
    const [B, M, N] = [3, 40, 90];
    const [x, y] = [grid(B * M), grid(B * N)];
    const op = genred('SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'KMin_ArgKMin', K, axis: 1, backend });
    const [v, j] = await op({ data: x, shape: [B, M, 2] }, { data: y, shape: [B, N, 2] });
    for (let b = 0; b < B; b++) {
      const xb = x.subarray(b * M * 2, (b + 1) * M * 2);
      const yb = y.subarray(b * N * 2, (b + 1) * N * 2);
      check(v.data.subarray(b * M * K, (b + 1) * M * K), j.data.subarray(b * M * K, (b + 1) * M * K), (i) => nearest(xb, yb, i, range(N)), M, `batch ${b}`);
    }
  });

  test(`${backend}: fused with a sibling Sum in one kernel`, async () => {
    await init({ backend });
    const [M, N] = [64, 500];
    const [xs, ys] = [grid(M), grid(N)];
    const D = Vi(source(xs, [M, 2], 'x')).sqdist(Vj(source(ys, [N, 2], 'y')));
    const sum = D.sum(1);
    const [kv, ki] = D.kminArgKmin(K, 1);
    resetStats();
    const [s, v, j] = await Promise.all([sum.read(), kv!.read(), ki!.read()]);
    assert.is(stats().fusedPasses, 1, 'one fused kernel');
    check(v.data, j.data, (i) => nearest(xs, ys, i, range(N)), M, 'fused');
    for (let i = 0; i < M; i++) {
      const want = range(N).reduce((a, t) => a + (xs[2 * i]! - ys[2 * t]!) ** 2 + (xs[2 * i + 1]! - ys[2 * t + 1]!) ** 2, 0);
      assert.ok(Math.abs(s.data[i]! - want) <= 1e-5 * want, `fused sum row ${i}`);
    }
  });
}

test.run();
