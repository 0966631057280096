/**
 * Generates docs/formula-reference.md from the operation table (src/ops, `OPS`) and the
 * reduction table (src/ops/reductions.ts, `REDUCTIONS`), so the reference cannot drift from
 * the code:
 *
 * - every op's name, arity, number of static parameters, output-dimension rule (run on a sample)
 *   and gradient support (its `vjp` run on a sample: which arguments get a cotangent and which a
 *   symbolic zero) come from the table itself;
 * - every reduction's weight use, K, output row shape (from its `outputs` hook), and gradient
 *   (src/grad/reductions.ts `hasGradient`) come from the tables;
 * - what only a person can write (a one-line definition, argument names, the LazyTensor method,
 *   notes on KeOps) is in the DEFS and REDUCTION_DEFS tables below. The LazyTensor spellings are
 *   evaluated on sample tensors and must build the op (or reduction) they document.
 *
 * The script fails loudly when an op or a reduction of the tables has no hand-written entry, when
 * an entry names something that is not in the tables, or when an entry disagrees with the table
 * (argument or parameter count, LazyTensor method building another op).
 *
 * Usage:
 *   npx tsx scripts/gen-formula-reference.ts           # writes docs/formula-reference.md
 *   npx tsx scripts/gen-formula-reference.ts --check   # exits 1 when the file is out of date
 * test/docs/formula-reference.spec.ts runs the check with the test suite.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ReductionNode } from '../src/nodes/reduction.js';
import { Vi, Vj, LazyTensor } from '../src/index.js';
import { hasGradient } from '../src/ops/reduction-grads.js';
import { mkVar, type Formula } from '../src/graph/formula.js';
import { op } from '../src/ops/build.js';
import type { OpDef } from '../src/ops/op.js';
import { elementwiseOps } from '../src/ops/elementwise.js';
import { OPS } from '../src/ops/table.js';
import { linalgOps } from '../src/ops/linalg.js';
import { specialOps } from '../src/ops/special.js';
import { vectorOps } from '../src/ops/vector.js';
import { REDUCTIONS, type ReductionName } from '../src/ops/reductions.js';

/** The hand-written part of one op's entry. */
interface OpDoc {
  /** One-line definition. */
  readonly def: string;
  /** Names of the formula arguments (as many as the op's arity). */
  readonly args: readonly string[];
  /** Names of the static parameters (as many as nParams; for variadic ops, a description). */
  readonly params?: readonly string[];
  /** Argument dimensions and parameters of a sample call, run through the op's `dim` rule and `vjp`. */
  readonly sample: { readonly dims: readonly number[]; readonly params?: readonly number[] };
  /** Infix spelling in formula strings, if any (e.g. `a + b`). */
  readonly infix?: string;
  /** LazyTensor spelling over `a`, `b`, `c`; evaluated on sample tensors and checked to build this op. */
  readonly lazy?: string;
  /** A note on KeOps compatibility or an edge case. */
  readonly note?: string;
  /** Why the vjp gives only symbolic zeros, when it does (default: 'piecewise constant'). */
  readonly zero?: string;
}

