/**
 * Block-sparse against dense: a Gaussian sum a_i = sum_j exp(-|x_i - y_j|^2 / (2 sigma^2)) b_j
 * over a clustered cloud (n points near the unit sphere, sigma small), computed densely and with
 * `ranges` (gridCluster, sortClusters, clusterRangesCentroids, fromMatrix keeping the cluster pairs
 * that may hold a pair closer than `cut` sigma: centroid distance minus both cluster radii), side
 * by side in one run, alternated, on each backend. Accuracy: the max relative error of both against
 * a float64 reference of `sample` random rows (the reference is the full dense sum in float64).
 *
 * Usage: npx tsx bench/block-sparse.ts [--n 100000] [--sigma 0.01] [--cell 0.1] [--cut 6]
 *   [--backends cpu,webgpu] [--reps 2] [--sample 200] [--out block-sparse]
 * Writes bench/results/<out>.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { rng } from '../test/helpers/random.js';
import { clusterRangesCentroids, fromMatrix, genred, gridCluster, init, shutdown, sortClusters, type Ranges, type Tensor, type TensorLike } from '../src/index.js';

const flag = (name: string, def: string): string => {
  const k = process.argv.indexOf(`--${name}`);
  return k > 0 ? process.argv[k + 1]! : def;
};
const n = Number(flag('n', '100000'));
const sigma = Number(flag('sigma', '0.01'));
const cellSize = Number(flag('cell', '0.1'));
const cut = Number(flag('cut', '6'));
const backends = flag('backends', 'cpu,webgpu').split(',') as ('cpu' | 'webgpu')[];
const reps = Number(flag('reps', '2'));
const sampleRows = Number(flag('sample', '200'));

const r = rng(7);
const gauss = (): number => Math.sqrt(-2 * Math.log(1 - r())) * Math.cos(2 * Math.PI * r());

/** n points near the unit sphere (radial noise sigma / 5), in random order. */
function sphere(count: number): TensorLike {
  const data = new Float32Array(count * 3);
  for (let i = 0; i < count; i++) {
    const [a, b, c] = [gauss(), gauss(), gauss()];
    const s = (1 + (sigma / 5) * gauss()) / Math.hypot(a, b, c);
    data.set([a * s, b * s, c * s], 3 * i);
  }
  return { data, shape: [count, 3] };
}

/** Sorted cloud, its ranges and per-cluster centroid and radius (max distance of a point to the centroid). */
function clusters(x: TensorLike) {
  const [xs, lab] = sortClusters(x, gridCluster(x, cellSize));
  const [ranges, centroids] = clusterRangesCentroids(xs, lab);
  const C = ranges.shape[0]!;
  const radius = new Float64Array(C);
  for (let c = 0; c < C; c++) {
    for (let i = ranges.data[2 * c]!; i < ranges.data[2 * c + 1]!; i++) {
      const d = Math.hypot(xs.data[3 * i]! - centroids.data[3 * c]!, xs.data[3 * i + 1]! - centroids.data[3 * c + 1]!, xs.data[3 * i + 2]! - centroids.data[3 * c + 2]!);
      radius[c] = Math.max(radius[c]!, d);
    }
  }
  return { xs, ranges, centroids, radius, C };
}

/** Ranges keeping the cluster pairs that may hold a pair closer than cut * sigma. */
function blockRanges(a: ReturnType<typeof clusters>, b: ReturnType<typeof clusters>): { ranges: Ranges; kept: number; pairs: number } {
  const keep = new Uint8Array(a.C * b.C);
  let kept = 0;
  let pairs = 0;
  for (let p = 0; p < a.C; p++) {
    for (let q = 0; q < b.C; q++) {
      const d = Math.hypot(a.centroids.data[3 * p]! - b.centroids.data[3 * q]!, a.centroids.data[3 * p + 1]! - b.centroids.data[3 * q + 1]!, a.centroids.data[3 * p + 2]! - b.centroids.data[3 * q + 2]!);
      if (d - a.radius[p]! - b.radius[q]! < cut * sigma) {
        keep[p * b.C + q] = 1;
        kept++;
        pairs += (a.ranges.data[2 * p + 1]! - a.ranges.data[2 * p]!) * (b.ranges.data[2 * q + 1]! - b.ranges.data[2 * q]!);
      }
    }
  }
  return { ranges: fromMatrix(a.ranges, b.ranges, { data: keep, shape: [a.C, b.C] }), kept, pairs };
}

const seconds = async <T>(f: () => Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const v = await f();
  return [v, (performance.now() - t0) / 1000];
};
const round = (v: number, digits = 3): number => Number(v.toPrecision(digits));

