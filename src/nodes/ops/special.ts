import { DimensionError } from '../../errors.js';
import type { EmitCtx, OpDef } from '../op.js';

/*
 * Special KeOps operations (keopscore/formulas/maths/BSpline.py, SoftDTW_SqDist.py), statically
 * unrolled over the argument dimensions.
 *
 * - BSpline(knots, x, order): knots of dim K, x of dim 1, integer order >= 0 with K >= order + 2;
 *   output dim K - order - 1: the values at x of the K - order - 1 B-splines of degree `order` on
 *   the knot vector (KeOps calls the degree "order": order 0 gives the interval indicators). As in
 *   KeOps (Cox-de Boor, then Extract of the first K - order - 1 components):
 *     B[j, 0]  = 1 if knots[j] <= x < knots[j+1] else 0        (half-open: x = last knot gives 0)
 *     w[i, k]  = (x - knots[i]) / (knots[i+k] - knots[i]) if knots[i] < knots[i+k] else 0
 *     B[i, k]  = w[i, k] B[i, k-1] + (1 - w[i+1, k]) B[i+1, k-1]
 * - SoftDTW_SqDist(x, y, gamma): x of dim n, y of dim m (two 1-D series), gamma of dim 1; output
 *   dim 1: the soft dynamic time warping cost with squared differences, r[n-1, m-1] where
 *     r[0, 0] = (x0 - y0)^2, r[i, 0] = (xi - y0)^2 + r[i-1, 0], r[0, j] = (x0 - yj)^2 + r[0, j-1],
 *     r[i, j] = (xi - yj)^2 + softmin_gamma(r[i-1, j-1], r[i-1, j], r[i, j-1]),
 *     softmin_gamma(a, b, c) = mn - gamma log(exp((mn - a)/gamma) + exp((mn - b)/gamma) + exp((mn - c)/gamma)),
 *   mn = min(a, b, c) (KeOps's stable form). gamma -> 0+ gives the DTW cost.
 */

function fail(name: string, msg: string): never {
  throw new DimensionError(`${name}: ${msg}`);
}

/** Declares `expr` under a fresh name and returns the name. */
function declare(c: EmitCtx, stmts: string[], hint: string, expr: string): string {
  const n = c.fresh(hint);
  stmts.push(c.d.decl(n, expr));
  return n;
}

// ---- float64 references (plain JS, independent of the emitters) ----

/** B-spline basis by the textbook Cox-de Boor recursion, with KeOps's guards. */
function refBSpline(t: readonly number[], x: number, order: number): number[] {
  const w = (i: number, k: number): number => (t[i]! < t[i + k]! ? (x - t[i]!) / (t[i + k]! - t[i]!) : 0);
  const memo = new Map<string, number>();
  const basis = (i: number, k: number): number => {
    if (k === 0) return t[i]! <= x && x < t[i + 1]! ? 1 : 0;
    const key = `${i},${k}`;
    let v = memo.get(key);
    if (v === undefined) {
      v = w(i, k) * basis(i, k - 1) + (1 - w(i + 1, k)) * basis(i + 1, k - 1);
      memo.set(key, v);
    }
    return v;
  };
  return Array.from({ length: t.length - order - 1 }, (_, i) => basis(i, order));
}

/** softmin_gamma of some values, -gamma log sum exp(-v / gamma), stable (min shift); +inf entries drop out. */
function refSoftmin(vs: readonly number[], gamma: number): number {
  const mn = Math.min(...vs);
  let s = 0;
  for (const v of vs) s += Math.exp(-(v - mn) / gamma);
  return mn - gamma * Math.log(s);
}

/** Soft-DTW by the textbook dynamic programme on an (n+1) x (m+1) table padded with +inf (r[-1][-1] = 0). */
function refSoftDTW(x: readonly number[], y: readonly number[], gamma: number): number {
  const n = x.length;
  const m = y.length;
  const r = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(Infinity));
  r[0]![0] = 0;
  for (let i = 1; i <= n; i++) {
    for (let j = 1; j <= m; j++) {
      const d = x[i - 1]! - y[j - 1]!;
      const prev = [r[i - 1]![j - 1]!, r[i - 1]![j]!, r[i]![j - 1]!].filter((v) => v !== Infinity);
      r[i]![j] = d * d + (prev.length === 1 ? prev[0]! : refSoftmin(prev, gamma));
    }
  }
  return r[n]![m]!;
}