/** One line per op of OPS. Keep in the table's order; the script fails if one is missing. */
const DEFS: Readonly<Record<string, OpDoc>> = {
  // ---- elementwise (a dimension-1 operand broadcasts against a dimension-D one)
  Add: { def: 'a + b, elementwise', args: ['a', 'b'], sample: { dims: [3, 3] }, infix: 'a + b', lazy: 'a.add(b)' },
  Subtract: { def: 'a - b, elementwise', args: ['a', 'b'], sample: { dims: [3, 3] }, infix: 'a - b', lazy: 'a.sub(b)' },
  Mult: { def: 'a * b, elementwise', args: ['a', 'b'], sample: { dims: [3, 1] }, infix: 'a * b', lazy: 'a.mul(b)' },
  Divide: { def: 'a / b, elementwise', args: ['a', 'b'], sample: { dims: [3, 3] }, infix: 'a / b', lazy: 'a.div(b)' },
  Minus: { def: '-a', args: ['a'], sample: { dims: [3] }, infix: '-a', lazy: 'a.neg()' },
  Exp: { def: 'exp(a)', args: ['a'], sample: { dims: [3] }, lazy: 'a.exp()' },
  Square: { def: 'a², elementwise', args: ['a'], sample: { dims: [3] }, lazy: 'a.square()' },
  Log: { def: 'log(a)', args: ['a'], sample: { dims: [3] }, lazy: 'a.log()' },
  Sin: { def: 'sin(a)', args: ['a'], sample: { dims: [3] }, lazy: 'a.sin()' },
  Cos: { def: 'cos(a)', args: ['a'], sample: { dims: [3] }, lazy: 'a.cos()' },
  Asin: { def: 'arcsin(a)', args: ['a'], sample: { dims: [3] }, lazy: 'a.asin()' },
  Acos: { def: 'arccos(a)', args: ['a'], sample: { dims: [3] }, lazy: 'a.acos()' },
  Atan: { def: 'arctan(a)', args: ['a'], sample: { dims: [3] }, lazy: 'a.atan()' },
  Atan2: { def: 'atan2(y, x), elementwise', args: ['y', 'x'], sample: { dims: [3, 3] }, lazy: 'a.atan2(b)' },
  Sqrt: { def: '√a', args: ['a'], sample: { dims: [3] }, lazy: 'a.sqrt()', note: "derivative at 0 is 0, as KeOps (Sqrt' = Rsqrt / 2)" },
  Rsqrt: { def: '1 / √a, with Rsqrt(0) = 0', args: ['a'], sample: { dims: [3] }, lazy: 'a.rsqrt()', note: 'KeOps convention: 0 at 0, so norms of zero vectors stay finite' },
  Pow: { def: 'a^m for a static integer m (square-and-multiply)', args: ['a'], params: ['m'], sample: { dims: [3], params: [3] }, lazy: 'a.pow(3)', note: '`a.pow(2)` builds Square' },
  Powf: { def: 'a^b = exp(b log a), elementwise', args: ['a', 'b'], sample: { dims: [3, 1] }, lazy: 'a.pow(b)', note: '`a.pow(x)` with a non-integer number also builds Powf' },
  Inv: { def: '1 / a', args: ['a'], sample: { dims: [3] }, lazy: 'a.inv()' },
  IntInv: { def: 'the constant 1/n for a nonzero integer n', args: [], params: ['n'], sample: { dims: [], params: [2] }, note: 'KeOps IntInv is a rational constant too: it has no formula argument' },
  Abs: { def: '|a|', args: ['a'], sample: { dims: [3] }, lazy: 'a.abs()' },
  Sign: { def: '1 if a > 0, -1 if a < 0, else 0 (also for -0 and NaN)', args: ['a'], sample: { dims: [3] }, lazy: 'a.sign()' },
  Step: { def: '0 if a < 0, else 1 (Step(0) = 1)', args: ['a'], sample: { dims: [3] }, lazy: 'a.step()' },
  ReLU: { def: 'max(a, 0)', args: ['a'], sample: { dims: [3] }, lazy: 'a.relu()', note: "ReLU' = Step, so 1 at 0 (KeOps)" },
  Floor: { def: 'floor(a)', args: ['a'], sample: { dims: [3] } },
  Round: { def: 'a rounded to d decimals, ties away from zero (C round)', args: ['a'], params: ['d'], sample: { dims: [3], params: [2] }, lazy: 'a.round(2)' },
  Mod: { def: 'x - n·floor((x - d) / n): in [d, d + n) for n > 0', args: ['x', 'n', 'd'], sample: { dims: [3, 1, 1] }, lazy: 'a.mod(b, c)', note: 'floor-based, unlike the % of JavaScript and WGSL' },
  Clamp: { def: 'lo if x < lo, else hi if x > hi, else x', args: ['x', 'lo', 'hi'], sample: { dims: [3, 1, 1] }, lazy: 'a.clamp(b, c)' },
  ClampInt: { def: 'Clamp(x, lo, hi) with static integer bounds', args: ['x'], params: ['lo', 'hi'], sample: { dims: [3], params: [0, 1] } },
  IfElse: { def: 'a where f ≥ 0, else b, elementwise', args: ['f', 'a', 'b'], sample: { dims: [3, 3, 3] }, lazy: 'a.ifelse(b, c)' },
  Equal: { def: '1 where a = b, else 0', args: ['a', 'b'], sample: { dims: [3, 3] }, lazy: 'a.eq(b)' },
  NotEqual: { def: '1 where a ≠ b, else 0', args: ['a', 'b'], sample: { dims: [3, 3] }, lazy: 'a.ne(b)' },
  LessThan: { def: '1 where a < b, else 0', args: ['a', 'b'], sample: { dims: [3, 3] }, lazy: 'a.lt(b)', note: '`b.gt(a)` builds it too' },
  LessOrEqual: { def: '1 where a ≤ b, else 0', args: ['a', 'b'], sample: { dims: [3, 3] }, lazy: 'a.le(b)', note: '`b.ge(a)` builds it too' },
  XLogX: { def: 'a·log(a), 0 at 0', args: ['a'], sample: { dims: [3] }, lazy: 'a.xlogx()' },
  SinXDivX: { def: 'sin(a)/a, 1 at 0', args: ['a'], sample: { dims: [3] }, lazy: 'a.sinxdivx()', note: '`a.sinc()` is pykeops\'s normalised sinc, SinXDivX(π·a)' },
  // ---- vector ops (over the vector dimension)
  Scalprod: { def: 'Σ_k a_k b_k (a dimension-1 operand broadcasts)', args: ['a', 'b'], sample: { dims: [3, 3] }, infix: 'a | b', lazy: 'a.dot(b)' },
  Sum: { def: 'Σ_k a_k', args: ['a'], sample: { dims: [3] }, lazy: 'a.sum(-1)' },
  Max: { def: 'max_k a_k (ties: lowest k)', args: ['a'], sample: { dims: [3] } },
  Min: { def: 'min_k a_k (ties: lowest k)', args: ['a'], sample: { dims: [3] } },
  ArgMax: { def: 'the k of max_k a_k, as a float', args: ['a'], sample: { dims: [3] } },
  ArgMin: { def: 'the k of min_k a_k, as a float', args: ['a'], sample: { dims: [3] } },
  SumT: { def: 'a (dimension 1) repeated d times: the adjoint of Sum', args: ['a'], params: ['d'], sample: { dims: [1], params: [3] }, note: '`Zero(d)` in formula strings is SumT(0, d)' },
  SqNorm2: { def: 'Σ_k a_k²', args: ['a'], sample: { dims: [3] }, lazy: 'a.sqnorm2()' },
  Norm2: { def: '√(Σ_k a_k²)', args: ['a'], sample: { dims: [3] }, lazy: 'a.norm2()' },
  Normalize: { def: 'a / |a| (the zero vector stays zero)', args: ['a'], sample: { dims: [3] }, lazy: 'a.normalize()' },
  SqDist: { def: '|a - b|² = Σ_k (a_k - b_k)²', args: ['a', 'b'], sample: { dims: [3, 3] }, lazy: 'a.sqdist(b)' },
  SqNormIso: { def: 's·|x|² (output has the dimension of s)', args: ['s', 'x'], sample: { dims: [1, 3] } },
  SqNormDiag: { def: 'Σ_k s_k x_k²', args: ['s', 'x'], sample: { dims: [3, 3] } },
  SymSqNorm: { def: 'Σ_kl A[k·D + l] x_k x_l, A of dimension D²', args: ['A', 'x'], sample: { dims: [9, 3] } },
  WeightedSqNorm: { def: 'SqNormIso, SqNormDiag or SymSqNorm as s has dimension 1, D or D²', args: ['s', 'x'], sample: { dims: [3, 3] }, lazy: 'b.weightedsqnorm(a)' },
  WeightedSqDist: { def: 'WeightedSqNorm(s, a - b)', args: ['s', 'a', 'b'], sample: { dims: [1, 3, 3] }, lazy: 'b.weightedsqdist(c, a)' },
  Concat: { def: 'the components of a, then those of b', args: ['a', 'b'], sample: { dims: [2, 3] }, lazy: 'a.concat(b)' },
  Elem: { def: 'component m of a', args: ['a'], params: ['m'], sample: { dims: [3], params: [1] }, lazy: 'a.elem(1)' },
  ElemT: { def: 'a vector of dimension n, a (dimension 1) at component m, zeros elsewhere', args: ['a'], params: ['n', 'm'], sample: { dims: [1], params: [3, 1] } },
  Extract: { def: 'components start … start + len - 1 of a', args: ['a'], params: ['start', 'len'], sample: { dims: [3], params: [1, 2] }, lazy: 'a.extract(1, 2)' },
  ExtractT: { def: 'a placed at offset start in a zero vector of dimension dim', args: ['a'], params: ['start', 'dim'], sample: { dims: [2], params: [1, 3] } },
  OneHot: { def: '1 at component trunc(a + 0.5), zeros elsewhere (all zeros outside [0, dim))', args: ['a'], params: ['dim'], sample: { dims: [1], params: [3] }, lazy: 'a.oneHot(3)' },
  // ---- small linear algebra (row-major, as pykeops)
  MatVecMult: { def: 'A v: A of dimension n·m is the row-major n×m matrix, v of dimension m', args: ['A', 'v'], sample: { dims: [6, 3] }, lazy: 'a.matvecmult(b)' },
  VecMatMult: { def: 'vᵀ A: v of dimension n, A of dimension n·p (row-major n×p)', args: ['v', 'A'], sample: { dims: [2, 6] }, lazy: 'a.vecmatmult(b)' },
  TensorProd: { def: 'outer product a bᵀ, flattened row-major', args: ['a', 'b'], sample: { dims: [2, 3] }, lazy: 'a.tensorprod(b)' },
  TensorDot: {
    def: 'contracts axes contA of a (shape dimsA) with axes contB of b (shape dimsB); free axes of a then b, optionally permuted',
    args: ['a', 'b'],
    params: ['dimsA, dimsB, contA, contB[, permute] as length-prefixed lists'],
    sample: { dims: [4, 4], params: [2, 2, 2, 2, 2, 2, 1, 1, 1, 0] },
    lazy: 'a.tensordot(b, [2, 2], [2, 2], [1], [0])',
    note: 'KeOps writes tuples, `TensorDot(a, b, (2,2), (2,2), (1,), (0,))`; here each tuple is its length then its entries: `TensorDot(a, b, 2,2,2, 2,2,2, 1,1, 1,0)`',
  },
  Kron: {
    def: 'Kronecker product of two tensors of the same rank (numpy.kron)',
    args: ['a', 'b'],
    params: ['dimsA, dimsB as length-prefixed lists'],
    sample: { dims: [4, 4], params: [2, 2, 2, 2, 2, 2] },
    lazy: 'a.kron(b, [2, 2], [2, 2])',
    note: 'tuples written as for TensorDot: `Kron(a, b, 2,2,2, 2,2,2)`',
  },
  // ---- special
  BSpline: { def: 'the K - order - 1 B-splines of degree `order` on the knot vector (dimension K), at x (dimension 1)', args: ['knots', 'x'], params: ['order'], sample: { dims: [6, 1], params: [2] }, lazy: 'a.bspline(b, 2)', note: 'no gradient with respect to the knots, as keopscore' },
  SoftDTW_SqDist: { def: 'soft dynamic time warping cost between the series x (dimension n) and y (dimension m), squared differences, smoothing gamma', args: ['x', 'y', 'gamma'], sample: { dims: [3, 4, 1] }, lazy: 'a.softdtwSqdist(b, c)' },
  GradSoftDTW_SqDist: { def: 'the gradient of SoftDTW_SqDist with respect to x, y and gamma, concatenated (dimension n + m + 1)', args: ['x', 'y', 'gamma'], sample: { dims: [3, 4, 1] }, note: "keopscore's op of that name has no gamma part", zero: 'second derivatives of soft-DTW are not provided' },
};

