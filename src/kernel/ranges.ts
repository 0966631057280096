import { DataError } from '../errors.js';
import type { KernelPlan } from './plan.js';

/**
 * One integer array of a block-sparse `ranges` argument: an `Int32Array` (pairs flattened for a
 * list of ranges), or a tensor of int32 data: shape `[n, 2]` for a list of `[start, end)` ranges,
 * `[n]` for slices.
 * @example
 * ```ts
 * import type { RangeArray } from 'kernelflow';
 * const clusters: RangeArray = { data: Int32Array.of(0, 3, 3, 5), shape: [2, 2] }; // rows [0, 3) and [3, 5)
 * const slices: RangeArray = Int32Array.of(1, 2);
 * console.log(clusters.shape, slices.length); // [2, 2] 2
 * ```
 */
export type RangeArray = Int32Array | { readonly data: Int32Array; readonly shape: readonly number[] };

/**
 * pykeops's `ranges` argument of a block-sparse reduction, the six arrays
 * `[ranges_i, slices_i, redranges_j, ranges_j, slices_j, redranges_i]` (what `fromMatrix` returns).
 * A reduction over j (axis 1) reads the first three: i-block k (rows `ranges_i[k]`) is reduced
 * over the j-ranges `redranges_j[slices_i[k-1] .. slices_i[k])` (from 0 for k = 0). A reduction
 * over i (axis 0) reads the last three the same way with i and j swapped. A kept row in no block,
 * or in a block without j-ranges, gets the reduction's value over nothing (0 for Sum, +inf for Min, ...).
 * @example
 * ```ts
 * import { genred, type Ranges } from 'kernelflow';
 * const x = { data: Float32Array.of(0, 1, 10, 11), shape: [4, 1] };
 * const ranges: Ranges = [
 *   Int32Array.of(0, 2, 2, 4), Int32Array.of(1, 2), Int32Array.of(0, 2, 2, 4),   // over j: block k of i meets block k of j
 *   Int32Array.of(0, 2, 2, 4), Int32Array.of(1, 2), Int32Array.of(0, 2, 2, 4),   // over i: the same, transposed
 * ];
 * const op = genred('Exp(-SqDist(x,y))', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 });
 * console.log((await op(x, x, { ranges })).data); // ~[1.37, 1.37, 1.37, 1.37]: the far block is skipped
 * ```
 */
export type Ranges = readonly [RangeArray, RangeArray, RangeArray, RangeArray, RangeArray, RangeArray];

/** pykeops's names of the six arrays, for messages. */
export const RANGE_NAMES = ['ranges_i', 'slices_i', 'redranges_j', 'ranges_j', 'slices_j', 'redranges_i'] as const;

/**
 * Ranges as a kernel reads them, for a reduction over j of M kept rows and N reduced terms:
 * `seg` holds, four int32 per segment, `[rowStart, rowEnd, s0, s1)`: segments cover the rows
 * [0, M) in order (gaps between blocks are segments with s0 = s1), and rows of a segment reduce
 * over the j-ranges s0 ... s1 - 1 of `red` (two int32 per range, `[start, end)`).
 */
export interface KernelRanges {
  readonly seg: Int32Array;
  readonly red: Int32Array;
  /** The (i, j) pairs the ranges cover (work estimate). */
  readonly pairs: number;
}

const describe = (v: unknown): string =>
  v === null ? 'null' : ArrayBuffer.isView(v) ? (v as object).constructor.name : Array.isArray(v) ? 'an array' : typeof v;

/** The int32 data of one array, checked to be a list of ranges (`pairs`) or of slices; `name` is the culprit. */
function intData(a: unknown, name: string, pairs: boolean): Int32Array {
  let data: unknown = a;
  let shape: readonly number[] | undefined;
  if (!(a instanceof Int32Array)) {
    if (typeof a !== 'object' || a === null || !('data' in a)) throw new DataError(`${name}: expected an Int32Array or { data: Int32Array, shape }, got ${describe(a)}`);
    data = (a as { data: unknown }).data;
    shape = (a as { shape?: readonly number[] }).shape;
  }
  if (!(data instanceof Int32Array)) throw new DataError(`${name}: indices must be an Int32Array, got ${describe(data)}`);
  if (shape !== undefined) {
    const ok = pairs ? shape.length === 2 && shape[1] === 2 && shape[0]! * 2 === data.length : shape.length === 1 && shape[0] === data.length;
    if (!ok) throw new DataError(`${name}: expected shape ${pairs ? '[n, 2]' : '[n]'} for ${data.length} values, got [${shape.join(', ')}]`);
  } else if (pairs && data.length % 2 !== 0) {
    throw new DataError(`${name}: a list of [start, end) pairs needs an even length, got ${data.length}`);
  }
  return data;
}

