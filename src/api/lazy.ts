import { DimensionError, KernelflowError, ReductionError } from '../errors.js';
import { mapVars, mkConst, mkVar, variables, Cat, type Formula } from '../graph/formula.js';
import { printFormula } from '../graph/print.js';
import { op } from '../ops/build.js';
import { encodeKronParams, encodeTensorDotParams } from '../ops/linalg.js';
import { makePlan } from '../kernel/plan.js';
import { SolveNode } from '../nodes/solve.js';
import type { SolveOptions } from '../solve/kernel-solve.js';
import { reductionNodes, staticBatch } from '../nodes/reduction.js';
import { executeReduction } from '../scheduler/execute.js';
import { Node } from '../nodes/node.js';
import { SourceNode } from '../nodes/source.js';
import type { FloatArray, Tensor, TensorLike } from '../tensor.js';
import { checkReduceOptions, type ReduceOptions } from './options.js';
import { asNode, canonical, exactly, lastDim, swappedUid, uidFor } from './bindings.js';
import { show } from '../options.js';

/** Data a LazyTensor variable reads: a graph node, or dense data lifted as a constant source. */
type Bound = Node;

/**
 * An operand of a LazyTensor method: another LazyTensor or a number (a constant, broadcast).
 * @example
 * ```ts
 * import { Vi, Vj, type Operand } from 'kernelflow';
 * const x = Vi({ data: new Float32Array([1, 2]), shape: [2, 1] });
 * const y = Vj({ data: new Float32Array([3, 4, 5]), shape: [3, 1] });
 * const scale: Operand = 0.5;
 * const shifted: Operand = y;
 * console.log(x.mul(scale).add(shifted).formulaString); // ((Var(0,1,0) * Cst(0.5)) + Var(1,1,1))
 * ```
 */
export type Operand = LazyTensor | number;

/**
 * A symbolic M×N formula, never materialised (KeOps LazyTensor). Build it from `Vi`, `Vj`, `Pm`,
 * chain elementwise and vector ops, then reduce over an axis to get a graph Node. The other
 * operand of a binary op is a LazyTensor or a number; a dimension-1 operand broadcasts against a
 * dimension-D one. Reductions take the axis: 1 reduces over j (M rows out), 0 over i (N rows).
 * Every method's op is listed, with its KeOps name, in docs/formula-reference.md.
 * @example
 * ```ts
 * import { source, Vi, Vj } from 'kernelflow';
 * const x = source(new Float32Array(30), [10, 3]);
 * const y = source(new Float32Array(60), [20, 3]);
 * const K = Vi(x).sqdist(Vj(y)).neg().exp();   // symbolic (10, 20)
 * const s = await K.sum(1).read();               // Tensor of shape [10, 1]
 * console.log(s.shape, s.data[0]);               // [10, 1] 20
 * ```
 */
export class LazyTensor {
  /** @internal */
  constructor(
    /** @internal The formula IR (variables numbered by uid; `formulaString` prints the canonical form). */
    readonly formula: Formula,
    /** @internal variable uid -> bound node */
    readonly bindings: ReadonlyMap<number, Bound>,
  ) {}

  /** Vector dimension of each (i, j) entry. */
  get dim(): number {
    return this.formula.dim;
  }

  private lift(o: Operand): LazyTensor {
    return typeof o === 'number' ? new LazyTensor(mkConst(o), new Map()) : o;
  }

  /** Applies a table op to this tensor and more operands. */
  private apply(name: string, others: readonly Operand[] = [], params: readonly number[] = []): LazyTensor {
    const ts = [this, ...others.map((o) => this.lift(o))];
    const bindings = new Map<number, Bound>();
    for (const t of ts) t.bindings.forEach((v, k) => bindings.set(k, v));
    return new LazyTensor(op(name, ts.map((t) => t.formula), params), bindings);
  }

