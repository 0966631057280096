import { DimensionError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import { op } from './build.js';
import { composite } from './composite.js';
import { components, forEach, isWide, ixAdd, ixMul, read, sumOver, type Ix, type Operand } from './loop.js';
import { compv, type OpDef, type VecCtx, type VecEmitted } from './op.js';
import { add, call, cst, fitTo, mul, neg, sub, sumTo, widen } from './diff.js';

/*
 * Vector operations of KeOps (keopscore/formulas/maths): inner reductions over the vector
 * dimension, norms and distances, and the index/slice family. Semantics follow keopscore:
 *
 * - Scalprod(a, b): sum_k a_k b_k; as in KeOps a dimension-1 operand broadcasts (a * Sum(b)).
 * - Sum, Max, Min, ArgMax, ArgMin: over the components, output dim 1. Max/Min/ArgMax/ArgMin scan
 *   k = 1..D-1 with a strict comparison against the running value, as KeOps's loop does: ties keep
 *   the lowest index, and a NaN after the first component is skipped.
 * - SumT(f, d): f of dim 1 copied d times (the adjoint of Sum).
 * - SqNorm2 = Sum(f^2), Norm2 = Sqrt(SqNorm2), Normalize = Rsqrt(SqNorm2(f)) * f with KeOps's
 *   Rsqrt(0) = 0, so Normalize of the zero vector is the zero vector.
 * - SqDist(a, b) = SqNorm2(a - b) (dimension-1 operands broadcast as in Subtract).
 * - SqNormIso(s, x) = s * SqNorm2(x) (dim of s), SqNormDiag(s, x) = Sum(s * x^2),
 *   SymSqNorm(A, x) = sum_{k,l} A[k*D+l] x_k x_l with A of dim D*D.
 * - WeightedSqNorm(s, x): dim(s) = 1 -> SqNormIso, = D -> SqNormDiag, = D*D -> SymSqNorm (checked in
 *   that order, as KeOps); WeightedSqDist(s, x, y) = WeightedSqNorm(s, x - y).
 * - Concat, Elem(f, m), ElemT(f, n, m), Extract(f, start, len), ExtractT(f, start, dim).
 * - OneHot(f, dim): component k is 1 where trunc(f + 0.5) == k (KeOps's `(int)(f + .5)`), else 0;
 *   an index outside [0, dim) gives the zero vector (KeOps leaves that case undefined).
 */

function fail(name: string, msg: string): never {
  throw new DimensionError(`${name}: ${msg}`);
}

/** Checks that static parameter `label` of op `name` is an integer >= `min`. */
function intParam(name: string, label: string, v: number, min: number): number {
  if (!Number.isInteger(v) || v < min) fail(name, `parameter ${label} = ${v} must be an integer >= ${min}`);
  return v;
}

/** Dimension of an elementwise pairing: equal dims, or a dimension-1 side broadcast. */
function pairDim(name: string, a: number, b: number, what = 'operand dimensions'): number {
  if (a === b || b === 1) return a;
  if (a === 1) return b;
  return fail(name, `${what} ${a} and ${b} differ (only a dimension-1 operand broadcasts)`);
}

/** Which weighted norm a weight of dimension `s` selects for vectors of dimension `d` (KeOps order). */
function weightKind(name: string, s: number, d: number): 'iso' | 'diag' | 'sym' {
  if (s === 1) return 'iso';
  if (s === d) return 'diag';
  if (s === d * d) return 'sym';
  return fail(name, `weight dimension ${s} fits neither 1, the vector dimension ${d}, nor ${d}*${d} = ${d * d}`);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, k) => k);
}

// ---- emit helpers (code only through the dialect plus infix arithmetic; loops where vectors are wide) ----

/** sum_k x_k^2. */
const sqNorm = (c: VecCtx, x: Operand) =>
  sumOver(c, x.dim, (k, pre) => {
    const v = read(c, x, k, pre);
    return `(${v} * ${v})`;
  });

/** sum_k s_k x_k^2 (a dimension-1 side broadcast). */
const diag = (c: VecCtx, s: Operand, x: Operand) =>
  sumOver(c, Math.max(s.dim, x.dim), (k, pre) => {
    const v = read(c, x, k, pre);
    return `(${s.at(k)} * (${v} * ${v}))`;
  });

