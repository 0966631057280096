import { DimensionError, KernelflowError, ReductionError } from '../errors.js';
import { mapVars, mkConst, mkVar, variables, type Cat, type Formula } from '../graph/formula.js';
import { op } from '../nodes/build.js';
import { makePlan } from '../nodes/plan.js';
import { SolveNode, type SolveOptions } from './solve.js';
import type { BackendChoice } from './backend.js';
import { executeReduction } from './execute.js';
import { Node, SourceNode } from './node.js';
import type { Tensor, TensorLike } from './tensor.js';

/** Data a LazyTensor variable reads: a graph node, or dense data lifted as a constant source. */
type Bound = Node;

/** An operand of a LazyTensor method: another LazyTensor or a number (a constant). */
export type Operand = LazyTensor | number;

const uids = new WeakMap<object, [number, number, number]>();
let nextUid = 0;
/** A stable variable id per (data object, category), so `Vi(x)` twice is one variable. */
function uidFor(obj: object, cat: Cat): number {
  let ids = uids.get(obj);
  if (ids === undefined) {
    ids = [-1, -1, -1];
    uids.set(obj, ids);
  }
  if (ids[cat] < 0) ids[cat] = nextUid++;
  return ids[cat];
}

/** Options every reduction accepts. */
export interface ReduceOptions {
  readonly backend?: BackendChoice;
}

/**
 * A symbolic M×N formula, never materialised (KeOps LazyTensor). Build it from `Vi`, `Vj`, `Pm`,
 * chain elementwise and vector ops, then reduce over an axis to get a graph Node.
 * @example
 * ```ts
 * const x = source(new Float32Array(30), [10, 3]);
 * const y = source(new Float32Array(60), [20, 3]);
 * const K = Vi(x).sqdist(Vj(y)).neg().exp();   // symbolic (10, 20)
 * const s = await K.sum(1).read();               // Tensor of shape [10, 1]
 * ```
 */