  /** `this + o`, elementwise (KeOps `Add`, `+`). */
  add(o: Operand): LazyTensor { return this.apply('Add', [o]); }
  /** `this - o`, elementwise (KeOps `Subtract`, `-`). */
  sub(o: Operand): LazyTensor { return this.apply('Subtract', [o]); }
  /** `this * o`, elementwise (KeOps `Mult`, `*`). */
  mul(o: Operand): LazyTensor { return this.apply('Mult', [o]); }
  /** `this / o`, elementwise (KeOps `Divide`, `/`). */
  div(o: Operand): LazyTensor { return this.apply('Divide', [o]); }
  /** `-this` (KeOps `Minus`). */
  neg(): LazyTensor { return this.apply('Minus'); }
  /** `this ^ p`, elementwise: integer powers use KeOps `Pow` (`Square` for 2), others `Powf`. */
  pow(p: Operand): LazyTensor {
    if (typeof p === 'number' && Number.isInteger(p)) return p === 2 ? this.square() : this.apply('Pow', [], [p]);
    return this.apply('Powf', [p]);
  }
  /** `this²`, elementwise (KeOps `Square`). */
  square(): LazyTensor { return this.apply('Square'); }
  /** `√this`, elementwise (KeOps `Sqrt`). */
  sqrt(): LazyTensor { return this.apply('Sqrt'); }
  /** `1/√this`, elementwise, 0 at 0 (KeOps `Rsqrt`). */
  rsqrt(): LazyTensor { return this.apply('Rsqrt'); }
  /** `exp(this)`, elementwise (KeOps `Exp`). */
  exp(): LazyTensor { return this.apply('Exp'); }
  /** `log(this)`, elementwise (KeOps `Log`). */
  log(): LazyTensor { return this.apply('Log'); }
  /** `|this|`, elementwise (KeOps `Abs`). */
  abs(): LazyTensor { return this.apply('Abs'); }
  /** The sign (-1, 0 or 1), elementwise (KeOps `Sign`). */
  sign(): LazyTensor { return this.apply('Sign'); }
  /** 0 where `this < 0`, else 1 (KeOps `Step`). */
  step(): LazyTensor { return this.apply('Step'); }
  /** `max(this, 0)`, elementwise (KeOps `ReLU`). */
  relu(): LazyTensor { return this.apply('ReLU'); }
  /** `sin(this)`, elementwise (KeOps `Sin`). */
  sin(): LazyTensor { return this.apply('Sin'); }
  /** `cos(this)`, elementwise (KeOps `Cos`). */
  cos(): LazyTensor { return this.apply('Cos'); }
  /** `atan2(this, x)`, elementwise: this is the y coordinate (KeOps `Atan2`). */
  atan2(x: Operand): LazyTensor { return this.apply('Atan2', [x]); }
  /** `1/this`, elementwise (KeOps `Inv`). */
  inv(): LazyTensor { return this.apply('Inv'); }
  /** `this` clamped to `[lo, hi]`, elementwise (KeOps `Clamp`). */
  clamp(lo: Operand, hi: Operand): LazyTensor { return this.apply('Clamp', [lo, hi]); }
  /** `this >= 0 ? a : b`, elementwise (KeOps IfElse). */
  ifelse(a: Operand, b: Operand): LazyTensor { return this.apply('IfElse', [a, b]); }
  /** KeOps Mod(x, modulus, offset). */
  mod(modulus: Operand, offset: Operand = 0): LazyTensor { return this.apply('Mod', [modulus, offset]); }
  /** Rounds to `decimals` decimals (KeOps Round). */
  round(decimals = 0): LazyTensor { return this.apply('Round', [], [decimals]); }
  /** `Σ_k this_k²`, dimension 1 (KeOps `SqNorm2`). */
  sqnorm2(): LazyTensor { return this.apply('SqNorm2'); }
  /** `√(Σ_k this_k²)`, dimension 1 (KeOps `Norm2`). */
  norm2(): LazyTensor { return this.apply('Norm2'); }
  /** `this / |this|`; the zero vector stays zero (KeOps `Normalize`). */
  normalize(): LazyTensor { return this.apply('Normalize'); }
  /** `|this - o|²`, dimension 1 (KeOps `SqDist`). */
  sqdist(o: Operand): LazyTensor { return this.apply('SqDist', [o]); }
  /** Scalar product over the vector dimension (KeOps `|`). */
  dot(o: Operand): LazyTensor { return this.apply('Scalprod', [o]); }
  /** The components of this, then those of o (KeOps `Concat`). */
  concat(o: Operand): LazyTensor { return this.apply('Concat', [o]); }
  /** Component m, dimension 1 (KeOps `Elem`). */
  elem(m: number): LazyTensor { return this.apply('Elem', [], [m]); }
  /** Components `start .. start + len - 1` (KeOps `Extract`). */
  extract(start: number, len: number): LazyTensor { return this.apply('Extract', [], [start, len]); }
  /** This (dim n·m, row-major matrix) times v (dim m). */
  matvecmult(v: Operand): LazyTensor { return this.apply('MatVecMult', [v]); }
  /** This (dim n) times the row-major matrix A (dim n·p): dimension p (KeOps `VecMatMult`). */
  vecmatmult(A: Operand): LazyTensor { return this.apply('VecMatMult', [A]); }
  /** Outer product of this and o, flattened row-major: dimension dim·dim(o) (KeOps `TensorProd`). */
  tensorprod(o: Operand): LazyTensor { return this.apply('TensorProd', [o]); }
  /**
   * KeOps `TensorDot` (pykeops `keops_tensordot`): this is a tensor of shape `dimsA`, o one of
   * shape `dimsB` (each shape's product is the vector dimension); axes `contA` of this are
   * contracted with axes `contB` of o; the free axes (this's, then o's) form the result,
   * permuted by `permute` when given (free axis k becomes output axis `permute[k]`). A number
   * stands for a one-axis shape.
   * @example
   * ```ts
   * import { Vi, Vj } from 'kernelflow';
   * const A = Vi({ data: Float32Array.of(1, 2, 3, 4), shape: [1, 4] });   // a 2x2 matrix per point
   * const B = Vj({ data: Float32Array.of(0, 1, 1, 0), shape: [1, 4] });
   * const AB = A.tensordot(B, [2, 2], [2, 2], [1], [0]);                   // the matrix product A B
   * console.log((await AB.sum(1).read()).data);                            // Float32Array [2, 1, 4, 3]
   * ```
   */
  tensordot(
    o: LazyTensor,
    dimsA: number | readonly number[],
    dimsB: number | readonly number[],
    contA: number | readonly number[],
    contB: number | readonly number[],
    permute?: number | readonly number[],
  ): LazyTensor {
    const list = (v: number | readonly number[]): readonly number[] => (typeof v === 'number' ? [v] : v);
    return this.apply('TensorDot', [o], encodeTensorDotParams(list(dimsA), list(dimsB), list(contA), list(contB), permute === undefined ? undefined : list(permute)));
  }
  /**
   * Kronecker product (KeOps `Kron`, pykeops `keops_kron`) of this, a tensor of shape `dimsA`,
   * and o, of shape `dimsB` (same rank): shape `[dimsA[0]·dimsB[0], ...]`, flattened row-major, as numpy.kron.
   * @example
   * ```ts
   * import { Vi, Vj } from 'kernelflow';
   * const a = Vi({ data: Float32Array.of(1, 2), shape: [1, 2] });
   * const b = Vj({ data: Float32Array.of(1, 10, 100), shape: [1, 3] });
   * console.log((await a.kron(b, [2], [3]).sum(1).read()).data); // Float32Array [1, 10, 100, 2, 20, 200]
   * ```
   */
  kron(o: LazyTensor, dimsA: number | readonly number[], dimsB: number | readonly number[]): LazyTensor {
    const list = (v: number | readonly number[]): readonly number[] => (typeof v === 'number' ? [v] : v);
    return this.apply('Kron', [o], encodeKronParams(list(dimsA), list(dimsB)));
  }
  /** `arcsin(this)`, elementwise (KeOps `Asin`). */
  asin(): LazyTensor { return this.apply('Asin'); }
  /** `arccos(this)`, elementwise (KeOps `Acos`). */
  acos(): LazyTensor { return this.apply('Acos'); }
  /** `arctan(this)`, elementwise (KeOps `Atan`). */
  atan(): LazyTensor { return this.apply('Atan'); }
  /** `this·log(this)`, 0 at 0, elementwise (KeOps `XLogX`). */
  xlogx(): LazyTensor { return this.apply('XLogX'); }
  /** `sin(this)/this`, 1 at 0, elementwise (KeOps `SinXDivX`, pykeops `sinxdivx`). */
  sinxdivx(): LazyTensor { return this.apply('SinXDivX'); }
  /**
   * The normalised sinc, `sin(πx)/(πx)` (1 at 0), elementwise, as pykeops's `sinc` (and NumPy's):
   * KeOps `SinXDivX(π·this)`. {@link LazyTensor.sinxdivx} is the unnormalised one.
   * @example
   * ```ts
   * import { Vi, Vj } from 'kernelflow';
   * const x = Vi({ data: Float32Array.of(0, 0.5, 1), shape: [3, 1] });
   * const zero = Vj({ data: Float32Array.of(0), shape: [1, 1] });
   * console.log((await x.sub(zero).sinc().sum(1).read()).data); // ≈ [1, 0.6366, 0]
   * ```
   */
  sinc(): LazyTensor { return this.mul(Math.PI).sinxdivx(); }
  /** 1 where `this = o`, else 0, elementwise (KeOps `Equal`, pykeops `==`). */
  eq(o: Operand): LazyTensor { return this.apply('Equal', [o]); }
  /** 1 where `this ≠ o`, else 0 (KeOps `NotEqual`, pykeops `!=`). */
  ne(o: Operand): LazyTensor { return this.apply('NotEqual', [o]); }
  /** 1 where `this < o`, else 0 (KeOps `LessThan`, pykeops `<`). */
  lt(o: Operand): LazyTensor { return this.apply('LessThan', [o]); }
  /** 1 where `this ≤ o`, else 0 (KeOps `LessOrEqual`, pykeops `<=`). */
  le(o: Operand): LazyTensor { return this.apply('LessOrEqual', [o]); }
  /** 1 where `this > o`, else 0 (KeOps `LessThan(o, this)`, pykeops `>`). */
  gt(o: Operand): LazyTensor { return this.lift(o).apply('LessThan', [this]); }
  /** 1 where `this ≥ o`, else 0 (KeOps `LessOrEqual(o, this)`, pykeops `>=`). */
  ge(o: Operand): LazyTensor { return this.lift(o).apply('LessOrEqual', [this]); }
  /** The one-hot vector of dimension D with a 1 at component round(this) (this scalar; KeOps `OneHot`, pykeops `one_hot`). */
  oneHot(D: number): LazyTensor { return this.apply('OneHot', [], [D]); }
  /** The B-splines of degree `order` on this knot vector (dimension K), evaluated at x (dimension 1): dimension K - order - 1 (KeOps `BSpline`, pykeops `bspline`). */
  bspline(x: Operand, order = 0): LazyTensor { return this.apply('BSpline', [x], [order]); }
  /** Soft dynamic time warping cost between the series this and o, squared differences, smoothing gamma (KeOps `SoftDTW_SqDist`, pykeops `softdtw_sqdist`). */
  softdtwSqdist(o: Operand, gamma: Operand): LazyTensor { return this.apply('SoftDTW_SqDist', [o, gamma]); }
  /** `s`-weighted squared norm of this (KeOps `WeightedSqNorm`): s of dimension 1, D or D² (isotropic, diagonal, full). */
  weightedsqnorm(s: Operand): LazyTensor { return this.lift(s).apply('WeightedSqNorm', [this]); }
  /** `s`-weighted squared distance `WeightedSqNorm(s, this - o)` (KeOps `WeightedSqDist`). */
  weightedsqdist(o: Operand, s: Operand): LazyTensor { return this.lift(s).apply('WeightedSqDist', [this, o]); }