async function main(): Promise<void> {
  const g = 1 / (2 * sigma * sigma);
  const x = sphere(n);
  const y = sphere(n);
  const [prep, prepSec] = await seconds(async () => {
    const a = clusters(x);
    const b = clusters(y);
    return { a, b, ...blockRanges(a, b) };
  });
  const { a, b } = prep;
  const w = { data: Float32Array.from({ length: n }, () => 0.5 + r()), shape: [n, 1] };
  // b is read in y's sorted order: permute the weights alike (sortClusters of [y, w]).
  const [[ys, ws]] = sortClusters([y, w], gridCluster(y, cellSize));
  const xs = a.xs;
  const gp = { data: Float32Array.of(g), shape: [1] };
  // Float64 reference rows: the full dense sum.
  const rows = Array.from({ length: sampleRows }, () => Math.floor(r() * n));
  const ref = rows.map((i) => {
    let s = 0;
    for (let j = 0; j < n; j++) {
      const d = (xs.data[3 * i]! - ys!.data[3 * j]!) ** 2 + (xs.data[3 * i + 1]! - ys!.data[3 * j + 1]!) ** 2 + (xs.data[3 * i + 2]! - ys!.data[3 * j + 2]!) ** 2;
      s += Math.exp(-g * d) * ws!.data[j]!;
    }
    return s;
  });
  const maxRel = (t: Tensor): number => Math.max(...rows.map((i, k) => Math.abs(t.data[i]! - ref[k]!) / Math.abs(ref[k]!)));
  console.log(`n = ${n}, sigma = ${sigma}, cells ${cellSize}: ${a.C} x ${b.C} clusters, ${prep.kept} cluster pairs kept (${round((100 * prep.kept) / (a.C * b.C))}%), ${prep.pairs} point pairs (${round((100 * prep.pairs) / (n * n))}% of dense); clustering ${round(prepSec)} s`);

  const out: Record<string, unknown>[] = [];
  for (const backend of backends) {
    await init({ backend, quiet: true });
    const op = genred('Exp(-g*SqDist(x,y))*b', ['x = Vi(3)', 'y = Vj(3)', 'b = Vj(1)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1, backend });
    // Warm-up on small clouds compiles both kernels (the dense and the ranged one) outside the timings.
    const sx = clusters(sphere(2000));
    const sy = clusters(sphere(2000));
    const small = blockRanges(sx, sy);
    const sw = { data: new Float32Array(2000).fill(1), shape: [2000, 1] };
    await op(sx.xs, sy.xs, sw, gp);
    await op(sx.xs, sy.xs, sw, gp, { ranges: small.ranges });
    const dense: number[] = [];
    const sparse: number[] = [];
    let errDense = NaN;
    let errSparse = NaN;
    // Alternated: sparse, dense, sparse, ... (dense `reps - 1` times, at least once).
    for (let k = 0; k < reps; k++) {
      const [s, ts] = await seconds(() => op(xs, ys!, ws!, gp, { ranges: prep.ranges }));
      sparse.push(ts);
      errSparse = maxRel(s);
      if (k < Math.max(1, reps - 1)) {
        const [d, td] = await seconds(() => op(xs, ys!, ws!, gp));
        dense.push(td);
        errDense = maxRel(d);
      }
      console.log(`${backend}: sparse ${round(ts)} s${dense.length > k ? `, dense ${round(dense[k]!)} s` : ''}; load ${loadavg().map((l) => l.toFixed(1)).join(' ')}`);
    }
    const best = (v: number[]): number => Math.min(...v);
    out.push({
      backend: backend === 'webgpu' ? 'webgpu (lavapipe)' : backend,
      'M = N': n,
      sigma,
      'dense s': round(best(dense)),
      'block-sparse s': round(best(sparse)),
      'speedup': round(best(dense) / best(sparse)),
      'speedup incl. clustering': round(best(dense) / (best(sparse) + prepSec)),
      'max rel err dense': round(errDense, 2),
      'max rel err sparse': round(errSparse, 2),
      'dense runs s': dense.map((t) => round(t)),
      'sparse runs s': sparse.map((t) => round(t)),
      'load avg (1 min)': round(loadavg()[0]!, 2),
    });
  }
  await shutdown();
  const settings = {
    points: 'n points near the unit sphere (radial noise sigma/5), x and y independent',
    kernel: 'exp(-|x-y|^2 / (2 sigma^2)) b_j, b in [0.5, 1.5)',
    cell: cellSize,
    'keep rule': `centroid distance - both radii < ${cut} sigma`,
    clusters: `${a.C} x ${b.C}`,
    'cluster pairs kept': prep.kept,
    'point pairs computed (% of dense)': round((100 * prep.pairs) / (n * n)),
    'clustering s (gridCluster, sortClusters, clusterRangesCentroids, radii, keep matrix, fromMatrix)': round(prepSec),
    'reference rows (float64, full dense sum)': sampleRows,
  };
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };
  console.table(out);
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(new URL(`./results/${flag('out', 'block-sparse')}.json`, import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, ...settings, rows: out }, null, 2));
}

void main();