export class LazyTensor {
  /** @internal */
  constructor(
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

  add(o: Operand): LazyTensor { return this.apply('Add', [o]); }
  sub(o: Operand): LazyTensor { return this.apply('Subtract', [o]); }
  mul(o: Operand): LazyTensor { return this.apply('Mult', [o]); }
  div(o: Operand): LazyTensor { return this.apply('Divide', [o]); }
  neg(): LazyTensor { return this.apply('Minus'); }
  /** Integer powers use KeOps `Pow`, others `Powf`. */
  pow(p: Operand): LazyTensor {
    if (typeof p === 'number' && Number.isInteger(p)) return p === 2 ? this.square() : this.apply('Pow', [], [p]);
    return this.apply('Powf', [p]);
  }
  square(): LazyTensor { return this.apply('Square'); }
  sqrt(): LazyTensor { return this.apply('Sqrt'); }
  rsqrt(): LazyTensor { return this.apply('Rsqrt'); }
  exp(): LazyTensor { return this.apply('Exp'); }
  log(): LazyTensor { return this.apply('Log'); }
  abs(): LazyTensor { return this.apply('Abs'); }
  sign(): LazyTensor { return this.apply('Sign'); }
  step(): LazyTensor { return this.apply('Step'); }
  relu(): LazyTensor { return this.apply('ReLU'); }
  sin(): LazyTensor { return this.apply('Sin'); }
  cos(): LazyTensor { return this.apply('Cos'); }
  atan2(x: Operand): LazyTensor { return this.apply('Atan2', [x]); }
  inv(): LazyTensor { return this.apply('Inv'); }
  clamp(lo: Operand, hi: Operand): LazyTensor { return this.apply('Clamp', [lo, hi]); }
  /** `this >= 0 ? a : b`, elementwise (KeOps IfElse). */
  ifelse(a: Operand, b: Operand): LazyTensor { return this.apply('IfElse', [a, b]); }
  /** KeOps Mod(x, modulus, offset). */
  mod(modulus: Operand, offset: Operand = 0): LazyTensor { return this.apply('Mod', [modulus, offset]); }
  /** Rounds to `decimals` decimals (KeOps Round). */
  round(decimals = 0): LazyTensor { return this.apply('Round', [], [decimals]); }
  sqnorm2(): LazyTensor { return this.apply('SqNorm2'); }
  norm2(): LazyTensor { return this.apply('Norm2'); }
  normalize(): LazyTensor { return this.apply('Normalize'); }
  sqdist(o: Operand): LazyTensor { return this.apply('SqDist', [o]); }
  /** Scalar product over the vector dimension (KeOps `|`). */
  dot(o: Operand): LazyTensor { return this.apply('Scalprod', [o]); }
  concat(o: Operand): LazyTensor { return this.apply('Concat', [o]); }
  elem(m: number): LazyTensor { return this.apply('Elem', [], [m]); }
  extract(start: number, len: number): LazyTensor { return this.apply('Extract', [], [start, len]); }
  /** This (dim n·m, row-major matrix) times v (dim m). */
  matvecmult(v: Operand): LazyTensor { return this.apply('MatVecMult', [v]); }

  /** `sum(-1)`: inner sum over the vector dimension; `sum(0 | 1)`: reduction over i or j. */
  sum(axis: -1): LazyTensor;
  sum(axis: 0 | 1, opts?: ReduceOptions): Node;
  sum(axis: -1 | 0 | 1 = -1, opts: ReduceOptions = {}): LazyTensor | Node {
    if (axis === -1) return this.apply('Sum');
    return this.reduce('Sum', axis, opts);
  }
  /** log(sum exp(F)) over an axis, optionally weighted: log(sum exp(F) * weight). */
  logsumexp(axis: 0 | 1, opts: ReduceOptions & { weight?: Operand } = {}): Node {
    return this.reduce('LogSumExp', axis, opts, opts.weight);
  }
  min(axis: 0 | 1, opts: ReduceOptions = {}): Node { return this.reduce('Min', axis, opts); }
  max(axis: 0 | 1, opts: ReduceOptions = {}): Node { return this.reduce('Max', axis, opts); }
  argmin(axis: 0 | 1, opts: ReduceOptions = {}): Node { return this.reduce('ArgMin', axis, opts); }
  argmax(axis: 0 | 1, opts: ReduceOptions = {}): Node { return this.reduce('ArgMax', axis, opts); }
  minArgmin(axis: 0 | 1, opts: ReduceOptions = {}): [Node, Node] { return this.reducePair('Min_ArgMin', axis, opts); }
  maxArgmax(axis: 0 | 1, opts: ReduceOptions = {}): [Node, Node] { return this.reducePair('Max_ArgMax', axis, opts); }
  kmin(K: number, axis: 0 | 1, opts: ReduceOptions = {}): Node { return this.reduce('KMin', axis, opts, undefined, K); }
  argKmin(K: number, axis: 0 | 1, opts: ReduceOptions = {}): Node { return this.reduce('ArgKMin', axis, opts, undefined, K); }
  kminArgKmin(K: number, axis: 0 | 1, opts: ReduceOptions = {}): [Node, Node] {
    return this.reducePair('KMin_ArgKMin', axis, opts, K);
  }
  /** sum_j exp(F) * weight / sum_j exp(F) (F scalar). */
  sumSoftmaxWeight(weight: Operand, axis: 0 | 1, opts: ReduceOptions = {}): Node {
    return this.reduce('SumSoftMaxWeight', axis, opts, weight);
  }
  /** `K_ij @ b`: sum over j of this (scalar) times b_j; b is a Node, TensorLike, or `Vj(b)`. */
  matmul(b: LazyTensor | Node | TensorLike, opts: ReduceOptions = {}): Node {
    return this.mul(b instanceof LazyTensor ? b : Vj(b)).sum(1, opts);
  }

  /**
   * Solves (alpha Id + K) c = b by conjugate gradient, K being this scalar formula over the same
   * n points (pykeops `K_xx.solve(b, alpha=...)`); b is a Node, TensorLike or `Vj(b)`.
   * @example
   * ```ts
   * const K = Vi(x).sqdist(Vj(x)).mul(-50).exp();
   * const c = K.solve(b, { alpha: 0.01 });   // SolveNode, shape [N, Dv]
   * await c.read();
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

  /** The formula as KeOps prints it, with variables numbered by first appearance. */
  toString(): string {
    return canonical(this, []).formula.key;
  }

  private reduce(name: string, axis: 0 | 1, opts: ReduceOptions, weight?: Operand, K?: number): Node {
    return this.reduceAll(name, axis, opts, weight, K)[0]!;
  }

  private reducePair(name: string, axis: 0 | 1, opts: ReduceOptions, K?: number): [Node, Node] {
    const [a, b] = this.reduceAll(name, axis, opts, undefined, K);
    return [a!, b!];
  }

  private reduceAll(name: string, axis: 0 | 1, opts: ReduceOptions, weight?: Operand, K?: number): Node[] {
    if (axis !== 0 && axis !== 1) throw new ReductionError(`${name}: axis must be 0 or 1, got ${String(axis)}`);
    const w = weight === undefined ? undefined : this.lift(weight);
    const { formula, inputs, weightFormula } = canonical(this, w === undefined ? [] : [w]);
    return reductionNodes(formula, inputs, { reduction: name, axis, K, weight: weightFormula ?? null, backend: opts.backend });
  }
}

/** What a reduction node computes: a canonical formula (variables 0.. = its inputs) and how it reduces. */
export interface ReductionSpec {
  readonly reduction: string;
  readonly axis: 0 | 1;
  readonly K?: number;
  readonly weight?: Formula | null;
  readonly backend?: BackendChoice;
}

/**
 * Builds the node(s) of one fused reduction of `formula`, whose variable v reads `inputs[v]`.
 * Pair reductions give two nodes sharing one kernel run. Planning here reports dimension and
 * reduction errors where the user built the node.
 */
export function reductionNodes(formula: Formula, inputs: readonly Node[], spec: ReductionSpec): ReductionNode[] {
  const plan = makePlan(formula, { reduction: spec.reduction, axis: spec.axis, K: spec.K, weight: spec.weight ?? null });
  let last: { stamp: string; value: Promise<Tensor[]> } | undefined;
  const run = (stamp: string, vals: readonly Tensor[]): Promise<Tensor[]> => {
    if (last?.stamp !== stamp) {
      last = { stamp, value: executeReduction(formula, { ...spec, weight: spec.weight ?? null }, vals) };
    }
    return last.value;
  };
  return plan.outputs.map((out, o) => new ReductionNode(inputs, run, o, out.width, formula, spec));
}

/** The result of one reduction output; pair reductions share one kernel run through `run`. */
export class ReductionNode extends Node {
  constructor(
    inputs: readonly Node[],
    private readonly run: (stamp: string, vals: readonly Tensor[]) => Promise<Tensor[]>,
    /** Which output of the reduction this node is (1 = the indices of a pair reduction). */
    readonly output: number,
    /** Width of each output row: the dimension this node has when lifted with Vi/Vj. */
    readonly dim: number,
    readonly formula: Formula,
    readonly spec: ReductionSpec,
  ) {
    super(inputs);
    this.wire({ reduction: { formula, spec, output, dim } });
  }