  /**
   * The transpose (pykeops `t()`, also `T`): i- and j-variables swap roles, so a reduction over
   * j of `K.t()` is the reduction over i of K. `Vi(x).t()` is `Vj(x)`.
   * @example
   * ```ts
   * import { Vi, Vj } from 'kernelflow';
   * const x = Vi({ data: Float32Array.of(0, 1), shape: [2, 1] });
   * const y = Vj({ data: Float32Array.of(0, 10, 20), shape: [3, 1] });
   * const K = x.sub(y).abs();                      // (2, 3)
   * console.log((await K.t().sum(1).read()).data); // = K.sum(0): Float32Array [1, 19, 39]
   * ```
   */
  t(): LazyTensor {
    const f = mapVars(this.formula, (v) => (v.cat === Cat.param ? v : mkVar(swappedUid(v.index), v.dim, v.cat === Cat.i ? Cat.j : Cat.i)));
    const bindings = new Map<number, Bound>();
    this.bindings.forEach((node, uid) => bindings.set(swappedUid(uid), node));
    return new LazyTensor(f, bindings);
  }
  /** The transpose, as {@link LazyTensor.t} (NumPy's and pykeops's `.T`). */
  get T(): LazyTensor {
    return this.t();
  }

  /**
   * `sum(-1)` (the default): inner sum over the vector dimension, a LazyTensor of dimension 1;
   * `sum(1)` / `sum(0)`: the Sum reduction over j / over i, a Node of shape `[M, D]` / `[N, D]`.
   * @example
   * ```ts
   * import { source, Vi, Vj } from 'kernelflow';
   * const x = source(new Float32Array([0, 0, 1, 1]), [2, 2]);
   * const y = source(new Float32Array([1, 0, 0, 1, 2, 2]), [3, 2]);
   * const d2 = Vi(x).sub(Vj(y)).square().sum(-1);    // |x_i - y_j|^2, symbolic
   * console.log((await d2.sum(1).read()).data);       // Float32Array [10, 4]
   * console.log((await d2.sum(0).read()).shape);      // [3, 1]
   * ```
   */
  sum(axis?: -1): LazyTensor;
  sum(axis: 0 | 1, opts?: ReduceOptions): Node<Tensor<FloatArray>>;
  sum(axis: -1 | 0 | 1 = -1, opts: ReduceOptions = {}): LazyTensor | Node<Tensor<FloatArray>> {
    if (axis === -1) return this.apply('Sum');
    return this.reduce('Sum', axis, opts);
  }
  /**
   * log(sum exp(F)) over an axis (running max: no overflow), optionally weighted:
   * log(sum exp(F) * weight), F then scalar (KeOps `LogSumExp`, `formula2`).
   */
  logsumexp(axis: 0 | 1, opts: ReduceOptions & { weight?: Operand } = {}): Node<Tensor<FloatArray>> {
    return this.reduce('LogSumExp', axis, opts, opts.weight);
  }
  /** Min reduction over an axis, per coordinate (KeOps `Min`): shape `[M, D]` for axis 1. */
  min(axis: 0 | 1, opts: ReduceOptions = {}): Node<Tensor<FloatArray>> { return this.reduce('Min', axis, opts); }
  /** Max reduction over an axis, per coordinate (KeOps `Max`). */
  max(axis: 0 | 1, opts: ReduceOptions = {}): Node<Tensor<FloatArray>> { return this.reduce('Max', axis, opts); }
  /** Index of the min over an axis, per coordinate, int32; ties: lowest index (KeOps `ArgMin`). */
  argmin(axis: 0 | 1, opts: ReduceOptions = {}): Node<Tensor<Int32Array>> { return this.reduce('ArgMin', axis, opts); }
  /** Index of the max over an axis, per coordinate, int32; ties: lowest index (KeOps `ArgMax`). */
  argmax(axis: 0 | 1, opts: ReduceOptions = {}): Node<Tensor<Int32Array>> { return this.reduce('ArgMax', axis, opts); }
  /** `[min, argmin]` in one kernel run (KeOps `Min_ArgMin`). */
  minArgmin(axis: 0 | 1, opts: ReduceOptions = {}): [Node<Tensor<FloatArray>>, Node<Tensor<Int32Array>>] { return this.reducePair('Min_ArgMin', axis, opts); }
  /** `[max, argmax]` in one kernel run (KeOps `Max_ArgMax`). */
  maxArgmax(axis: 0 | 1, opts: ReduceOptions = {}): [Node<Tensor<FloatArray>>, Node<Tensor<Int32Array>>] { return this.reducePair('Max_ArgMax', axis, opts); }
  /** The K smallest values over an axis, ascending: `[M, K]` for a scalar formula, `[M, K, D]` otherwise (KeOps `KMin`). */
  kmin(K: number, axis: 0 | 1, opts: ReduceOptions = {}): Node<Tensor<FloatArray>> { return this.reduce('KMin', axis, opts, undefined, K); }
  /** Indices of the K smallest values, int32, lowest index first on ties (KeOps `ArgKMin`). */
  argKmin(K: number, axis: 0 | 1, opts: ReduceOptions = {}): Node<Tensor<Int32Array>> { return this.reduce('ArgKMin', axis, opts, undefined, K); }
  /**
   * `[values, indices]` of the K smallest, in one kernel run (KeOps `KMin_ArgKMin`).
   * @example
   * ```ts
   * import { source, Vi, Vj } from 'kernelflow';
   * const x = source(new Float32Array([0, 10]), [2, 1]);
   * const y = source(new Float32Array([9, 1, 12, 2]), [4, 1]);
   * const [d, j] = Vi(x).sqdist(Vj(y)).kminArgKmin(2, 1);   // 2 nearest neighbours
   * console.log((await j.read()).data);                     // Int32Array [1, 3, 0, 2]
   * ```
   */
  kminArgKmin(K: number, axis: 0 | 1, opts: ReduceOptions = {}): [Node<Tensor<FloatArray>>, Node<Tensor<Int32Array>>] {
    return this.reducePair('KMin_ArgKMin', axis, opts, K);
  }
  /** sum_j exp(F) * weight / sum_j exp(F) (F scalar; KeOps `SumSoftMaxWeight`). */
  sumSoftmaxWeight(weight: Operand, axis: 0 | 1, opts: ReduceOptions = {}): Node<Tensor<FloatArray>> {
    return this.reduce('SumSoftMaxWeight', axis, opts, weight);
  }
  /**
   * `K_ij @ b`: sum over j of this (scalar) times b_j; b is a Node, TensorLike, or `Vj(b)`.
   * @example
   * ```ts
   * import { source, Vi, Vj } from 'kernelflow';
   * const x = source(new Float32Array([0, 1, 2]), [3, 1]);
   * const b = { data: new Float32Array([1, 1, 1, 2, 2, 2]), shape: [3, 2] };
   * const K = Vi(x).sqdist(Vj(x)).neg().exp();
   * console.log((await K.matmul(b).read()).shape); // [3, 2]
   * ```
   */
  matmul(b: LazyTensor | Node | TensorLike, opts: ReduceOptions = {}): Node<Tensor<FloatArray>> {
    return this.mul(b instanceof LazyTensor ? b : Vj(b)).sum(1, opts);
  }

