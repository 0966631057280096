import { DataError } from '../errors.js';
import type { Ranges } from '../kernel/ranges.js';
import { checkTensor, type Tensor, type TensorLike } from '../tensor.js';

/*
 * pykeops's clustering helpers for block-sparse reductions (pykeops.torch.cluster): label points
 * by grid cell, sort them so clusters are contiguous, get each cluster's range and centroid, and
 * turn a cluster-to-cluster mask into the six `ranges` arrays. Host-side, O(M log M) at most.
 */

/** The rows and dimension of a point cloud [M, D] (or [M] as D = 1), checked; `name` is the culprit. */
function cloud(x: unknown, name: string): { data: Float32Array | Float64Array | Int32Array; M: number; D: number } {
  const t = checkTensor(x, name);
  if (t.shape.length < 1 || t.shape.length > 2) throw new DataError(`${name}: expected a point cloud of shape [M, D], got [${t.shape.join(', ')}]`);
  return { data: t.data, M: t.shape[0]!, D: t.shape.length === 2 ? t.shape[1]! : 1 };
}

/** Labels as an Int32Array of M non-negative entries; `name` is the culprit. */
function labelsOf(labels: unknown, M: number, name: string): Int32Array {
  const data = labels instanceof Int32Array ? labels : checkTensor(labels, name).data;
  if (!(data instanceof Int32Array)) throw new DataError(`${name}: labels must be int32 (an Int32Array), got float32`);
  if (data.length !== M) throw new DataError(`${name}: ${data.length} labels for ${M} points`);
  for (let k = 0; k < M; k++) if (data[k]! < 0) throw new DataError(`${name}[${k}] = ${data[k]} is negative`);
  return data;
}

/**
 * pykeops's `grid_cluster`: labels points by the cubic cell (of side `size`, or one side per
 * dimension) they fall in, cells counted from the cloud's minimum. Labels are compact, `[0, C)`
 * for C non-empty cells, in lexicographic order of the cells (the first coordinate varies slowest).
 * Any dimension D (pykeops: 1 to 3).
 * @example
 * ```ts
 * import { gridCluster } from 'kernelflow';
 * const x = { data: Float32Array.of(0, 0.1, 0.9, 0.05, 0.5), shape: [5, 1] };
 * console.log(gridCluster(x, 0.2)); // Int32Array [0, 0, 2, 0, 1]
 * ```
 */
export function gridCluster(x: TensorLike, size: number | readonly number[]): Int32Array {
  const { data, M, D } = cloud(x, 'gridCluster: x');
  const sizes = typeof size === 'number' ? new Array<number>(D).fill(size) : [...size];
  if (sizes.length !== D) throw new DataError(`gridCluster: size has ${sizes.length} entries for points of dimension ${D}`);
  sizes.forEach((s, d) => {
    if (!(s > 0) || !Number.isFinite(s)) throw new DataError(`gridCluster: size${typeof size === 'number' ? '' : `[${d}]`} must be a positive number, got ${s}`);
  });
  const lo = new Array<number>(D).fill(Infinity);
  for (let i = 0; i < M; i++) {
    for (let d = 0; d < D; d++) {
      const v = data[i * D + d]!;
      if (!Number.isFinite(v)) throw new DataError(`gridCluster: x[${i}][${d}] = ${v} is not finite`);
      lo[d] = Math.min(lo[d]!, v);
    }
  }
  const cells = new Int32Array(M * D);
  for (let i = 0; i < M; i++) for (let d = 0; d < D; d++) cells[i * D + d] = Math.floor((data[i * D + d]! - lo[d]!) / sizes[d]!);
  const order = Int32Array.from({ length: M }, (_, i) => i);
  const cmp = (a: number, b: number): number => {
    for (let d = 0; d < D; d++) {
      const c = cells[a * D + d]! - cells[b * D + d]!;
      if (c !== 0) return c;
    }
    return 0;
  };
  order.sort(cmp);
  const labels = new Int32Array(M);
  let label = -1;
  for (let k = 0; k < M; k++) {
    const i = order[k]!;
    if (k === 0 || cmp(order[k - 1]!, i) !== 0) label++;
    labels[i] = label;
  }
  return labels;
}

/**
 * pykeops's `sort_clusters`: the points (one cloud, or several clouds of M rows) and labels
 * reordered so that labels ascend (stable), i.e. each cluster is contiguous, as block-sparse
 * reductions need. The third entry is the permutation: row k of the sorted data is row `perm[k]`
 * of the original (to put results back in the original order).
 * @example
 * ```ts
 * import { sortClusters } from 'kernelflow';
 * const x = { data: Float32Array.of(0, 5, 0.4, 0.3, 2), shape: [5, 1] };
 * const [xs, labels, perm] = sortClusters(x, Int32Array.of(0, 2, 0, 0, 1));
 * console.log(xs.data, labels, perm); // Float32Array [0, 0.4, 0.3, 2, 5] Int32Array [0, 0, 0, 1, 2] Int32Array [0, 2, 3, 4, 1]
 * ```
 */
