import { ReductionError } from '../errors.js';
import { acc, declAcc, printer, stateHooks } from './accumulators.js';
import { forEach, isWide, ix, ixAdd, ixMul, type Ix } from './loop.js';
import type { Dialect } from './op.js';
import { kminGrad } from './reduction-rule.js';
import type { ReduceCtx, ReductionDef, ReductionName, ReductionOutput } from './reductions.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, k) => k);
const kOut = (K: number, D: number, int: boolean): ReductionOutput => ({ width: K * D, int, rowShape: D === 1 ? [K] : [K, D] });

/** How an unrolled K-list inserts a value that beats its last entry (both linear in K). */
export type Insertion = 'nested' | 'select';

/** A dialect's K-lists: scalars up to `unrollMax` entries (all coordinates together), inserting by `insertion`; arrays above. */
export interface KListForm {
  readonly unrollMax: number;
  readonly insertion: Insertion;
}

/**
 * Per dialect: K-lists (all coordinates together) up to `unrollMax` entries are scalars, whose last
 * entry is the register the hot path compares with (an insertion is rare: about K ln(N/K) of N
 * terms); longer lists are max-heaps in arrays (`heapInsert`), whose root is copied to a threshold
 * scalar. Measured on ArgKMin K = 10 of SqDist, D = 3, alternated in one run (the machine's load
 * average 7-17, so the ranges are wide): V8 (960 x 3e4, one thread, 4 rows per block) nested ifs
 * 0.27-0.79 G pairs/s, selects 0.15-0.28; lavapipe (2e4 x 2e4, 4 rows per invocation) selects
 * 0.62-0.77, nested ifs 0.17-0.21, arrays with a loop 0.34-0.41: a CPU driver runs invocations as
 * SIMD lanes, and one lane's insertion runs (masked) on all of them, so the branch-free one wins;
 * the guard still pays (selects on every term, unguarded: 3.6x slower). Not taken on lavapipe: at
 * K = 20, scalars (unrollMax 32) ran 2.2x (2 rows) to 3.5x (4 rows) the arrays' 0.045 G pairs/s,
 * but the first result took 2.3-5x longer (3-7 s at load 14); arrays inserted by a select loop
 * whose index is the same on every lane ran 0.7x (K = 64) and 0.96x (K = 20) the while loop.
 */
export const KLIST: Readonly<Partial<Record<Dialect['name'], KListForm>>> = {
  js: { unrollMax: 16, insertion: 'nested' },
  wgsl: { unrollMax: 16, insertion: 'select' },
};

/** A dialect's K-list form (a dialect without an entry: scalars up to 16, nested insertion). */
export const kList = (d: Dialect): KListForm => KLIST[d.name] ?? { unrollMax: 16, insertion: 'nested' };

/** Whether a K-list of n entries (all coordinates) is an array (else scalars) in dialect d. */
export const kListWide = (d: Dialect, n: number): boolean => n > kList(d).unrollMax;

/**
 * The K-lists: values `v` and indices `i`, entry r of coordinate k at k*K + r. Scalar lists are
 * sorted ascending. Array lists are max-heaps on (value, index), sorted only by `finalize`:
 * an insertion costs log K moves instead of K (ArgKMin K = 64: see `heapInsert`), and `t` is each
 * coordinate's threshold (its root: the largest value kept).
 */
function lists(c: ReduceCtx) {
  const n = c.fDim * c.K;
  const wide = kListWide(c.d, n);
  // Coordinates are visited by a loop when both the lists and the coordinates are wide.
  const loopK = wide && isWide(c.d, c.fDim);
  return { v: acc(c, 'v', n, wide), i: acc(c, 'i', n, wide), t: acc(c, 't', c.fDim, loopK), n, wide, loopK };
}

/** Entry r of coordinate k's list (entries of coordinate k at k*K ... k*K + K - 1). */
const entry = (c: ReduceCtx, k: Ix, r: Ix): Ix => ixAdd(c.d, ixMul(c.d, k, c.K), r);

/** Statements setting each coordinate's threshold of array lists from its heap's root (none for scalar lists). */
function thresholds(c: ReduceCtx): string[] {
  const { v, t, wide, loopK } = lists(c);
  if (!wide) return [];
  return forEach(printer(c), c.fDim, (k) => [`${t(k)} = ${v(entry(c, k, 0))};`], loopK);
}

/** `(v[a], i[a]) > (value, index)` in (value, index) order: the heap's order, so ties evict the later index. */
function above(c: ReduceCtx, k: Ix, a: Ix, value: string, index: string): string {
  const { v, i } = lists(c);
  const at = entry(c, k, a);
  return `(${v(at)} > ${value} || (${v(at)} == ${value} && ${i(at)} > ${index}))`;
}