  /**
   * Solves (alpha Id + K) c = b by conjugate gradient, K being this scalar formula over the same
   * n points (pykeops `K_xx.solve(b, alpha=...)`); b is a Node, TensorLike or `Vj(b)`. The result
   * is a {@link SolveNode} of b's shape; see {@link SolveOptions} for the preconditioner and the
   * stopping rule.
   * @example
   * ```ts
   * import { source, Vi, Vj } from 'kernelflow';
   * const n = 1000;
   * const x = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
   * const b = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
   * const K = Vi(x).sqdist(Vj(x)).mul(-50).exp();
   * const c = K.solve(b, { alpha: 0.01 });   // SolveNode, shape [n, 2]
   * console.log((await c.read()).shape, c.lastIterations);
   * ```
   */
  solve(b: LazyTensor | Node | TensorLike, opts: SolveOptions = {}): SolveNode {
    if (this.dim !== 1) throw new DimensionError(`solve: the kernel must be scalar, got dimension ${this.dim}`);
    let rhs: Node;
    if (b instanceof LazyTensor) {
      const only = b.formula.kind === 'var' ? b.bindings.get(b.formula.index) : undefined;
      if (only === undefined) throw new KernelflowError('ARGUMENT', 'solve: b must be data, a node or Vj(data)');
      rhs = only;
    } else rhs = asNode(b, 'b');
    const { formula, inputs } = canonical(this, []);
    return new SolveNode(formula, inputs, rhs, opts, lastDim(rhs));
  }