/** The hand-written part of one reduction's entry. */
interface ReductionDoc {
  readonly def: string;
  /** LazyTensor spelling over `F` (a scalar LazyTensor over i and j) and `W` (a j-variable of dimension 2); checked. */
  readonly lazy: string;
  /** The axis 1 call of genred (`formula2` and K where they apply). */
  readonly genred: string;
  readonly note?: string;
}

const REDUCTION_DEFS: Readonly<Record<ReductionName, ReductionDoc>> = {
  Sum: { def: 'Σ_j F_ij', lazy: 'F.sum(1)', genred: "{ reduction: 'Sum', axis: 1 }", note: '`K.matmul(b)` is `K.mul(Vj(b)).sum(1)`' },
  LogSumExp: {
    def: 'log Σ_j exp(F_ij), or log Σ_j exp(F_ij)·W_ij with a weight (then F scalar)',
    lazy: 'F.logsumexp(1, { weight: W })',
    genred: "{ reduction: 'LogSumExp', formula2: 'w', axis: 1 }",
    note: 'running max, so no overflow; without a weight each coordinate of F reduces alone',
  },
  SumSoftMaxWeight: {
    def: 'Σ_j exp(F_ij)·W_ij / Σ_j exp(F_ij) (F scalar)',
    lazy: 'F.sumSoftmaxWeight(W, 1)',
    genred: "{ reduction: 'SumSoftMaxWeight', formula2: 'w', axis: 1 }",
  },
  Min: { def: 'min_j F_ij, per coordinate', lazy: 'F.min(1)', genred: "{ reduction: 'Min', axis: 1 }" },
  Max: { def: 'max_j F_ij, per coordinate', lazy: 'F.max(1)', genred: "{ reduction: 'Max', axis: 1 }" },
  ArgMin: { def: 'argmin_j F_ij, per coordinate (ties: lowest j)', lazy: 'F.argmin(1)', genred: "{ reduction: 'ArgMin', axis: 1 }" },
  ArgMax: { def: 'argmax_j F_ij, per coordinate (ties: lowest j)', lazy: 'F.argmax(1)', genred: "{ reduction: 'ArgMax', axis: 1 }" },
  Min_ArgMin: { def: 'Min and ArgMin in one pass', lazy: 'F.minArgmin(1)', genred: "{ reduction: 'Min_ArgMin', axis: 1 }", note: 'resolves to `[values, indices]`' },
  Max_ArgMax: { def: 'Max and ArgMax in one pass', lazy: 'F.maxArgmax(1)', genred: "{ reduction: 'Max_ArgMax', axis: 1 }", note: 'resolves to `[values, indices]`' },
  KMin: { def: 'the K smallest F_ij over j, ascending, per coordinate', lazy: 'F.kmin(5, 1)', genred: "{ reduction: 'KMin', K: 5, axis: 1 }", note: 'K larger than the reduced extent is a ReductionError' },
  ArgKMin: { def: 'the indices j of the K smallest F_ij (ties: lowest j first)', lazy: 'F.argKmin(5, 1)', genred: "{ reduction: 'ArgKMin', K: 5, axis: 1 }" },
  KMin_ArgKMin: { def: 'KMin and ArgKMin in one pass', lazy: 'F.kminArgKmin(5, 1)', genred: "{ reduction: 'KMin_ArgKMin', K: 5, axis: 1 }", note: 'resolves to `[values, indices]`' },
};