/**
 * Sifts (value, index) down coordinate k's heap from its root over entries [0, end): each step
 * moves the larger child up while it is above the value. Its locals are `<p>w`, `<p>c` (indices).
 */
function siftDown(c: ReduceCtx, k: Ix, value: string, index: string, end: Ix): string[] {
  const { v, i } = lists(c);
  const d = c.d;
  const [w, ch, stop] = [`${c.p}w`, `${c.p}c`, ix(d, end)];
  const at = (r: Ix): Ix => entry(c, k, r);
  const next = `(${ch} + ${d.int(1)})`;
  return [
    d.declIndex(w, d.int(0)),
    d.declIndex(ch, d.int(1)),
    `while (${ch} < ${stop}) {`,
    `if (${next} < ${stop} && ${above(c, k, next, v(at(ch)), i(at(ch)))}) { ${ch} = ${next}; }`,
    `if (${above(c, k, ch, value, index)}) { ${v(at(w))} = ${v(at(ch))}; ${i(at(w))} = ${i(at(ch))}; ${w} = ${ch}; ${ch} = ${ixAdd(d, ixMul(d, ch, 2), 1)}; } else { ${ch} = ${stop}; }`,
    '}',
    `${v(at(w))} = ${value}; ${i(at(w))} = ${index};`,
  ];
}

/**
 * Array lists: replaces the heap's root by (value, index) when it is below the root, and sifts
 * it down. In the j loop (`ordered`) an index is above every index kept, so "below" is `value < t`;
 * a merge inserts another block's heap in any order and compares (value, index).
 * ArgKMin of SqDist, D = 3, 1e4 x 1e4 (bench/knn.ts, load 2): K = 64 2.0x the sorted arrays with a
 * shifting insertion on the CPU, 2.1x on lavapipe; K = 32 0.97x and 1.4x.
 */
function heapInsert(c: ReduceCtx, k: Ix, value: string, index: string, ordered: boolean): string {
  const { v, i, t } = lists(c);
  const root = entry(c, k, 0);
  const below = ordered ? `${value} < ${t(k)}` : `${value} < ${t(k)} || (${value} == ${t(k)} && ${index} < ${i(root)})`;
  return [`if (${below}) {`, ...siftDown(c, k, value, index, c.K), `${t(k)} = ${v(root)};`, '}'].join(' ');
}

/** Sorts each coordinate's heap ascending in place (heapsort: the root, the largest, goes to the end of the shrinking heap). */
function heapSort(c: ReduceCtx): string[] {
  const { v, i, loopK } = lists(c);
  const d = c.d;
  const e = `${c.p}end`;
  const [sv, si] = [`${c.p}sv`, `${c.p}si`];
  return forEach(printer(c), c.fDim, (k) => {
    const at = (r: Ix): Ix => entry(c, k, r);
    return [
      `{ ${d.declIndex(e, d.int(c.K - 1))}`,
      `while (${e} > ${d.int(0)}) {`,
      // The last entry of the heap leaves it, the root takes its place at the end, then the leaver sifts down from the root.
      `${d.decl(sv, v(at(e)))} ${d.decl(si, i(at(e)))}`,
      `${v(at(e))} = ${v(at(0))}; ${i(at(e))} = ${i(at(0))};`,
      ...siftDown(c, k, sv, si, e),
      `${e} = (${e} - ${d.int(1)});`,
      '} }',
    ];
  }, loopK);
}

/**
 * Inserts (value, index) into coordinate k's K-list when it beats the last entry (scalar lists,
 * sorted) or the root (array lists, heaps: `heapInsert`; `ordered` as there); strict `<` keeps a
 * tie after the equal values already kept (lowest index first), and a NaN is never inserted.
 * `value` and `index` are re-read, so they must be names or loads.
 */
function insertSorted(c: ReduceCtx, k: Ix, value: string, index: string, ordered = true): string {
  const { v, i, wide } = lists(c);
  const d = c.d;
  const at = (r: Ix): Ix => entry(c, k, r);
  const set = (r: Ix, val: string, idx: string): string => `${v(at(r))} = ${val}; ${i(at(r))} = ${idx};`;
  if (wide) return heapInsert(c, k, value, index, ordered);
  const last = `if (${value} < ${v(at(c.K - 1))})`;
  if (kList(d).insertion === 'select') {
    // Entry r takes entry r-1 when the value beats it, else the value when it beats entry r (the
    // last entry: known). The index first: both read entry r's old value.
    const s: string[] = [];
    for (let r = c.K - 1; r >= 0; r--) {
      const here = (val: string, cur: string): string => (r === c.K - 1 ? val : d.select(`${value} < ${v(at(r))}`, val, cur));
      const pick = (prev: (r: Ix) => string, val: string): string =>
        r === 0 ? here(val, prev(at(r))) : d.select(`${value} < ${v(at(r - 1))}`, prev(at(r - 1)), here(val, prev(at(r))));
      s.push(`${i(at(r))} = ${pick(i, index)};`, `${v(at(r))} = ${pick(v, value)};`);
    }
    return `${last} { ${s.join(' ')} }`;
  }
  // Nested: descends only as deep as the value goes (K levels of constant size).
  let body = set(0, value, index);
  for (let r = 1; r < c.K; r++) body = `if (${value} < ${v(at(r - 1))}) { ${set(r, v(at(r - 1)), i(at(r - 1)))} ${body} } else { ${set(r, value, index)} }`;
  return `${last} { ${body} }`;
}