  /**
   * The formula as KeOps prints it, with variables numbered by first appearance (elided with
   * `...` past 10 000 characters: a DAG with shared subexpressions prints as a tree).
   * @example
   * ```ts
   * import { Vi, Vj } from 'kernelflow';
   * const x = Vi({ data: new Float32Array(6), shape: [2, 3] });
   * const y = Vj({ data: new Float32Array(9), shape: [3, 3] });
   * console.log(x.sub(y).square().sum(-1).formulaString); // Sum(Square((Var(0,3,0) - Var(1,3,1))))
   * ```
   */
  get formulaString(): string {
    return printFormula(canonical(this, []).formula);
  }

  /**
   * The symbolic shape, as pykeops's `LazyTensor.shape`: `[M, N]` for a scalar formula, `[M, N, D]`
   * for a vector one. M is the rows of the data bound to i-variables, N of the j-variables' (1 when
   * the formula has none, as in pykeops; -1 where the data's rows are known only once computed).
   * @example
   * ```ts
   * import { source, Vi, Vj } from 'kernelflow';
   * const x = source(new Float32Array(300), [100, 3]);
   * const y = source(new Float32Array(600), [200, 3]);
   * console.log(Vi(x).sqdist(Vj(y)).shape, Vi(x).sub(Vj(y)).shape); // [100, 200] [100, 200, 3]
   * ```
   */
  get shape(): number[] {
    const vars = variables(this.formula);
    const rows = (cat: Cat): number => {
      for (const v of vars) {
        if (v.cat !== cat) continue;
        const s = this.bindings.get(v.index)?.staticShape();
        return s === undefined ? -1 : s.length === 1 ? s[0]! : s[s.length - 2]!;
      }
      return 1;
    };
    // Leading batch dims broadcast over the variables, as pykeops's (..., M, N, D).
    const batch = staticBatch(vars.map((v) => ({ shape: this.bindings.get(v.index)?.staticShape(), param: v.cat === Cat.param })));
    const ij = [...batch, rows(Cat.i), rows(Cat.j)];
    return this.dim === 1 ? ij : [...ij, this.dim];
  }