function fail(msg: string): never {
  throw new Error(`gen-formula-reference: ${msg}`);
}

const cell = (s: string): string => s.replace(/\|/g, '\\|');
const code = (s: string): string => `\`${s.replace(/\|/g, '\\|')}\``;

/** `Name(a, b, p)` as written in formula strings. */
function syntax(def: OpDef, doc: OpDoc): string {
  const params = def.nParams < 0 ? ['…'] : (doc.params ?? []);
  return `${def.name}(${[...doc.args, ...params].join(', ')})`;
}

/** A LazyTensor of dimension d over i (a) or j (b, c), on throwaway data. */
function sampleTensor(d: number, cat: 'i' | 'j'): LazyTensor {
  const t = { data: new Float32Array(2 * d), shape: [2, d] };
  return cat === 'i' ? Vi(t) : Vj(t);
}

/** Evaluates a LazyTensor spelling on sample tensors of the given dims and returns the op it builds. */
function lazyOp(expr: string, dims: readonly number[]): string {
  const [a, b, c] = [sampleTensor(dims[0] ?? 1, 'i'), sampleTensor(dims[1] ?? 1, 'j'), sampleTensor(dims[2] ?? 1, 'j')];
  const built = new Function('a', 'b', 'c', `return ${expr};`)(a, b, c) as unknown;
  if (!(built instanceof LazyTensor)) fail(`'${expr}' did not build a LazyTensor`);
  const f = built.formula;
  return f.kind === 'op' ? f.op : f.kind;
}