/** State hooks whose `load` also sets the thresholds of array lists from the loaded lists. */
const withThresholds = (h: ReturnType<typeof stateHooks>): ReturnType<typeof stateHooks> => ({
  ...h,
  load: (c, get) => [...h.load(c, get), ...thresholds(c)],
});

/** KMin family: per coordinate, an ascending list of the K smallest values and their indices. */
export function kmin(name: ReductionName, emit: 'value' | 'index' | 'both'): ReductionDef {
  return {
    name,
    weight: 'none',
    usesK: true,
    grad: emit === 'index' ? null : kminGrad,
    check: (_f, _g, K) => {
      if (!Number.isInteger(K) || K < 1) throw new ReductionError(`${name}: K must be a positive integer, got ${K}`);
    },
    outputs: (D, _g, K) => (emit === 'both' ? [kOut(K, D, false), kOut(K, D, true)] : [kOut(K, D, emit === 'index')]),
    // State: the K-lists of values, then of indices (array lists' thresholds are set again on load).
    ...withThresholds(
      stateHooks(
        (c) => [
          { base: 'v', n: c.fDim * c.K, wide: lists(c).wide },
          { base: 'i', n: c.fDim * c.K, wide: lists(c).wide },
        ],
        (c) => {
          const { n, wide, loopK } = lists(c);
          const inf = c.d.num(Infinity);
          return [...declAcc(c, 'v', n, inf, wide), ...declAcc(c, 'i', n, c.d.num(-1), wide), ...(wide ? declAcc(c, 't', c.fDim, inf, loopK) : [])];
        },
      ),
    ),
    combine: (c, f, _g, j) => forEach(printer(c), c.fDim, (k) => [insertSorted(c, k, f.at(k), j)], lists(c).loopK),
    // The later block's entries one by one: a sorted list in order, each after the equal values
    // already kept, is a stable merge (the earlier block's lower indices first on ties); a heap's
    // entries come in any order, so array lists compare (value, index).
    merge: (c, q) => {
      const { v, i, wide } = lists(c);
      const p = printer(c);
      const entries = (k: Ix): string[] =>
        forEach({ ...p, fresh: (h) => `${c.p}e${h}` }, c.K, (r) => [insertSorted(c, k, v(entry(c, k, r), q), i(entry(c, k, r), q), false)], wide && isWide(c.d, c.K));
      return forEach(p, c.fDim, entries, lists(c).loopK);
    },
    finalize: (c, w) => {
      const { v, i, wide } = lists(c);
      const p = printer(c);
      // Output entry r of coordinate k is at r*D + k; the list entry at k*K + r.
      const coords = (r: Ix): string[] =>
        forEach(
          p,
          c.fDim,
          (k) => {
            const out = ixAdd(c.d, ixMul(c.d, r, c.fDim), k);
            const list = entry(c, k, r);
            if (emit === 'both') return [w(0, out, v(list)), w(1, out, i(list))];
            return [w(0, out, emit === 'value' ? v(list) : i(list))];
          },
          wide && isWide(c.d, c.fDim),
        );
      return [...(wide ? heapSort(c) : []), ...forEach({ ...p, fresh: (h) => `${c.p}e${h}` }, c.K, coords, wide && isWide(c.d, c.K))];
    },
    ref: (terms, D, _g, K) => {
      const vals: number[] = [];
      const idxs: number[] = [];
      const perCoord = range(D).map((k) =>
        terms
          .map((t, j) => ({ v: t.f[k]!, j }))
          .sort((a, b) => a.v - b.v || a.j - b.j)
          .slice(0, K),
      );
      for (let r = 0; r < K; r++)
        for (let k = 0; k < D; k++) {
          vals.push(perCoord[k]![r]?.v ?? Infinity);
          idxs.push(perCoord[k]![r]?.j ?? -1);
        }
      return emit === 'both' ? [vals, idxs] : [emit === 'value' ? vals : idxs];
    },
  };
}