  /**
   * For people (and `console.log` in Node), as pykeops prints a LazyTensor: the formula in KeOps
   * syntax and the shape, e.g. `LazyTensor Sum(Square((Var(0,3,0) - Var(1,3,1)))) shape [100, 200]`.
   * The formula alone is {@link LazyTensor.formulaString}.
   */
  toString(): string {
    return `LazyTensor ${this.formulaString} shape [${this.shape.map((d) => (d < 0 ? '?' : d)).join(', ')}]`;
  }

  /** @internal console.log / util.inspect in Node. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }

  /** One reduction node, typed by the caller (values or indices: the reduction decides). */
  private reduce<T extends Tensor>(name: string, axis: 0 | 1, opts: ReduceOptions, weight?: Operand, K?: number): Node<T> {
    return this.reduceAll(name, axis, opts, weight, K)[0]! as Node as Node<T>;
  }

  private reducePair(name: string, axis: 0 | 1, opts: ReduceOptions, K?: number): [Node<Tensor<FloatArray>>, Node<Tensor<Int32Array>>] {
    const [a, b] = this.reduceAll(name, axis, opts, undefined, K);
    return [a! as Node as Node<Tensor<FloatArray>>, b! as Node as Node<Tensor<Int32Array>>];
  }

  private reduceAll(name: string, axis: 0 | 1, opts: ReduceOptions, weight?: Operand, K?: number): Node[] {
    if (axis !== 0 && axis !== 1) {
      // pykeops's `sum(dim=1)` written as `sum({ dim: 1 })`: say where the axis goes.
      const hint = typeof axis === 'object' && axis !== null ? " (the axis is a number, the reduction's first argument: x.sum(1) for pykeops's sum(dim=1))" : '';
      throw new ReductionError(`${name}: axis must be 0 or 1, got ${show(axis)}${hint}`);
    }
    checkReduceOptions(name, opts);
    const w = weight === undefined ? undefined : this.lift(weight);
    const { formula, inputs, weightFormula } = canonical(this, w === undefined ? [] : [w]);
    return reductionNodes(formula, inputs, { reduction: name, axis, K, weight: weightFormula ?? null }, opts.backend, undefined, opts.ranges);
  }
}