/** Which arguments the op's vjp gives a cotangent (true) or a symbolic zero (false), on the sample. */
function gradientOf(def: OpDef, doc: OpDoc): string {
  if (def.vjp === undefined) return 'no';
  if (def.arity === 0) return '— (a constant)';
  const args: Formula[] = doc.sample.dims.map((d, k) => mkVar(k, d, 0));
  const node = op(def.name, args, doc.sample.params ?? []);
  const g = mkVar(args.length, node.dim, 0);
  const cots = def.vjp(node, g);
  if (cots.length !== def.arity) fail(`${def.name}: vjp gave ${cots.length} cotangents for ${def.arity} arguments`);
  const live = doc.args.filter((_, k) => cots[k] !== null);
  if (live.length === 0) return `0 (${doc.zero ?? 'piecewise constant'})`;
  if (live.length === def.arity) return 'yes';
  return `in ${live.join(', ')} only`;
}

/** Output dimension of the sample call, as `(dims) → out`. */
function dimsOf(def: OpDef, doc: OpDoc): string {
  const node = op(def.name, doc.sample.dims.map((d, k) => mkVar(k, d, 0)), doc.sample.params ?? []);
  const ps = doc.sample.params?.length ? `; ${doc.sample.params.join(', ')}` : '';
  return `(${doc.sample.dims.join(', ')}${ps}) → ${node.dim}`;
}