export function sortClusters<X extends TensorLike | readonly TensorLike[]>(
  x: X,
  labels: Int32Array | TensorLike,
): [X extends readonly TensorLike[] ? Tensor[] : Tensor, Int32Array, Int32Array] {
  const clouds = Array.isArray(x) ? (x as readonly TensorLike[]) : [x as TensorLike];
  if (clouds.length === 0) throw new DataError('sortClusters: x is an empty list of clouds');
  const checked = clouds.map((c, k) => cloud(c, Array.isArray(x) ? `sortClusters: x[${k}]` : 'sortClusters: x'));
  const M = checked[0]!.M;
  checked.forEach((c, k) => {
    if (c.M !== M) throw new DataError(`sortClusters: x[${k}] has ${c.M} rows, x[0] has ${M}`);
  });
  const lab = labelsOf(labels, M, 'sortClusters: labels');
  // Counting sort: stable, O(M + C).
  let C = 0;
  for (let i = 0; i < M; i++) C = Math.max(C, lab[i]! + 1);
  const start = new Int32Array(C + 1);
  for (let i = 0; i < M; i++) start[lab[i]! + 1]!++;
  for (let c = 0; c < C; c++) start[c + 1]! += start[c]!;
  const perm = new Int32Array(M);
  for (let i = 0; i < M; i++) perm[start[lab[i]!]!++] = i;
  const sortedLabels = Int32Array.from(perm, (i) => lab[i]!);
  const sorted = checked.map(({ data, D }, k) => {
    const out = data instanceof Int32Array ? new Int32Array(M * D) : new Float32Array(M * D);
    for (let r = 0; r < M; r++) out.set(data.subarray(perm[r]! * D, (perm[r]! + 1) * D), r * D);
    return { data: out, shape: [...checkTensor(clouds[k], 'x').shape] };
  });
  return [(Array.isArray(x) ? sorted : sorted[0]!) as X extends readonly TensorLike[] ? Tensor[] : Tensor, sortedLabels, perm];
}

/**
 * pykeops's `cluster_ranges_centroids`: for points whose labels are sorted (`sortClusters`),
 * each cluster's range of rows `[start, end)` (shape [C, 2], C = largest label + 1), its
 * centroid (weighted by `weights`, clamped below at 1e-9 as in pykeops; shape [C, D]) and its
 * total weight (the point count without weights; shape [C]).
 * @example
 * ```ts
 * import { clusterRangesCentroids } from 'kernelflow';
 * const x = { data: Float32Array.of(0, 0.5, 1, 2, 3), shape: [5, 1] };
 * const [ranges, centroids, weights] = clusterRangesCentroids(x, Int32Array.of(0, 0, 1, 1, 1));
 * console.log(ranges.data, centroids.data, weights.data); // Int32Array [0, 2, 2, 5] Float32Array [0.25, 2] Float32Array [2, 3]
 * ```
 */
export function clusterRangesCentroids(
  x: TensorLike,
  labels: Int32Array | TensorLike,
  weights?: TensorLike,
): [Tensor<Int32Array>, Tensor<Float32Array>, Tensor<Float32Array>] {
  const { data, M, D } = cloud(x, 'clusterRangesCentroids: x');
  const lab = labelsOf(labels, M, 'clusterRangesCentroids: labels');
  let w: Float32Array | Float64Array | Int32Array | undefined;
  if (weights !== undefined) {
    w = checkTensor(weights, 'clusterRangesCentroids: weights').data;
    if (w.length !== M) throw new DataError(`clusterRangesCentroids: weights has ${w.length} values for ${M} points`);
  }
  let C = 0;
  for (let i = 0; i < M; i++) C = Math.max(C, lab[i]! + 1);
  const count = new Float64Array(C);
  const total = new Float64Array(C);
  const sums = new Float64Array(C * D);
  for (let i = 0; i < M; i++) {
    const c = lab[i]!;
    if (i > 0 && c < lab[i - 1]!) throw new DataError(`clusterRangesCentroids: labels must be sorted (sortClusters), but labels[${i}] = ${c} follows ${lab[i - 1]}`);
    const wi = w === undefined ? 1 : Math.max(1e-9, w[i]!);
    count[c]!++;
    total[c]! += wi;
    for (let d = 0; d < D; d++) sums[c * D + d]! += wi * data[i * D + d]!;
  }
  const ranges = new Int32Array(2 * C);
  let at = 0;
  for (let c = 0; c < C; c++) {
    ranges[2 * c] = at;
    at += count[c]!;
    ranges[2 * c + 1] = at;
  }
  // An empty cluster (a label no point has) has a NaN centroid, as pykeops's 0/0.
  const centroids = Float32Array.from(sums, (s, k) => s / total[Math.floor(k / D)]!);
  return [
    { data: ranges, shape: [C, 2] },
    { data: centroids, shape: [C, D] },
    { data: Float32Array.from(total), shape: [C] },
  ];
}