function leaf(x: Node | TensorLike, cat: Cat, label: string): LazyTensor {
  if (x instanceof LazyTensor) throw new KernelflowError('ARGUMENT', `${label}: already a LazyTensor`);
  const node = asNode(x, label);
  const dim = cat === Cat.param && node instanceof SourceNode && node.shape.length <= 1 ? (node.shape[0] ?? 1) : lastDim(node);
  const uid = uidFor(x, cat);
  return new LazyTensor(mkVar(uid, dim, cat), new Map([[uid, node]]));
}

/**
 * Lifts data indexed by i (the kept axis of a reduction over j): a source node or dense data of
 * shape [M, D] becomes the variable x_i of dimension D. Dense data is copied into a constant
 * source; `Vi` of the same node (or data object) twice is the same variable.
 * @example
 * ```ts
 * import { Vi, Vj } from 'kernelflow';
 * const xi = Vi({ data: new Float32Array([0, 1, 2]), shape: [3, 1] });
 * const yj = Vj({ data: new Float32Array([0, 2]), shape: [2, 1] });
 * console.log((await xi.sub(yj).abs().min(1).read()).data); // Float32Array [0, 1, 0]
 * ```
 */
export function Vi(x: Node | TensorLike): LazyTensor {
  return leaf(x, Cat.i, 'Vi');
}