function opRows(defs: readonly OpDef[]): string[] {
  const rows = [
    '| Op (KeOps name) | Formula string | LazyTensor | Definition | Sample dims → output | Gradient |',
    '|---|---|---|---|---|---|',
  ];
  for (const def of defs) {
    const doc = DEFS[def.name]!;
    const str = [code(syntax(def, doc)), ...(doc.infix === undefined ? [] : [code(doc.infix)])].join(' or ');
    const lazy = doc.lazy === undefined ? '—' : code(doc.lazy);
    const definition = cell(doc.def) + (doc.note === undefined ? '' : ` *(${cell(doc.note)})*`);
    rows.push(`| **${def.name}** | ${str} | ${lazy} | ${definition} | ${dimsOf(def, doc)} | ${gradientOf(def, doc)} |`);
  }
  return rows;
}

/** Checks the hand tables against OPS: every op documented, nothing stale, counts and spellings agree. */
function checkOps(): void {
  const missing = [...OPS.keys()].filter((n) => !(n in DEFS));
  if (missing.length > 0) fail(`no definition line for op(s) ${missing.join(', ')}: add them to DEFS in scripts/gen-formula-reference.ts`);
  const stale = Object.keys(DEFS).filter((n) => !OPS.has(n));
  if (stale.length > 0) fail(`DEFS documents op(s) not in OPS: ${stale.join(', ')}`);
  for (const [name, def] of OPS) {
    const doc = DEFS[name]!;
    if (doc.args.length !== def.arity) fail(`${name}: DEFS names ${doc.args.length} argument(s), OPS says arity ${def.arity}`);
    if (doc.sample.dims.length !== def.arity) fail(`${name}: the sample has ${doc.sample.dims.length} argument dims for arity ${def.arity}`);
    if (def.nParams >= 0 && (doc.params ?? []).length !== def.nParams) {
      fail(`${name}: DEFS names ${(doc.params ?? []).length} parameter(s), OPS says nParams ${def.nParams}`);
    }
    if (doc.lazy !== undefined) {
      const got = lazyOp(doc.lazy, doc.sample.dims);
      if (got !== name) fail(`${name}: the LazyTensor spelling '${doc.lazy}' builds ${got}, not ${name}`);
    }
  }
}

/** `[rows, …]` of one reduction output, with the sample sizes named back (D, E, K). */
function shapeText(rowShape: readonly number[], names: ReadonlyMap<number, string>, rows: string): string {
  return `[${[rows, ...rowShape.map((n) => names.get(n) ?? String(n))].join(', ')}]`;
}