/** sum_k x_k (sum_l A[k*D+l] x_l): D*D + D products. */
const sym = (c: VecCtx, a: Operand, x: Operand) =>
  sumOver(c, x.dim, (k, pre) => {
    const inner = sumOver(c, x.dim, (l) => `(${a.at(ixAdd(c.d, ixMul(c.d, k, x.dim), l))} * ${x.at(l)})`);
    pre.push(...inner.stmts);
    return `(${x.at(k)} * ${inner.expr})`;
  });

/** A sum's statements and expression as a vector emitter's scalar output. */
const scalar = ({ stmts, expr }: { stmts: string[]; expr: string }): VecEmitted => ({ stmts, out: [expr] });

/** Running extremum scan: `better` is the strict comparison `>` (max) or `<` (min). */
function emitScan(c: VecCtx, better: '>' | '<', wantIndex: boolean): VecEmitted {
  const x = c.args[0]!;
  if (x.dim === 1) return { out: [wantIndex ? c.d.num(0) : x.at(0)] };
  const m = c.fresh(better === '>' ? 'mx' : 'mn');
  const stmts = [c.d.decl(m, x.at(0))];
  let idx = '';
  if (wantIndex) {
    idx = c.fresh('arg');
    stmts.push(c.d.decl(idx, c.d.num(0)));
  }
  // Unrolled from component 1; a loop starts at 0, where the strict comparison is false.
  const step = (k: Ix, pre: string[]): string[] => {
    if (k === 0) return [];
    const v = read(c, x, k, pre);
    const at = typeof k === 'number' ? c.d.num(k) : c.d.toFloat(k);
    return [...pre, `if (${v} ${better} ${m}) { ${m} = ${v};${wantIndex ? ` ${idx} = ${at};` : ''} }`];
  };
  stmts.push(...forEach(c, x.dim, (k) => step(k, [])));
  return { stmts, out: [wantIndex ? idx : m] };
}

/** Writes a, then b, into consecutive components of the output (Concat, and ExtractT's copy). */
function writeAt(c: VecCtx, start: number, x: Operand): string[] {
  return forEach(c, x.dim, (k) => [`${c.out(ixAdd(c.d, start, k))} = ${x.at(k)};`]);
}

// ---- float64 reference helpers (plain JS, independent of the emitters) ----

function refSqNorm(x: readonly number[]): number {
  let s = 0;
  for (const v of x) s += v * v;
  return s;
}

function refWeighted(s: readonly number[], x: readonly number[]): number {
  const d = x.length;
  if (s.length === 1) return s[0]! * refSqNorm(x);
  let acc = 0;
  if (s.length === d) {
    for (let k = 0; k < d; k++) acc += s[k]! * x[k]! * x[k]!;
    return acc;
  }
  for (let k = 0; k < d; k++) for (let l = 0; l < d; l++) acc += s[k * d + l]! * x[k]! * x[l]!;
  return acc;
}

function refScan(x: readonly number[], better: (a: number, b: number) => boolean): [number, number] {
  let m = x[0]!;
  let at = 0;
  for (let k = 1; k < x.length; k++) {
    if (better(x[k]!, m)) {
      m = x[k]!;
      at = k;
    }
  }
  return [m, at];
}

function refDiff(a: readonly number[], b: readonly number[]): number[] {
  const d = Math.max(a.length, b.length);
  return range(d).map((k) => compv(a, k) - compv(b, k));
}

// ---- vector-Jacobian products ----

/** [d/dA, d/dx] of g * x^T A x: x x^T and (A + A^T) x. */
function symVjp(a: Formula, x: Formula, g: Formula): [Formula, Formula] {
  return [mul(g, call('TensorProd', x, x)), mul(g, add(call('MatVecMult', a, x), call('VecMatMult', x, a))!)];
}

/** The op each weight kind of WeightedSqNorm is (KeOps picks by the weight's dimension). */
const WEIGHTED_OP = { iso: 'SqNormIso', diag: 'SqNormDiag', sym: 'SymSqNorm' } as const;

/** Dimension rule of the inner reductions: any argument dimension, scalar output. */
const anyDim = (): number => 1;