/**
 * pykeops's `from_matrix`: the six `ranges` arrays of a block-sparse reduction from cluster
 * ranges of i (`rangesI`, [Ci, 2]) and of j (`rangesJ`, [Cj, 2]) and a [Ci, Cj] mask `keep`
 * (non-zero: cluster k of i and cluster l of j interact). Pass the result as `ranges` to a
 * genred call or a LazyTensor reduction, over either axis.
 * @example
 * ```ts
 * import { fromMatrix } from 'kernelflow';
 * const ri = { data: Int32Array.of(2, 5, 7, 12), shape: [2, 2] };
 * const rj = { data: Int32Array.of(1, 4, 4, 9, 20, 30), shape: [3, 2] };
 * const keep = { data: Uint8Array.of(1, 1, 0, 0, 1, 0), shape: [2, 3] };
 * const [, slicesI, redrangesJ, , slicesJ, redrangesI] = fromMatrix(ri, rj, keep);
 * console.log(slicesI.data, redrangesJ.data); // Int32Array [2, 3] Int32Array [1, 4, 4, 9, 4, 9]
 * console.log(slicesJ.data, redrangesI.data); // Int32Array [1, 3, 3] Int32Array [2, 5, 2, 5, 7, 12]
 * ```
 */
export function fromMatrix(
  rangesI: TensorLike | Int32Array,
  rangesJ: TensorLike | Int32Array,
  keep: { readonly data: ArrayLike<number | boolean>; readonly shape: readonly number[] },
): Ranges & [Tensor<Int32Array>, Tensor<Int32Array>, Tensor<Int32Array>, Tensor<Int32Array>, Tensor<Int32Array>, Tensor<Int32Array>] {
  const pairsOf = (r: TensorLike | Int32Array, name: string): Int32Array => {
    const data = r instanceof Int32Array ? r : checkTensor(r, name).data;
    if (!(data instanceof Int32Array)) throw new DataError(`${name}: ranges must be int32 (an Int32Array), got float32`);
    if (data.length % 2 !== 0) throw new DataError(`${name}: [start, end) pairs need an even length, got ${data.length}`);
    return data;
  };
  const ri = pairsOf(rangesI, 'fromMatrix: rangesI');
  const rj = pairsOf(rangesJ, 'fromMatrix: rangesJ');
  const Ci = ri.length / 2;
  const Cj = rj.length / 2;
  if (typeof keep !== 'object' || keep === null || keep.shape?.length !== 2 || keep.shape[0] !== Ci || keep.shape[1] !== Cj || keep.data?.length !== Ci * Cj) {
    throw new DataError(`fromMatrix: keep must have shape [${Ci}, ${Cj}] (clusters of i by clusters of j) and as many values, got shape [${keep?.shape?.join(', ') ?? ''}]`);
  }
  const k = keep.data;
  const slicesI = new Int32Array(Ci);
  const slicesJ = new Int32Array(Cj);
  const redJ: number[] = [];
  for (let a = 0; a < Ci; a++) {
    for (let b = 0; b < Cj; b++) if (k[a * Cj + b]) redJ.push(rj[2 * b]!, rj[2 * b + 1]!);
    slicesI[a] = redJ.length / 2;
  }
  const redI: number[] = [];
  for (let b = 0; b < Cj; b++) {
    for (let a = 0; a < Ci; a++) if (k[a * Cj + b]) redI.push(ri[2 * a]!, ri[2 * a + 1]!);
    slicesJ[b] = redI.length / 2;
  }
  const pairs = (d: Int32Array): Tensor<Int32Array> => ({ data: d, shape: [d.length / 2, 2] });
  return [
    pairs(ri.slice()),
    { data: slicesI, shape: [Ci] },
    pairs(Int32Array.from(redJ)),
    pairs(rj.slice()),
    { data: slicesJ, shape: [Cj] },
    pairs(Int32Array.from(redI)),
  ];
}