  /** The nodes variable v of `formula` reads. */
  get sources(): readonly Node[] {
    return this.inputs;
  }
  protected async compute(vals: readonly Tensor[]): Promise<Tensor> {
    const stamp = vals.map((v) => inputStamp(v)).join(',');
    return (await this.run(stamp, vals))[this.output]!;
  }
  override describe(): string {
    return `${this.spec.reduction}(${this.formula.key}, axis ${this.spec.axis})`;
  }
}

const tensorIds = new WeakMap<object, number>();
let nextTensorId = 0;
/** Identity of an input value: a node's value object changes exactly when the node recomputes. */
function inputStamp(t: Tensor): number {
  let id = tensorIds.get(t);
  if (id === undefined) tensorIds.set(t, (id = nextTensorId++));
  return id;
}

/** Renumbers variables 0.. by first appearance (KeOps's Var indices) and lists their nodes. */
function canonical(t: LazyTensor, extra: readonly LazyTensor[]): { formula: Formula; weightFormula?: Formula; inputs: Node[] } {
  const bindings = new Map<number, Bound>();
  for (const x of [t, ...extra]) x.bindings.forEach((v, k) => bindings.set(k, v));
  const order = new Map<number, number>();
  for (const x of [t, ...extra]) for (const v of variables(x.formula)) if (!order.has(v.index)) order.set(v.index, order.size);
  const renumber = (f: Formula): Formula => mapVars(f, (v) => mkVar(order.get(v.index)!, v.dim, v.cat));
  const inputs = [...order.keys()].map((uid) => bindings.get(uid)!);
  return { formula: renumber(t.formula), weightFormula: extra[0] === undefined ? undefined : renumber(extra[0].formula), inputs };
}

/** Accepts a Node or dense data (lifted into a constant source node). */
function asNode(x: Node | TensorLike, label: string): Node {
  return x instanceof Node ? x : new SourceNode(x, label, { lifted: true });
}

function lastDim(n: Node): number {
  if (n instanceof SourceNode) {
    const s = n.shape;
    return s.length <= 1 ? 1 : s[s.length - 1]!;
  }
  const d = (n as { dim?: number }).dim;
  if (d === undefined) throw new DimensionError(`${n.describe()}: its vector dimension is not known; give a TensorLike or a source`);
  return d;
}

function leaf(x: Node | TensorLike, cat: Cat, label: string): LazyTensor {
  if (x instanceof LazyTensor) throw new KernelflowError('ARGUMENT', `${label}: already a LazyTensor`);
  const node = asNode(x, label);
  const dim = cat === 2 && node instanceof SourceNode && node.shape.length <= 1 ? (node.shape[0] ?? 1) : lastDim(node);
  const uid = uidFor(x, cat);
  return new LazyTensor(mkVar(uid, dim, cat), new Map([[uid, node]]));
}

/**
 * Lifts data indexed by i (the kept axis of a reduction over j): shape [M, D].
 * @example
 * ```ts
 * const xi = Vi({ data: new Float32Array([0, 1, 2]), shape: [3, 1] });
 * ```
 */
export function Vi(x: Node | TensorLike): LazyTensor {
  return leaf(x, 0, 'Vi');
}

/** Lifts data indexed by j: shape [N, D]. @example `Vj(y)` */
export function Vj(x: Node | TensorLike): LazyTensor {
  return leaf(x, 1, 'Vj');
}

/**
 * Lifts a parameter (no index): a number, an array, a TensorLike of shape [D] or [1, D], or a node.
 * @example
 * ```ts
 * const g = Pm(0.5);
 * ```
 */
export function Pm(x: number | readonly number[] | Node | TensorLike): LazyTensor {
  if (typeof x === 'number') return leaf({ data: Float32Array.of(x), shape: [1] }, 2, 'Pm');
  if (Array.isArray(x)) return leaf({ data: Float32Array.from(x as number[]), shape: [x.length] }, 2, 'Pm');
  return leaf(x as Node | TensorLike, 2, 'Pm');
}