/** The special part of the operation table. */
export const specialOps: readonly OpDef[] = [
  {
    name: 'BSpline',
    arity: 2,
    nParams: 1,
    dim: ([k, x], [order]) => {
      if (!Number.isInteger(order) || order! < 0) fail('BSpline', `order ${order} must be an integer >= 0`);
      if (x !== 1) fail('BSpline', `the sampling point x must have dimension 1, got ${x}`);
      if (k! < order! + 2) fail('BSpline', `order ${order} needs at least ${order! + 2} knots, got a knot vector of dimension ${k}`);
      return k! - order! - 1;
    },
    emit: (c) => {
      const [t, xs] = c.args as [readonly string[], readonly string[]];
      const x = xs[0]!;
      const order = c.params[0]!;
      const zero = c.d.num(0);
      const one = c.d.num(1);
      const stmts: string[] = [];
      let b = Array.from({ length: t.length - 1 }, (_, j) =>
        declare(c, stmts, 'bs', c.d.select(`((${t[j]} <= ${x}) && (${x} < ${t[j + 1]}))`, one, zero)),
      );
      for (let k = 1; k <= order; k++) {
        // w[i, k] for i = 0 .. K-1-k, each used by B[i, k] and B[i-1, k].
        const w = Array.from({ length: t.length - k }, (_, i) =>
          declare(
            c,
            stmts,
            'bw',
            c.d.select(`(${t[i]} < ${t[i + k]})`, `((${x} - ${t[i]}) / (${t[i + k]} - ${t[i]}))`, zero),
          ),
        );
        b = Array.from({ length: b.length - 1 }, (_, i) =>
          declare(c, stmts, 'bs', `((${w[i]} * ${b[i]}) + ((${one} - ${w[i + 1]}) * ${b[i + 1]}))`),
        );
      }
      return { stmts, out: b };
    },
    ref: ([t, x], [order]) => refBSpline(t!, x![0]!, order!),
  },
  {
    name: 'SoftDTW_SqDist',
    arity: 3,
    nParams: 0,
    dim: ([, , g]) => {
      if (g !== 1) fail('SoftDTW_SqDist', `gamma must have dimension 1, got ${g}`);
      return 1;
    },
    emit: (c) => {
      const [x, y, gs] = c.args as [readonly string[], readonly string[], readonly string[]];
      const g = gs[0]!;
      const n = x.length;
      const m = y.length;
      const stmts: string[] = [];
      // r[i][j] is the name of cell (i, j); every cell is declared once and read by name.
      const r: string[][] = Array.from({ length: n }, () => new Array<string>(m));
      for (let j = 0; j < m; j++) {
        for (let i = 0; i < n; i++) {
          const d = declare(c, stmts, 'dd', `(${x[i]} - ${y[j]})`);
          const sq = `(${d} * ${d})`;
          let cell: string;
          if (i === 0 && j === 0) cell = sq;
          else if (j === 0) cell = `(${sq} + ${r[i - 1]![0]})`;
          else if (i === 0) cell = `(${sq} + ${r[0]![j - 1]})`;
          else {
            const diag = r[i - 1]![j - 1]!;
            const left = r[i - 1]![j]!;
            const up = r[i]![j - 1]!;
            const mn = declare(c, stmts, 'dmin', c.d.call('min', c.d.call('min', diag, up), left));
            const e = (v: string) => c.d.call('exp', `((${mn} - ${v}) / ${g})`);
            cell = `((${sq} + ${mn}) - (${g} * ${c.d.call('log', `(${e(diag)} + ${e(left)} + ${e(up)})`)}))`;
          }
          r[i]![j] = declare(c, stmts, 'dtw', cell);
        }
      }
      return { stmts, out: [r[n - 1]![m - 1]!] };
    },
    ref: ([x, y, g]) => [refSoftDTW(x!, y!, g![0]!)],
  },
];