function scanOp(name: string, better: '>' | '<', wantIndex: boolean): OpDef {
  const cmp = better === '>' ? (a: number, b: number) => a > b : (a: number, b: number) => a < b;
  const arg = better === '>' ? 'ArgMax' : 'ArgMin';
  return {
    name,
    // KeOps: the cotangent goes to the selected component, OneHot(ArgMax(f)) * g; an index has none.
    vjp: ({ args: [x] }, g) => [wantIndex ? null : x!.dim === 1 ? g : mul(op('OneHot', [call(arg, x!)], [x!.dim]), g)],
    arity: 1,
    nParams: 0,
    dim: anyDim,
    vec: (c) => emitScan(c, better, wantIndex),
    ref: (args) => {
      const [m, at] = refScan(args[0]!, cmp);
      return [wantIndex ? at : m];
    },
  };
}

/** The vector part of the operation table, one entry per KeOps op. */
export const vectorOps: readonly OpDef[] = [
  {
    name: 'Scalprod',
    arity: 2,
    nParams: 0,
    dim: (dims) => {
      pairDim('Scalprod', dims[0]!, dims[1]!);
      return 1;
    },
    vec: (c) => {
      const [a, b] = c.args as [Operand, Operand];
      return scalar(sumOver(c, Math.max(a.dim, b.dim), (k) => `(${a.at(k)} * ${b.at(k)})`));
    },
    ref: (args) => {
      const [a, b] = args as [readonly number[], readonly number[]];
      let s = 0;
      for (let k = 0; k < Math.max(a.length, b.length); k++) s += compv(a, k) * compv(b, k);
      return [s];
    },
    vjp: ({ args: [a, b] }, g) => [fitTo(mul(g, b!), a!.dim), fitTo(mul(g, a!), b!.dim)],
  },
  {
    name: 'Sum',
    arity: 1,
    nParams: 0,
    dim: anyDim,
    vec: (c) => scalar(sumOver(c, c.args[0]!.dim, (k) => c.args[0]!.at(k))),
    ref: (args) => [args[0]!.reduce((s, v) => s + v, 0)],
    vjp: (n, g) => [widen(g, n.args[0]!.dim)],
  },
  scanOp('Max', '>', false),
  scanOp('Min', '<', false),
  scanOp('ArgMax', '>', true),
  scanOp('ArgMin', '<', true),
  {
    name: 'SumT',
    arity: 1,
    nParams: 1,
    dim: (dims, params) => {
      if (dims[0] !== 1) fail('SumT', `argument must have dimension 1, got ${dims[0]}`);
      return intParam('SumT', 'dim', params[0]!, 1);
    },
    vec: (c) => ({ each: () => c.args[0]!.at(0) }),
    ref: (args, _p, dim) => range(dim).map(() => args[0]![0]!),
    vjp: (_n, g) => [sumTo(g, 1)],
  },
  {
    name: 'SqNorm2',
    arity: 1,
    nParams: 0,
    dim: anyDim,
    vec: (c) => scalar(sqNorm(c, c.args[0]!)),
    ref: (args) => [refSqNorm(args[0]!)],
    vjp: (n, g) => [mul(mul(cst(2), g), n.args[0]!)],
  },
  composite({
    name: 'Norm2',
    arity: 1,
    nParams: 0,
    dim: anyDim,
    // Sqrt' = Rsqrt / 2 with KeOps's Rsqrt(0) = 0: the gradient is zero at the origin.
    expand: ([x]) => call('Sqrt', call('SqNorm2', x!)),
    ref: (args) => [Math.sqrt(refSqNorm(args[0]!))],
  }),

  composite({
    name: 'Normalize',
    arity: 1,
    nParams: 0,
    dim: (dims) => dims[0]!,
    // KeOps's Rsqrt(0) = 0 makes the zero vector's normalisation the zero vector.
    expand: ([x]) => mul(call('Rsqrt', call('SqNorm2', x!)), x!),
    ref: (args) => {
      const x = args[0]!;
      const s = refSqNorm(x);
      const r = s === 0 ? 0 : 1 / Math.sqrt(s);
      return x.map((v) => r * v);
    },
  }),

  composite({
    name: 'SqDist',
    arity: 2,
    nParams: 0,
    dim: (dims) => {
      pairDim('SqDist', dims[0]!, dims[1]!);
      return 1;
    },
    expand: ([a, b]) => call('SqNorm2', sub(a!, b!)),
    ref: (args) => [refSqNorm(refDiff(args[0]!, args[1]!))],
  }),

  {
    name: 'SqNormIso',
    arity: 2,
    nParams: 0,
    // KeOps: S * SqNorm2(X), so the output has the dimension of S (1 in every ordinary use).
    dim: (dims) => dims[0]!,
    vec: (c) => {
      const [s, x] = c.args as [Operand, Operand];
      const q = sqNorm(c, x);
      if (s.dim === 1) return { stmts: q.stmts, out: [`(${s.at(0)} * ${q.expr})`] };
      const n = c.fresh('sqn');
      return { stmts: [...q.stmts, c.d.decl(n, q.expr)], each: (k) => `(${s.at(k)} * ${n})` };
    },
    ref: (args) => {
      const q = refSqNorm(args[1]!);
      return args[0]!.map((v) => v * q);
    },
    vjp: ({ args: [s, x] }, g) => [mul(g, call('SqNorm2', x!)), mul(mul(cst(2), call('Scalprod', g, s!)), x!)],
  },
  {
    name: 'SqNormDiag',
    arity: 2,
    nParams: 0,
    dim: (dims) => {
      pairDim('SqNormDiag', dims[0]!, dims[1]!, 'weight and vector dimensions');
      return 1;
    },
    vec: (c) => scalar(diag(c, c.args[0]!, c.args[1]!)),
    ref: (args) => {
      const [s, x] = args as [readonly number[], readonly number[]];
      let acc = 0;
      for (let k = 0; k < Math.max(s.length, x.length); k++) acc += compv(s, k) * compv(x, k) * compv(x, k);
      return [acc];
    },
    vjp: ({ args: [s, x] }, g) => [fitTo(mul(g, call('Square', x!)), s!.dim), fitTo(mul(mul(cst(2), g), mul(s!, x!)), x!.dim)],
  },
  {
    name: 'SymSqNorm',
    arity: 2,
    nParams: 0,
    dim: (dims) => {
      const [a, d] = dims as [number, number];
      if (a !== d * d) fail('SymSqNorm', `matrix dimension ${a} is not ${d}*${d} = ${d * d} for a vector of dimension ${d}`);
      return 1;
    },
    vec: (c) => scalar(sym(c, c.args[0]!, c.args[1]!)),
    ref: (args) => {
      const [a, x] = args as [readonly number[], readonly number[]];
      const d = x.length;
      let acc = 0;
      for (let k = 0; k < d; k++) for (let l = 0; l < d; l++) acc += a[k * d + l]! * x[k]! * x[l]!;
      return [acc];
    },
    vjp: ({ args: [a, x] }, g) => symVjp(a!, x!, g),
  },
  composite({
    name: 'WeightedSqNorm',
    arity: 2,
    nParams: 0,
    dim: (dims) => {
      weightKind('WeightedSqNorm', dims[0]!, dims[1]!);
      return 1;
    },
    expand: ([s, x]) => op(WEIGHTED_OP[weightKind('WeightedSqNorm', s!.dim, x!.dim)], [s!, x!]),
    ref: (args) => [refWeighted(args[0]!, args[1]!)],
  }),

  composite({
    name: 'WeightedSqDist',
    arity: 3,
    nParams: 0,
    dim: (dims) => {
      const d = pairDim('WeightedSqDist', dims[1]!, dims[2]!);
      weightKind('WeightedSqDist', dims[0]!, d);
      return 1;
    },
    expand: ([s, a, b]) => call('WeightedSqNorm', s!, sub(a!, b!)),
    ref: (args) => [refWeighted(args[0]!, refDiff(args[1]!, args[2]!))],
  }),

  {
    name: 'Concat',
    arity: 2,
    nParams: 0,
    dim: (dims) => dims[0]! + dims[1]!,
    vec: (c) => {
      const [a, b] = c.args as [Operand, Operand];
      return isWide(c.d, c.dim) ? { stmts: [...writeAt(c, 0, a), ...writeAt(c, a.dim, b)], written: true } : { out: [...components(a), ...components(b)] };
    },
    ref: (args) => [...args[0]!, ...args[1]!],
    vjp: ({ args: [a, b] }, g) => [op('Extract', [g], [0, a!.dim]), op('Extract', [g], [a!.dim, b!.dim])],
  },
  {
    name: 'Elem',
    arity: 1,
    nParams: 1,
    dim: (dims, params) => {
      const m = intParam('Elem', 'm', params[0]!, 0);
      if (m >= dims[0]!) fail('Elem', `index ${m} out of range for an argument of dimension ${dims[0]}`);
      return 1;
    },
    vec: (c) => ({ out: [c.args[0]!.at(c.params[0]!)] }),
    ref: (args, params) => [args[0]![params[0]!]!],
    vjp: (n, g) => [n.args[0]!.dim === 1 ? g : op('ElemT', [g], [n.args[0]!.dim, n.params[0]!])],
  },
  {
    name: 'ElemT',
    arity: 1,
    nParams: 2,
    dim: (dims, params) => {
      if (dims[0] !== 1) fail('ElemT', `argument must have dimension 1, got ${dims[0]}`);
      const n = intParam('ElemT', 'n', params[0]!, 1);
      const m = intParam('ElemT', 'm', params[1]!, 0);
      if (m >= n) fail('ElemT', `index ${m} out of range for an output of dimension ${n}`);
      return n;
    },
    vec: (c) => {
      const [x, m] = [c.args[0]!.at(0), c.params[1]!];
      return { each: (k) => (typeof k === 'number' ? (k === m ? x : c.d.num(0)) : c.d.select(`${k} == ${c.d.int(m)}`, x, c.d.num(0))) };
    },
    ref: (args, params, dim) => range(dim).map((k) => (k === params[1] ? args[0]![0]! : 0)),
    vjp: (n, g) => [g.dim === 1 ? g : op('Elem', [g], [n.params[1]!])],
  },
  {
    name: 'Extract',
    arity: 1,
    nParams: 2,
    dim: (dims, params) => {
      const start = intParam('Extract', 'start', params[0]!, 0);
      const len = intParam('Extract', 'dim', params[1]!, 1);
      if (start + len > dims[0]!) {
        fail('Extract', `range [${start}, ${start + len}) goes past the end of an argument of dimension ${dims[0]}`);
      }
      return len;
    },
    vec: (c) => ({ each: (k) => c.args[0]!.at(ixAdd(c.d, c.params[0]!, k)) }),
    ref: (args, params, dim) => args[0]!.slice(params[0]!, params[0]! + dim),
    vjp: (n, g) => [g.dim === n.args[0]!.dim ? g : op('ExtractT', [g], [n.params[0]!, n.args[0]!.dim])],
  },
  {
    name: 'ExtractT',
    arity: 1,
    nParams: 2,
    dim: (dims, params) => {
      const start = intParam('ExtractT', 'start', params[0]!, 0);
      const dim = intParam('ExtractT', 'dim', params[1]!, 1);
      if (start + dims[0]! > dim) {
        fail('ExtractT', `argument of dimension ${dims[0]} at offset ${start} does not fit in dimension ${dim}`);
      }
      return dim;
    },
    vec: (c) => {
      const start = c.params[0]!;
      const x = c.args[0]!;
      if (isWide(c.d, c.dim)) return { stmts: [...forEach(c, c.dim, (k) => [`${c.out(k)} = ${c.d.num(0)};`]), ...writeAt(c, start, x)], written: true };
      return { out: range(c.dim).map((k) => (k >= start && k < start + x.dim ? x.at(k - start) : c.d.num(0))) };
    },
    ref: (args, params, dim) => {
      const out = new Array<number>(dim).fill(0);
      args[0]!.forEach((v, k) => {
        out[params[0]! + k] = v;
      });
      return out;
    },
    vjp: (n, g) => [g.dim === n.args[0]!.dim ? g : op('Extract', [g], [n.params[0]!, n.args[0]!.dim])],
  },
  {
    name: 'OneHot',
    arity: 1,
    nParams: 1,
    dim: (dims, params) => {
      if (dims[0] !== 1) fail('OneHot', `argument must have dimension 1 (a scalar index), got ${dims[0]}`);
      return intParam('OneHot', 'dim', params[0]!, 1);
    },
    vec: (c) => {
      const idx = c.fresh('hot');
      const stmts = [c.d.decl(idx, c.d.call('trunc', `(${c.args[0]!.at(0)} + ${c.d.num(0.5)})`))];
      return {
        stmts,
        each: (k) => c.d.select(`${idx} == ${typeof k === 'number' ? c.d.num(k) : c.d.toFloat(k)}`, c.d.num(1), c.d.num(0)),
      };
    },
    ref: (args, _p, dim) => {
      const at = Math.trunc(args[0]![0]! + 0.5);
      return range(dim).map((k) => (k === at ? 1 : 0));
    },
    // Piecewise constant in the index.
    vjp: () => [null],
  },
];