/** The [start, end) pairs of a list of ranges, each within [0, n]; `increasing`: also disjoint and in order. */
function checkPairs(r: Int32Array, name: string, n: number, increasing: boolean): void {
  let prev = 0;
  for (let k = 0; k < r.length; k += 2) {
    const a = r[k]!;
    const b = r[k + 1]!;
    if (a < 0 || b > n) throw new DataError(`${name}[${k / 2}] = [${a}, ${b}) is out of bounds [0, ${n}]`);
    if (a > b) throw new DataError(`${name}[${k / 2}] = [${a}, ${b}) ends before it starts`);
    if (increasing && a < prev) throw new DataError(`${name}[${k / 2}] = [${a}, ${b}) starts before the previous range ends (${prev}): blocks must be disjoint and increasing`);
    prev = b;
  }
}

/**
 * Checks a `ranges` argument for a reduction over `axis` of M kept rows and N reduced terms (M, N
 * as the kernel sees them: for axis 0, the arguments' N and M) and turns its three relevant
 * arrays into segments (see KernelRanges). A malformed array is a DataError naming it.
 */
export function kernelRanges(ranges: unknown, axis: 0 | 1, M: number, N: number): KernelRanges {
  if (!Array.isArray(ranges) || ranges.length !== 6) {
    throw new DataError(`ranges: expected the six arrays [${RANGE_NAMES.join(', ')}] (as fromMatrix returns), got ${Array.isArray(ranges) ? `${ranges.length} arrays` : describe(ranges)}`);
  }
  const o = axis === 1 ? 0 : 3;
  const names = [RANGE_NAMES[o]!, RANGE_NAMES[o + 1]!, RANGE_NAMES[o + 2]!].map((n, k) => `ranges[${o + k}] (${n})`);
  const blocks = intData(ranges[o], names[0]!, true);
  const slices = intData(ranges[o + 1], names[1]!, false);
  const red = intData(ranges[o + 2], names[2]!, true);
  checkPairs(blocks, names[0]!, M, true);
  checkPairs(red, names[2]!, N, false);
  const nb = blocks.length / 2;
  if (slices.length !== nb) throw new DataError(`${names[1]}: has ${slices.length} entries, one per block of ${names[0]} (${nb}) expected`);
  let prev = 0;
  for (let k = 0; k < nb; k++) {
    const s = slices[k]!;
    if (s < prev) throw new DataError(`${names[1]}[${k}] = ${s} is less than the previous slice end ${prev}: slices must be non-decreasing`);
    if (s > red.length / 2) throw new DataError(`${names[1]}[${k}] = ${s} is out of bounds: ${names[2]} has ${red.length / 2} ranges`);
    prev = s;
  }
  const seg: number[] = [];
  let row = 0;
  let pairs = 0;
  for (let k = 0; k < nb; k++) {
    const a = blocks[2 * k]!;
    const b = blocks[2 * k + 1]!;
    const s0 = k === 0 ? 0 : slices[k - 1]!;
    const s1 = slices[k]!;
    if (a > row) seg.push(row, a, 0, 0);
    if (b > a) seg.push(a, b, s0, s1);
    for (let s = s0; s < s1; s++) pairs += (b - a) * (red[2 * s + 1]! - red[2 * s]!);
    row = Math.max(row, b);
  }
  if (M > row) seg.push(row, M, 0, 0);
  return { seg: Int32Array.from(seg), red: red.slice(), pairs };
}

/** The same ranges for the other axis: pykeops's `swap_axes`. */
export function swapRanges(r: Ranges): Ranges {
  return [r[3], r[4], r[5], r[0], r[1], r[2]];
}

/** The block-sparse variant of a plan: same formula and reduction, its own compiled kernel (here, not in plan.ts: backends import this module without the op table). */
export function rangedPlan(plan: KernelPlan): KernelPlan {
  if (plan.ranged === true) return plan;
  let key: string | undefined;
  return {
    get key(): string {
      return (key ??= `${plan.key}|ranged`);
    },
    f: plan.f,
    g: plan.g,
    reduction: plan.reduction,
    K: plan.K,
    vars: plan.vars,
    outputs: plan.outputs,
    parts: plan.parts,
    dtype: plan.dtype,
    ranged: true,
  };
}
