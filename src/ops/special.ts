import { DimensionError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import { op } from './build.js';
import type { EmitCtx, OpDef } from './op.js';
import { add, call, cst, div, mul, sub } from './diff.js';

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
 * - GradSoftDTW_SqDist(x, y, gamma): dim n + m + 1, the gradient of SoftDTW_SqDist with respect
 *   to x, then y, then gamma (keopscore's op of that name has no gamma part). The backward pass
 *   of Cuturi & Blondel: e[i, j] = dR/dr[i, j] summed over the successors of (i, j), each weighted
 *   by exp((r' - d' - r[i, j]) / gamma); dR/dx_i = sum_j 2 (x_i - y_j) e[i, j], dR/dy_j the
 *   negated sum over i; dR/dgamma is carried forward through the recursion,
 *     dr[i, j] = (s - sum_k p_k v_k) / gamma + sum_k p_k dv_k,   s = softmin, p_k its weights.
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

/** Soft-DTW and its gradient [dx..., dy..., dgamma] by the textbook recursions, in float64. */
function refSoftDTWGrad(x: readonly number[], y: readonly number[], gamma: number): number[] {
  const n = x.length;
  const m = y.length;
  const d = (i: number, j: number): number => (x[i]! - y[j]!) ** 2;
  const r = Array.from({ length: n }, () => new Array<number>(m).fill(0));
  const dr = Array.from({ length: n }, () => new Array<number>(m).fill(0));
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < m; j++) {
      const preds: [number, number][] = [];
      if (i > 0 && j > 0) preds.push([r[i - 1]![j - 1]!, dr[i - 1]![j - 1]!]);
      if (i > 0) preds.push([r[i - 1]![j]!, dr[i - 1]![j]!]);
      if (j > 0) preds.push([r[i]![j - 1]!, dr[i]![j - 1]!]);
      if (preds.length === 0) r[i]![j] = d(i, j);
      else if (preds.length === 1) [r[i]![j], dr[i]![j]] = [d(i, j) + preds[0]![0], preds[0]![1]];
      else {
        const soft = refSoftmin(preds.map((p) => p[0]), gamma);
        const p = preds.map(([v]) => Math.exp((soft - v) / gamma));
        r[i]![j] = d(i, j) + soft;
        dr[i]![j] = (soft - preds.reduce((a, [v], k) => a + p[k]! * v, 0)) / gamma + preds.reduce((a, [, dv], k) => a + p[k]! * dv, 0);
      }
    }
  }
  const e = Array.from({ length: n }, () => new Array<number>(m).fill(0));
  const gx = new Array<number>(n).fill(0);
  const gy = new Array<number>(m).fill(0);
  for (let i = n - 1; i >= 0; i--) {
    for (let j = m - 1; j >= 0; j--) {
      let v = i === n - 1 && j === m - 1 ? 1 : 0;
      // A successor with a single predecessor (first row or column) passes its cotangent on unchanged.
      const w = (a: number, b: number): number => (a === 0 || b === 0 ? 1 : Math.exp((r[a]![b]! - d(a, b) - r[i]![j]!) / gamma));
      if (i + 1 < n) v += e[i + 1]![j]! * w(i + 1, j);
      if (j + 1 < m) v += e[i]![j + 1]! * w(i, j + 1);
      if (i + 1 < n && j + 1 < m) v += e[i + 1]![j + 1]! * w(i + 1, j + 1);
      e[i]![j] = v;
      gx[i]! += 2 * (x[i]! - y[j]!) * v;
      gy[j]! -= 2 * (x[i]! - y[j]!) * v;
    }
  }
  return [...gx, ...gy, dr[n - 1]![m - 1]!];
}

