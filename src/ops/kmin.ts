import { ReductionError } from '../errors.js';
import { acc, declAcc, printer, stateHooks } from './accumulators.js';
import { forEach, isWide, ixAdd, ixMul, type Ix } from './loop.js';
import type { Dialect } from './op.js';
import { kminGrad } from './reduction-rule.js';
import type { ReduceCtx, ReductionDef, ReductionName, ReductionOutput } from './reductions.js';

const range = (n: number): number[] => Array.from({ length: n }, (_, k) => k);
const kOut = (K: number, D: number, int: boolean): ReductionOutput => ({ width: K * D, int, rowShape: D === 1 ? [K] : [K, D] });

/**
 * K-lists (all coordinates together) longer than this are arrays with a loop insertion; shorter
 * ones are scalars with K nested ifs. Measured on ArgKMin of SqDist, D = 3, 2 cores: lavapipe
 * (1e4 x 1e4) loop vs nested 0.25-0.35 vs 0.22-0.30 G pairs/s at K = 4, 0.17-0.22 vs 0.10-0.11 at
 * K = 10, and a faster first result; V8 (5e3 x 5e3) nested is faster, 0.25 vs 0.19 at K = 4,
 * 0.18-0.27 vs 0.17 at K = 10.
 */
const LIST_UNROLL_MAX: Readonly<Record<Dialect['name'], number>> = { js: 16, wgsl: 3, wasm: 16 };

/**
 * The K-lists: values `v` and indices `i`, entry r of coordinate k at k*K + r. Short lists are
 * scalars and insert by K nested ifs; long ones are arrays and insert by a loop that shifts larger
 * entries up (no nesting by K: WGSL allows 127 nested blocks).
 */
function lists(c: ReduceCtx): { v: (k: Ix, p?: string) => string; i: (k: Ix, p?: string) => string; n: number; wide: boolean } {
  const n = c.fDim * c.K;
  const wide = n > LIST_UNROLL_MAX[c.d.name];
  return { v: acc(c, 'v', n, wide), i: acc(c, 'i', n, wide), n, wide };
}

/**
 * Inserts (value, index) into coordinate k's ascending K-list, from the back; strict `<` puts a tie
 * after the equal values already kept (lowest index first). `value` and `index` are re-read, so
 * they must be names or loads.
 */
function insertSorted(c: ReduceCtx, k: Ix, value: string, index: string): string {
  const { v, i, wide } = lists(c);
  const d = c.d;
  const at = (r: Ix): Ix => ixAdd(d, ixMul(d, k, c.K), r);
  const last = `if (${value} < ${v(at(c.K - 1))})`;
  if (wide) {
    const w = `${c.p}w`;
    const below = `(${w} - ${d.int(1)})`;
    return [
      `${last} {`,
      d.declIndex(w, d.int(c.K - 1)),
      `while (${w} > ${d.int(0)} && ${value} < ${v(at(below))}) { ${v(at(w))} = ${v(at(below))}; ${i(at(w))} = ${i(at(below))}; ${w} = ${below}; }`,
      `${v(at(w))} = ${value}; ${i(at(w))} = ${index};`,
      '}',
    ].join(' ');
  }
  let body = `${v(at(0))} = ${value}; ${i(at(0))} = ${index};`;
  for (let r = 1; r < c.K; r++) {
    body = `if (${value} < ${v(at(r - 1))}) { ${v(at(r))} = ${v(at(r - 1))}; ${i(at(r))} = ${i(at(r - 1))}; ${body} } else { ${v(at(r))} = ${value}; ${i(at(r))} = ${index}; }`;
  }
  return `${last} { ${body} }`;
}

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
    // State: the K-lists of values, then of indices.
    ...stateHooks(
      (c) => [
        { base: 'v', n: c.fDim * c.K, wide: lists(c).wide },
        { base: 'i', n: c.fDim * c.K, wide: lists(c).wide },
      ],
      (c) => [...declAcc(c, 'v', c.fDim * c.K, c.d.num(Infinity), lists(c).wide), ...declAcc(c, 'i', c.fDim * c.K, c.d.num(-1), lists(c).wide)],
    ),
    combine: (c, f, _g, j) => forEach(printer(c), c.fDim, (k) => [insertSorted(c, k, f.at(k), j)], lists(c).wide && isWide(c.d, c.fDim)),
    // Inserting the later block's sorted list entry by entry, each after the equal values already
    // kept, is a stable merge: on ties the earlier block's (lower) indices come first.
    merge: (c, q) => {
      const { v, i, wide } = lists(c);
      const at = (k: Ix, r: Ix): Ix => ixAdd(c.d, ixMul(c.d, k, c.K), r);
      const p = printer(c);
      const entries = (k: Ix): string[] =>
        forEach({ ...p, fresh: (h) => `${c.p}e${h}` }, c.K, (r) => [insertSorted(c, k, v(at(k, r), q), i(at(k, r), q))], wide && isWide(c.d, c.K));
      return forEach(p, c.fDim, entries, wide && isWide(c.d, c.fDim));
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
            const list = ixAdd(c.d, ixMul(c.d, k, c.K), r);
            if (emit === 'both') return [w(0, out, v(list)), w(1, out, i(list))];
            return [w(0, out, emit === 'value' ? v(list) : i(list))];
          },
          wide && isWide(c.d, c.fDim),
        );
      return forEach({ ...p, fresh: (h) => `${c.p}e${h}` }, c.K, coords, wide && isWide(c.d, c.K));
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