/**
 * Lifts data indexed by j (the reduced axis of a reduction over j): shape [N, D].
 * @example
 * ```ts
 * import { source, Vi, Vj } from 'kernelflow';
 * const x = source(new Float32Array([0, 0, 1, 1]), [2, 2]);
 * const y = source(new Float32Array([0, 1, 1, 0, 3, 3]), [3, 2]);
 * const nearest = Vi(x).sqdist(Vj(y)).argmin(1); // for each x_i, the index of the nearest y_j
 * console.log((await nearest.read()).data);       // Int32Array [0, 0]
 * ```
 */
export function Vj(x: Node | TensorLike): LazyTensor {
  return leaf(x, Cat.j, 'Vj');
}

/**
 * Lifts a parameter (no index): a number, an array, a TensorLike of shape [D] or [1, D], or a node.
 * A source node as parameter can be `set()` like any other, and differentiated by `grad`.
 * @example
 * ```ts
 * import { source, Vi, Vj, Pm } from 'kernelflow';
 * const x = source(new Float32Array([0, 1]), [2, 1]);
 * const g = source(new Float32Array([0.5]), [1]);
 * const K = Vi(x).sqdist(Vj(x)).mul(Pm(g)).neg().exp();    // exp(-g |x_i - x_j|^2)
 * const shifted = Vi(x).add(Pm([10])).sum(1);              // a constant parameter
 * console.log((await K.sum(1).read()).data, (await shifted.read()).data);
 * ```
 */
export function Pm(x: number | readonly number[] | Node | TensorLike): LazyTensor {
  // Numbers make float32 parameters (they never promote a computation) that a float64 one reads exactly.
  if (typeof x === 'number') return leaf({ data: exactly([x]), shape: [1] }, Cat.param, 'Pm');
  if (Array.isArray(x)) return leaf({ data: exactly(x as number[]), shape: [x.length] }, Cat.param, 'Pm');
  return leaf(x as Node | TensorLike, Cat.param, 'Pm');
}