function reductionRows(): string[] {
  const missing = [...REDUCTIONS.keys()].filter((n) => !(n in REDUCTION_DEFS));
  if (missing.length > 0) fail(`no definition line for reduction(s) ${missing.join(', ')}`);
  const stale = Object.keys(REDUCTION_DEFS).filter((n) => !REDUCTIONS.has(n as ReductionName));
  if (stale.length > 0) fail(`REDUCTION_DEFS documents reduction(s) not in REDUCTIONS: ${stale.join(', ')}`);
  // Sample sizes chosen distinct so the printed shapes can name them: D = 7, weight E = 11, K = 5.
  const D = 7;
  const E = 11;
  const K = 5;
  const names = new Map([[D, 'D'], [E, 'E'], [K, 'K'], [1, '1']]);
  const rows = [
    '| Reduction (KeOps name) | Definition (axis 1: over j) | LazyTensor | genred options | Weight | Output, F scalar | Output, F of dim D | Gradient |',
    '|---|---|---|---|---|---|---|---|',
  ];
  const F = sampleTensor(1, 'i').sqdist(sampleTensor(1, 'j'));
  const W = sampleTensor(2, 'j');
  for (const [name, red] of REDUCTIONS) {
    const doc = REDUCTION_DEFS[name];
    const built = new Function('F', 'W', `return ${doc.lazy};`)(F, W) as unknown;
    const first = Array.isArray(built) ? (built[0] as unknown) : built;
    if (!(first instanceof ReductionNode) || first.spec.reduction !== name) {
      fail(`${name}: the LazyTensor spelling '${doc.lazy}' does not build a ${name} reduction`);
    }
    const variant = (fDim: number, gDim: number): string => {
      try {
        red.check(fDim, gDim, K);
      } catch {
        return '— (F must be scalar)';
      }
      return red
        .outputs(fDim, gDim, K)
        .map((x) => `${shapeText(x.rowShape, names, 'M')} ${x.int ? 'int32' : 'float32'}`)
        .join(' + ');
    };
    const outs = (fDim: number): string => {
      if (red.weight === 'required') return variant(fDim, E);
      if (red.weight === 'none') return variant(fDim, 0);
      const weighted = variant(fDim, E);
      return weighted.startsWith('—') ? variant(fDim, 0) : `${variant(fDim, 0)}; weighted: ${weighted}`;
    };
    const weight = red.weight === 'none' ? '—' : red.weight === 'optional' ? 'optional (`formula2`, dim E)' : 'required (`formula2`, dim E)';
    const grad = !hasGradient(name)
      ? '0 (indices)'
      : ['Min', 'Max', 'Min_ArgMin', 'Max_ArgMax', 'KMin', 'KMin_ArgKMin'].includes(name)
        ? `yes${name.includes('_') ? ' (values)' : ''}: to the selected entries, away from ties`
        : 'yes';
    const definition = cell(doc.def) + (doc.note === undefined ? '' : ` *(${cell(doc.note)})*`);
    rows.push(`| **${name}** | ${definition} | ${code(doc.lazy)} | ${code(doc.genred)} | ${weight} | ${outs(1)} | ${outs(D)} | ${grad} |`);
  }
  return rows;
}