/** Code for GradSoftDTW_SqDist: the forward table with dR/dgamma, then the backward table, unrolled. */
function emitSoftDTWGrad(c: EmitCtx): { stmts: string[]; out: string[] } {
  const [x, y, gs] = c.args as [readonly string[], readonly string[], readonly string[]];
  const g = gs[0]!;
  const n = x.length;
  const m = y.length;
  const stmts: string[] = [];
  const dd: string[][] = Array.from({ length: n }, () => new Array<string>(m));
  const r: string[][] = Array.from({ length: n }, () => new Array<string>(m));
  const dr: (string | null)[][] = Array.from({ length: n }, () => new Array<string | null>(m).fill(null));
  for (let j = 0; j < m; j++) {
    for (let i = 0; i < n; i++) {
      const d = declare(c, stmts, 'gd', `(${x[i]} - ${y[j]})`);
      dd[i]![j] = d;
      const sq = `(${d} * ${d})`;
      if (i === 0 && j === 0) r[i]![j] = declare(c, stmts, 'gr', sq);
      else if (i === 0 || j === 0) {
        const [pi, pj] = i === 0 ? [0, j - 1] : [i - 1, 0];
        r[i]![j] = declare(c, stmts, 'gr', `(${sq} + ${r[pi]![pj]})`);
        dr[i]![j] = dr[pi]![pj]!;
      } else {
        const preds: [number, number][] = [[i - 1, j - 1], [i - 1, j], [i, j - 1]];
        const vs = preds.map(([a, b]) => r[a]![b]!);
        const mn = declare(c, stmts, 'gmin', c.d.call('min', c.d.call('min', vs[0]!, vs[2]!), vs[1]!));
        const es = vs.map((v) => declare(c, stmts, 'ge', c.d.call('exp', `((${mn} - ${v}) / ${g})`)));
        const sum = declare(c, stmts, 'gs', `(${es.join(' + ')})`);
        const soft = declare(c, stmts, 'gsm', `(${mn} - (${g} * ${c.d.call('log', sum)}))`);
        r[i]![j] = declare(c, stmts, 'gr', `(${sq} + ${soft})`);
        const mean = `((${vs.map((v, k) => `(${es[k]} * ${v})`).join(' + ')}) / ${sum})`;
        const dps = preds.map(([a, b], k) => (dr[a]![b] === null ? null : `(${es[k]} * ${dr[a]![b]})`)).filter((t) => t !== null);
        const carried = dps.length === 0 ? '' : ` + ((${dps.join(' + ')}) / ${sum})`;
        dr[i]![j] = declare(c, stmts, 'gdr', `(((${soft} - ${mean}) / ${g})${carried})`);
      }
    }
  }
  const e: string[][] = Array.from({ length: n }, () => new Array<string>(m));
  const gx: string[][] = Array.from({ length: n }, () => []);
  const gy: string[][] = Array.from({ length: m }, () => []);
  for (let j = m - 1; j >= 0; j--) {
    for (let i = n - 1; i >= 0; i--) {
      const terms: string[] = [];
      const w = (a: number, b: number): string =>
        a === 0 || b === 0 ? e[a]![b]! : `(${e[a]![b]} * ${c.d.call('exp', `((${r[a]![b]} - (${dd[a]![b]} * ${dd[a]![b]}) - ${r[i]![j]}) / ${g})`)})`;
      if (i + 1 < n) terms.push(w(i + 1, j));
      if (j + 1 < m) terms.push(w(i, j + 1));
      if (i + 1 < n && j + 1 < m) terms.push(w(i + 1, j + 1));
      e[i]![j] = declare(c, stmts, 'gee', terms.length === 0 ? c.d.num(1) : `(${terms.join(' + ')})`);
      const t = declare(c, stmts, 'gt', `(${c.d.num(2)} * ${dd[i]![j]} * ${e[i]![j]})`);
      gx[i]!.push(t);
      gy[j]!.push(t);
    }
  }
  const out = [...gx.map((ts) => `(${ts.join(' + ')})`), ...gy.map((ts) => `(-(${ts.join(' + ')}))`), dr[n - 1]![m - 1] ?? c.d.num(0)];
  return { stmts, out };
}

/** d/dx of the B-splines of degree p >= 1: p (B[i, p-1] / (t[i+p] - t[i]) - B[i+1, p-1] / (t[i+p+1] - t[i+1])). */
function bsplineSlope(t: Formula, x: Formula, p: number): Formula {
  const K = t.dim;
  const lower = op('BSpline', [t, x], [p - 1]);
  const width = sub(op('Extract', [t], [p, K - p]), op('Extract', [t], [0, K - p]));
  // An empty knot span (repeated knots) has a zero basis function: dividing by width + 1 there gives 0, not 0/0.
  const q = div(lower, add(width, call('Equal', width, cst(0)))!);
  return mul(cst(p), sub(op('Extract', [q], [0, K - p - 1]), op('Extract', [q], [1, K - p - 1])));
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
    // Not differentiated with respect to the knots (keopscore differentiates BSpline in nothing);
    // in x: piecewise constant for order 0, else the textbook derivative through order - 1.
    vjp: (n, g) => {
      const [t, x] = n.args as [Formula, Formula];
      const p = n.params[0]!;
      return [null, p === 0 ? null : call('Scalprod', g, bsplineSlope(t, x, p))];
    },
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
    // As keopscore, through a gradient op; here it also gives the gamma part.
    vjp: (n, g) => {
      const [x, y, gamma] = n.args as [Formula, Formula, Formula];
      const full = op('GradSoftDTW_SqDist', [x, y, gamma]);
      const part = (start: number, len: number): Formula => mul(g, op('Extract', [full], [start, len]));
      return [part(0, x.dim), part(x.dim, y.dim), part(x.dim + y.dim, 1)];
    },
  },
  {
    name: 'GradSoftDTW_SqDist',
    arity: 3,
    nParams: 0,
    dim: ([n, m, g]) => {
      if (g !== 1) fail('GradSoftDTW_SqDist', `gamma must have dimension 1, got ${g}`);
      return n! + m! + 1;
    },
    emit: emitSoftDTWGrad,
    ref: ([x, y, g]) => refSoftDTWGrad(x!, y!, g![0]!),
    // Second derivatives of soft-DTW are not provided (keopscore has none either): a symbolic zero.
    vjp: () => [null, null, null],
  },
];
