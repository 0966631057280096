import { DimensionError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import { op } from './build.js';
import { forEach, isWide, ixAdd, ixMul, sumOf, sumOver, type Ix, type Operand } from './loop.js';
import type { OpDef } from './op.js';

/*
 * Small linear algebra on the vector dimension (KeOps keopscore/formulas/maths: MatVecMult.py,
 * VecMatMult.py, TensorProd.py, TensorDot.py, Kron.py). Matrices and tensors are stored flat in
 * row-major (C-contiguous) order, as KeOps does under C_CONTIGUOUS, the layout pykeops uses:
 *
 * - MatVecMult(A, v): A of dim n*m is the n x m matrix A[i*m + k], v of dim m (m must divide dim A);
 *   output dim n, out[i] = sum_k A[i*m + k] v[k].
 * - VecMatMult(v, A): v of dim n, A of dim n*p (n must divide dim A); output dim p,
 *   out[j] = sum_k v[k] A[k*p + j].
 * - TensorProd(a, b): outer product, dim a * dim b, out[k*dim(b) + l] = a[k] b[l].
 * - TensorDot(a, b, dimsA, dimsB, contA, contB[, permute]): a is a tensor of shape dimsA and b of
 *   shape dimsB (product of the shape = the vector dim). Axis contA[k] of a is contracted with axis
 *   contB[k] of b (their sizes must agree). The free axes, those of a then those of b in their
 *   original order, form the output; with `permute`, free axis j becomes output axis permute[j]
 *   (KeOps's convention: the output shape is keep[argsort(permute)]). Without contraction it is the
 *   outer product. Output dim = dim a * dim b / prod(contracted sizes)^2.
 * - Kron(a, b, dimsA, dimsB): Kronecker product of two tensors of the same rank, as numpy.kron:
 *   output shape [dimsA[0]*dimsB[0], ...], out[(i0*B0 + k0), (i1*B1 + k1), ...] = a[i] b[k].
 *   (KeOps builds it as TensorDot(a, b, dimsA, dimsB, [], [], permute = [0, 2, 4, ..., 1, 3, ...]).)
 *
 * Static tuple parameters are encoded in the flat numeric `params` array as length-prefixed lists,
 * each KeOps tuple `(x0, ..., x_{r-1})` becoming `r, x0, ..., x_{r-1}`, concatenated in KeOps's
 * argument order:
 *
 *   TensorDot: [L(dimsA), L(dimsB), L(contA), L(contB)]            (identity permutation)
 *          or  [L(dimsA), L(dimsB), L(contA), L(contB), L(permute)]
 *   Kron:      [L(dimsA), L(dimsB)]
 *
 * e.g. the matrix product of two 2x2 matrices, KeOps `TensorDot(a, b, [2,2], [2,2], [1], [0])`, has
 * params [2, 2, 2, 2, 2, 2, 1, 1, 1, 0]. Their count varies, so these ops declare nParams = -1
 * ("variadic trailing params"); `encodeTensorDotParams` / `encodeKronParams` build the arrays.
 */

/** nParams value of an op whose trailing static parameters are variadic (length-prefixed lists). */
export const VARIADIC_PARAMS = -1;

function fail(name: string, msg: string): never {
  throw new DimensionError(`${name}: ${msg}`);
}

function range(n: number): number[] {
  return Array.from({ length: n }, (_, k) => k);
}

function prod(xs: readonly number[]): number {
  let p = 1;
  for (const x of xs) p *= x;
  return p;
}

/** A sum's expression, its statements pushed to `pre` (they run before the component that reads it). */
function summed({ stmts, expr }: { stmts: string[]; expr: string }, pre: string[]): string {
  pre.push(...stmts);
  return expr;
}

/** Length-prefixed encoding of one static tuple. */
function lp(xs: readonly number[]): number[] {
  return [xs.length, ...xs];
}

/** Reads `count` length-prefixed lists from `params` (at least `min` of them; all of it consumed). */
function readLists(name: string, params: readonly number[], min: number, max: number): number[][] {
  const lists: number[][] = [];
  let at = 0;
  while (at < params.length) {
    if (lists.length === max) fail(name, `too many static parameters: ${params.length - at} left over after ${max} lists`);
    const len = params[at]!;
    if (!Number.isInteger(len) || len < 0) fail(name, `list length ${len} (parameter ${at + 1}) must be an integer >= 0`);
    if (at + 1 + len > params.length) {
      fail(name, `list ${lists.length + 1} announces ${len} entries, only ${params.length - at - 1} parameters remain`);
    }
    const xs = params.slice(at + 1, at + 1 + len);
    for (const x of xs) if (!Number.isInteger(x)) fail(name, `parameter ${x} must be an integer`);
    lists.push(xs);
    at += 1 + len;
  }
  if (lists.length < min) fail(name, `expected at least ${min} length-prefixed parameter lists, got ${lists.length}`);
  return lists;
}

function checkShape(name: string, label: string, shape: readonly number[], argDim: number): void {
  for (const s of shape) if (s < 1) fail(name, `${label} = [${shape}] has a size ${s} < 1`);
  if (prod(shape) !== argDim) {
    fail(name, `${label} = [${shape}] has ${prod(shape)} entries but the argument has dimension ${argDim}`);
  }
}

function checkAxes(name: string, label: string, axes: readonly number[], rank: number): void {
  for (const a of axes) if (a < 0 || a >= rank) fail(name, `${label} = [${axes}]: axis ${a} is out of range for rank ${rank}`);
  if (new Set(axes).size !== axes.length) fail(name, `${label} = [${axes}] repeats an axis`);
}

/** Row-major strides of a shape. */
function strides(shape: readonly number[]): number[] {
  const s = new Array<number>(shape.length).fill(1);
  for (let k = shape.length - 2; k >= 0; k--) s[k] = s[k + 1]! * shape[k + 1]!;
  return s;
}

/** Multi-index of flat row-major position `flat` in `shape`. */
function unflatten(flat: number, shape: readonly number[]): number[] {
  const idx = new Array<number>(shape.length).fill(0);
  for (let k = shape.length - 1; k >= 0; k--) {
    idx[k] = flat % shape[k]!;
    flat = Math.floor(flat / shape[k]!);
  }
  return idx;
}

// ---------------------------------------------------------------- TensorDot

/** A decoded TensorDot specification. */
export interface TensorDotSpec {
  readonly dimsA: readonly number[];
  readonly dimsB: readonly number[];
  readonly contA: readonly number[];
  readonly contB: readonly number[];
  /** Free axis j goes to output axis permute[j] (identity when KeOps's permute is omitted). */
  readonly permute: readonly number[];
}

/** Params array of KeOps `TensorDot(a, b, dimsA, dimsB, contA, contB[, permute])`. */
export function encodeTensorDotParams(
  dimsA: readonly number[],
  dimsB: readonly number[],
  contA: readonly number[],
  contB: readonly number[],
  permute?: readonly number[],
): number[] {
  return [...lp(dimsA), ...lp(dimsB), ...lp(contA), ...lp(contB), ...(permute === undefined ? [] : lp(permute))];
}

/** Params array of KeOps `Kron(a, b, dimsA, dimsB)`. */
export function encodeKronParams(dimsA: readonly number[], dimsB: readonly number[]): number[] {
  return [...lp(dimsA), ...lp(dimsB)];
}

/** Decodes and validates TensorDot params against the argument dimensions (DimensionError naming TensorDot). */
export function decodeTensorDot(argDims: readonly number[], params: readonly number[]): TensorDotSpec {
  const name = 'TensorDot';
  const lists = readLists(name, params, 4, 5);
  const [dimsA, dimsB, contA, contB] = lists as [number[], number[], number[], number[]];
  checkShape(name, 'dimsA', dimsA, argDims[0]!);
  checkShape(name, 'dimsB', dimsB, argDims[1]!);
  if (contA.length !== contB.length) {
    fail(name, `contA = [${contA}] and contB = [${contB}] contract different numbers of axes`);
  }
  checkAxes(name, 'contA', contA, dimsA.length);
  checkAxes(name, 'contB', contB, dimsB.length);
  for (let k = 0; k < contA.length; k++) {
    const sa = dimsA[contA[k]!]!;
    const sb = dimsB[contB[k]!]!;
    if (sa !== sb) fail(name, `contracted axis ${contA[k]} of a has size ${sa} but axis ${contB[k]} of b has size ${sb}`);
  }
  const nKeep = dimsA.length + dimsB.length - 2 * contA.length;
  let permute = range(nKeep);
  if (lists.length === 5) {
    permute = lists[4]!;
    const ok = permute.length === nKeep && [...permute].sort((x, y) => x - y).every((v, k) => v === k);
    if (!ok) fail(name, `permute = [${permute}] is not a permutation of the ${nKeep} free axes`);
  }
  return { dimsA, dimsB, contA, contB, permute };
}

/** The component pairs of a TensorDot: `pairs[o]` lists the (index in a, index in b) products summed into out[o]. */
function tensorDotPairs(s: TensorDotSpec): [number, number][][] {
  const keepA = range(s.dimsA.length).filter((ax) => !s.contA.includes(ax));
  const keepB = range(s.dimsB.length).filter((ax) => !s.contB.includes(ax));
  const keepShape = [...keepA.map((ax) => s.dimsA[ax]!), ...keepB.map((ax) => s.dimsB[ax]!)];
  const outShape = new Array<number>(keepShape.length);
  keepShape.forEach((n, j) => (outShape[s.permute[j]!] = n));
  const contShape = s.contA.map((ax) => s.dimsA[ax]!);
  const stA = strides(s.dimsA);
  const stB = strides(s.dimsB);
  const nOut = prod(outShape);
  const nCont = prod(contShape);
  return range(nOut).map((o) => {
    const oi = unflatten(o, outShape);
    const keepIdx = s.permute.map((p) => oi[p]!);
    let baseA = 0;
    keepA.forEach((ax, m) => (baseA += keepIdx[m]! * stA[ax]!));
    let baseB = 0;
    keepB.forEach((ax, m) => (baseB += keepIdx[keepA.length + m]! * stB[ax]!));
    return range(nCont).map((c): [number, number] => {
      const ci = unflatten(c, contShape);
      let ia = baseA;
      let ib = baseB;
      ci.forEach((v, k) => {
        ia += v * stA[s.contA[k]!]!;
        ib += v * stB[s.contB[k]!]!;
      });
      return [ia, ib];
    });
  });
}

/** Float64 reference: loops over every pair of entries of a and b and accumulates the matching ones. */
function refTensorDot(a: readonly number[], b: readonly number[], s: TensorDotSpec, dim: number): number[] {
  const out = new Array<number>(dim).fill(0);
  const keepA = range(s.dimsA.length).filter((ax) => !s.contA.includes(ax));
  const keepB = range(s.dimsB.length).filter((ax) => !s.contB.includes(ax));
  const keepShape = [...keepA.map((ax) => s.dimsA[ax]!), ...keepB.map((ax) => s.dimsB[ax]!)];
  const outShape = new Array<number>(keepShape.length);
  keepShape.forEach((n, j) => (outShape[s.permute[j]!] = n));
  const outStrides = strides(outShape);
  for (let p = 0; p < a.length; p++) {
    const ia = unflatten(p, s.dimsA);
    for (let q = 0; q < b.length; q++) {
      const ib = unflatten(q, s.dimsB);
      if (!s.contA.every((ax, k) => ia[ax] === ib[s.contB[k]!])) continue;
      const keepIdx = [...keepA.map((ax) => ia[ax]!), ...keepB.map((ax) => ib[ax]!)];
      let o = 0;
      keepIdx.forEach((v, j) => (o += v * outStrides[s.permute[j]!]!));
      out[o]! += a[p]! * b[q]!;
    }
  }
  return out;
}

// ---------------------------------------------------------------- Kron

function decodeKron(argDims: readonly number[], params: readonly number[]): { dimsA: number[]; dimsB: number[] } {
  const name = 'Kron';
  const [dimsA, dimsB] = readLists(name, params, 2, 2) as [number[], number[]];
  if (dimsA.length !== dimsB.length) {
    fail(name, `dimsA = [${dimsA}] and dimsB = [${dimsB}] have different ranks (${dimsA.length} and ${dimsB.length})`);
  }
  checkShape(name, 'dimsA', dimsA, argDims[0]!);
  checkShape(name, 'dimsB', dimsB, argDims[1]!);
  return { dimsA, dimsB };
}

/** Flat output index of Kron for multi-indices `ia` (in dimsA) and `ib` (in dimsB). */
function kronIndex(ia: readonly number[], ib: readonly number[], dimsA: readonly number[], dimsB: readonly number[]): number {
  let o = 0;
  for (let k = 0; k < dimsA.length; k++) o = o * (dimsA[k]! * dimsB[k]!) + (ia[k]! * dimsB[k]! + ib[k]!);
  return o;
}

// ---------------------------------------------------------------- vjp

/**
 * Cotangents of TensorDot(a, b) as two more TensorDots (KeOps's TensorDot.DiffT does the same):
 * da contracts g's axes that came from b's free axes with those axes of b, and the result's free
 * axes (g's axes from a, then b's contracted axes) are permuted back into a's axis order; db alike.
 */
function tensorDotVjp(s: TensorDotSpec, a: Formula, b: Formula, g: Formula): [Formula, Formula] {
  const keepA = range(s.dimsA.length).filter((ax) => !s.contA.includes(ax));
  const keepB = range(s.dimsB.length).filter((ax) => !s.contB.includes(ax));
  const keepShape = [...keepA.map((ax) => s.dimsA[ax]!), ...keepB.map((ax) => s.dimsB[ax]!)];
  const outShape = new Array<number>(keepShape.length);
  keepShape.forEach((n, j) => (outShape[s.permute[j]!] = n));
  const nA = keepA.length;
  /** Cotangent of one operand: `mine` are its free axes (free axis j of the product at output axis permute[off + j]). */
  const side = (
    mine: readonly number[],
    off: number,
    other: Formula,
    otherDims: readonly number[],
    otherKeep: readonly number[],
    otherCont: readonly number[],
    myCont: readonly number[],
  ): Formula => {
    const contG = otherKeep.map((_, m) => s.permute[(off === 0 ? nA : 0) + m]!);
    const freeG = range(outShape.length).filter((ax) => !contG.includes(ax));
    const freeOther = range(otherDims.length).filter((ax) => !otherKeep.includes(ax));
    const perm = [
      ...freeG.map((ax) => mine[s.permute.indexOf(ax) - off]!),
      ...freeOther.map((ax) => myCont[otherCont.indexOf(ax)]!),
    ];
    return op('TensorDot', [g, other], encodeTensorDotParams(outShape, otherDims, contG, otherKeep, perm));
  };
  return [side(keepA, 0, b, s.dimsB, keepB, s.contB, s.contA), side(keepB, nA, a, s.dimsA, keepA, s.contA, s.contB)];
}

/** Kron(a, b) is TensorDot(a, b) without contraction, a's axis k at output axis 2k and b's at 2k + 1. */
function kronSpec(dimsA: readonly number[], dimsB: readonly number[]): TensorDotSpec {
  const r = dimsA.length;
  return { dimsA, dimsB, contA: [], contB: [], permute: [...range(r).map((k) => 2 * k), ...range(r).map((k) => 2 * k + 1)] };
}

// ---------------------------------------------------------------- the table

/** The linear-algebra part of the operation table, one entry per KeOps op. */
export const linalgOps: readonly OpDef[] = [
  {
    name: 'MatVecMult',
    arity: 2,
    nParams: 0,
    dim: ([a, v]) => {
      if (a! % v! !== 0) fail('MatVecMult', `matrix dimension ${a} is not a multiple of the vector dimension ${v}`);
      return a! / v!;
    },
    vec: (c) => {
      const [a, v] = c.args as [Operand, Operand];
      const m = v.dim;
      return { each: (i, pre) => summed(sumOver(c, m, (k) => `(${a.at(ixAdd(c.d, ixMul(c.d, i, m), k))} * ${v.at(k)})`), pre) };
    },
    ref: ([a, v], _p, n) => {
      const m = v!.length;
      const out: number[] = [];
      for (let i = 0; i < n; i++) {
        let s = 0;
        for (let k = 0; k < m; k++) s += a![i * m + k]! * v![k]!;
        out.push(s);
      }
      return out;
    },
    // out = A v: dA = g v^T, dv = g^T A.
    vjp: (n, g) => [op('TensorProd', [g, n.args[1]!]), op('VecMatMult', [g, n.args[0]!])],
  },
  {
    name: 'VecMatMult',
    arity: 2,
    nParams: 0,
    dim: ([v, a]) => {
      if (a! % v! !== 0) fail('VecMatMult', `matrix dimension ${a} is not a multiple of the vector dimension ${v}`);
      return a! / v!;
    },
    vec: (c) => {
      const [v, a] = c.args as [Operand, Operand];
      const p = c.dim;
      return { each: (j, pre) => summed(sumOver(c, v.dim, (k) => `(${v.at(k)} * ${a.at(ixAdd(c.d, ixMul(c.d, k, p), j))})`), pre) };
    },
    ref: ([v, a], _p, p) => {
      const out = new Array<number>(p).fill(0);
      for (let k = 0; k < v!.length; k++) for (let j = 0; j < p; j++) out[j]! += v![k]! * a![k * p + j]!;
      return out;
    },
    // out = v^T A: dv = A g, dA = v g^T.
    vjp: (n, g) => [op('MatVecMult', [n.args[1]!, g]), op('TensorProd', [n.args[0]!, g])],
  },
  {
    name: 'TensorProd',
    arity: 2,
    nParams: 0,
    dim: ([a, b]) => a! * b!,
    vec: (c) => {
      const [a, b] = c.args as [Operand, Operand];
      const prod = (k: Ix, l: Ix): string => `(${a.at(k)} * ${b.at(l)})`;
      if (!isWide(c.d, c.dim)) return { out: range(a.dim).flatMap((k) => range(b.dim).map((l) => prod(k, l))) };
      return { stmts: forEach(c, a.dim, (k) => forEach(c, b.dim, (l) => [`${c.out(ixAdd(c.d, ixMul(c.d, k, b.dim), l))} = ${prod(k, l)};`])), written: true };
    },
    ref: ([a, b]) => {
      const out: number[] = [];
      for (const x of a!) for (const y of b!) out.push(x * y);
      return out;
    },
    // out = a b^T flattened: da = G b, db = G^T a with G the cotangent as a dim(a) x dim(b) matrix.
    vjp: (n, g) => [op('MatVecMult', [g, n.args[1]!]), op('VecMatMult', [n.args[0]!, g])],
  },
  {
    name: 'TensorDot',
    arity: 2,
    nParams: VARIADIC_PARAMS,
    dim: (dims, params) => {
      const s = decodeTensorDot(dims, params);
      const contracted = prod(s.contA.map((ax) => s.dimsA[ax]!));
      return (dims[0]! * dims[1]!) / (contracted * contracted);
    },
    emit: (c) => {
      const [a, b] = c.args as [readonly string[], readonly string[]];
      const pairs = tensorDotPairs(decodeTensorDot(c.argDims, c.params));
      return pairs.map((ps) => sumOf(ps.map(([ia, ib]) => `(${a[ia]} * ${b[ib]})`)));
    },
    ref: ([a, b], params, dim) => refTensorDot(a!, b!, decodeTensorDot([a!.length, b!.length], params), dim),
    vjp: (n, g) => {
      const [a, b] = n.args as [Formula, Formula];
      return tensorDotVjp(decodeTensorDot([a.dim, b.dim], n.params), a, b, g);
    },
  },
  {
    name: 'Kron',
    arity: 2,
    nParams: VARIADIC_PARAMS,
    dim: (dims, params) => {
      decodeKron(dims, params);
      return dims[0]! * dims[1]!;
    },
    emit: (c) => {
      const [a, b] = c.args as [readonly string[], readonly string[]];
      const { dimsA, dimsB } = decodeKron(c.argDims, c.params);
      const out = new Array<string>(c.dim);
      for (let p = 0; p < a.length; p++) {
        const ia = unflatten(p, dimsA);
        for (let q = 0; q < b.length; q++) out[kronIndex(ia, unflatten(q, dimsB), dimsA, dimsB)] = `(${a[p]} * ${b[q]})`;
      }
      return out;
    },
    ref: ([a, b], params, dim) => {
      const { dimsA, dimsB } = decodeKron([a!.length, b!.length], params);
      // Straight from the definition: out viewed as shape [A0*B0, A1*B1, ...], axis k at i_k*B_k + j_k.
      const outShape = dimsA.map((n, k) => n * dimsB[k]!);
      const out = new Array<number>(dim);
      for (let o = 0; o < dim; o++) {
        const oi = unflatten(o, outShape);
        let fa = 0;
        let fb = 0;
        for (let k = 0; k < oi.length; k++) {
          fa = fa * dimsA[k]! + Math.floor(oi[k]! / dimsB[k]!);
          fb = fb * dimsB[k]! + (oi[k]! % dimsB[k]!);
        }
        out[o] = a![fa]! * b![fb]!;
      }
      return out;
    },
    vjp: (n, g) => {
      const [a, b] = n.args as [Formula, Formula];
      const { dimsA, dimsB } = decodeKron([a.dim, b.dim], n.params);
      return tensorDotVjp(kronSpec(dimsA, dimsB), a, b, g);
    },
  },
];