/** The whole Markdown document. */
export function render(): string {
  checkOps();
  const groups: [string, string, readonly OpDef[]][] = [
    ['Elementwise', 'Binary and ternary ops take operands of equal dimension, or a dimension-1 operand broadcast against a dimension-D one.', elementwiseOps],
    ['Vector', 'Reductions over the vector dimension (output dimension 1), norms and distances, slicing.', vectorOps],
    ['Linear algebra', 'Matrices and tensors are stored flat in row-major order, as pykeops does.', linalgOps],
    ['Special', '', specialOps],
  ];
  const seen = new Set(groups.flatMap(([, , ds]) => ds.map((d) => d.name)));
  const other = [...OPS.values()].filter((d) => !seen.has(d.name));
  if (other.length > 0) groups.push(['Other', '', other]);
  const out: string[] = [
    '# Formula reference',
    '',
    '<!-- Generated by scripts/gen-formula-reference.ts from OPS (src/ops) and REDUCTIONS',
    '     (src/ops/reductions.ts). Do not edit: change the tables or the script, then run',
    '     `npx tsx scripts/gen-formula-reference.ts`. -->',
    '',
    `Every operation (${OPS.size}) and reduction (${REDUCTIONS.size}) kernelflow knows. Names are KeOps's: each op is`,
    'called by its name in formula strings (`genred`, `kernelSolve`, `fromJSON`) and most have a',
    'LazyTensor method. Columns:',
    '',
    '- **Formula string**: the call in a KeOps formula string. Formula arguments come first, then',
    '  static parameters, which must be numeric literals (`Pow(x, 3)`, `Elem(x, 0)`).',
    '- **Sample dims → output**: the op\'s own dimension rule run on one example: the argument',
    '  dimensions (then the static parameters) and the output dimension it gives.',
    '- **Gradient**: what the op\'s vector-Jacobian product (`vjp` in its table entry) gives on that',
    '  example: `yes` for every argument, `in … only` when the others get a symbolic zero, `0` for a',
    '  piecewise-constant op, `no` when the op has no vjp at all. Formulas are differentiated by',
    '  `grad()`, or by `Grad(F, x, e)` / `GradMatrix(F, x)` inside a formula string.',
    ...([...OPS.values()].every((d) => d.vjp !== undefined) ? ['  Every op of this table has a vjp.'] : []),
    '',
    '## Variables, constants and gradient forms in formula strings',
    '',
    'These are handled by the parser, not by the op table.',
    '',
    '| Form | Meaning |',
    '|---|---|',
    '| `Vi(dim)`, `Vj(dim)`, `Pm(dim)` in an alias (`\'x = Vi(3)\'`) | a variable indexed by i, by j, or a parameter; its index is its position in the alias list |',
    '| `Vi(index, dim)`, `Vj(index, dim)`, `Pm(index, dim)` | the same with an explicit index (argument position) |',
    '| `Var(index, dim, cat)` | KeOps\'s general form: cat 0 = i, 1 = j, 2 = parameter |',
    '| `2`, `0.5`, `1e-3`, `IntCst(n)`, `Cst(x)` | numeric constants (dimension 1, broadcast); float literals are accepted, unlike pykeops |',
    '| `Zero(d)` | the zero vector of dimension d |',
    '| `Grad(F, x, e)` | the gradient of ⟨F, e⟩ with respect to the variable x (e has F\'s dimension), expanded symbolically |',
    '| `GradMatrix(F, x)` | the transposed Jacobian: `Grad(F, x, e_k)` for each basis vector e_k, concatenated |',
    '',
    'Infix operators, loosest first as in Python: `|` (Scalprod), `+ -`, `* /`, unary `-`. There is no',
    '`^`: use `Pow(f, n)`, `Square(f)`, `Sqrt(f)`, `Rsqrt(f)` or `Powf(f, g)`.',
    '',
  ];
  for (const [title, intro, defs] of groups) {
    out.push(`## ${title} ops`, '');
    if (intro !== '') out.push(intro, '');
    out.push(...opRows(defs), '');
  }
  out.push(
    '## Reductions',
    '',
    'A reduction turns a symbolic M×N formula F into a dense result: `axis: 1` reduces over j (one row',
    'per i, M rows), `axis: 0` over i (N rows); the definitions below are written for axis 1. `genred`\'s',
    '`axis` defaults to 0, as pykeops\'s; LazyTensor reductions always take the axis. M and N come from',
    'the arguments (every i- and j-argument passed, read by the simplified formula or not); an index',
    'without any argument has extent 1. The shapes are computed by the',
    'reduction\'s own `outputs` hook (here with D = dimension of F, E = dimension of the weight,',
    'K = the K of the KMin family); with `axis: 0` the M rows become N. Ties resolve to the lowest',
    'index first.',
    '',
    ...reductionRows(),
    '',
    'Gradients: a reduction\'s gradient with respect to an i-variable is one fused reduction over j, a',
    'j-variable\'s a reduction over i, a parameter\'s a reduction then a sum over rows (see',
    '`grad()` in the API reference). Index outputs carry no gradient.',
    '',
  );
  return out.join('\n');
}

const target = new URL('../docs/formula-reference.md', import.meta.url);

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = render();
  if (process.argv.includes('--check')) {
    let old = '';
    try {
      old = readFileSync(target, 'utf8');
    } catch {
      // missing: out of date
    }
    if (old !== text) {
      console.error('docs/formula-reference.md is out of date: run npx tsx scripts/gen-formula-reference.ts');
      process.exit(1);
    }
    console.log('docs/formula-reference.md is up to date');
  } else {
    writeFileSync(target, text);
    console.log(`wrote docs/formula-reference.md (${OPS.size} ops, ${REDUCTIONS.size} reductions)`);
  }
}
