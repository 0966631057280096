import { DimensionError, KernelflowError } from '../errors.js';
import { Node, type BackwardContext, type Cotangent } from '../nodes/node.js';
import { SourceNode } from '../nodes/source.js';
import { checkTensor, floatArray, promotedDtype, type Dtype, type FloatArray, type Tensor, type TensorLike } from '../tensor.js';

/*
 * A small dense toolkit on result nodes (tfjs-style names): elementwise `add sub mul div` with
 * NumPy broadcasting, `sum mean max min norm` over axes, and `array()`. Each op is a node of the
 * graph (it recomputes when its inputs do, and `grad` differentiates through it, first order),
 * computed on the host in float64 and stored as float32. The methods are added to Node here (a
 * module augmentation), so that the node classes below the user API stay free of it.
 */

/**
 * Nested arrays of numbers, row-major, as {@link toArray} gives them: a number for a scalar
 * (shape `[]`), `number[]` for shape `[n]`, `number[][]` for `[m, n]`, and so on.
 * @example
 * ```ts
 * import { toArray, type NestedArray } from 'kernelflow';
 * const rows: NestedArray = toArray({ data: new Float32Array([1, 2, 3, 4, 5, 6]), shape: [2, 3] });
 * console.log(rows); // [[1, 2, 3], [4, 5, 6]]
 * ```
 */
export type NestedArray = number | NestedArray[];

/**
 * A tensor's data as nested arrays, one level per axis (tfjs's `arraySync()`): shape `[]` gives a
 * number, `[2, 3]` two arrays of three numbers. `await node.array()` reads a node and does this.
 * @example
 * ```ts
 * import { source, Vi, Vj, toArray } from 'kernelflow';
 * const x = source(new Float32Array([0, 1, 3]), [3, 1]);
 * const t = await Vi(x).sqdist(Vj(x)).kmin(2, 1).read();
 * console.log(toArray(t)); // [[0, 1], [0, 1], [0, 4]]
 * ```
 */
export function toArray(t: TensorLike): NestedArray {
  const { data, shape } = checkTensor(t, 'toArray');
  if (shape.length === 0) return data[0]!;
  const build = (axis: number, offset: number): NestedArray[] => {
    const n = shape[axis]!;
    const stride = shape.slice(axis + 1).reduce((a, b) => a * b, 1);
    const out: NestedArray[] = [];
    for (let i = 0; i < n; i++) out.push(axis === shape.length - 1 ? data[offset + i]! : build(axis + 1, offset + i * stride));
    return out;
  };
  return build(0, 0);
}

type Shape = readonly number[];
type Binary = 'add' | 'sub' | 'mul' | 'div';
type Reduce = 'sum' | 'mean' | 'max' | 'min' | 'norm';
type DenseOp =
  | { readonly kind: 'binary'; readonly fn: Binary; readonly scalar?: number }
  | { readonly kind: 'reduce'; readonly fn: Reduce; readonly axes: readonly number[] | undefined; readonly keepDims: boolean };

const size = (s: Shape): number => s.reduce((a, b) => a * b, 1);
const fmt = (s: Shape): string => `[${s.join(', ')}]`;

const BINARY: Record<Binary, { f(a: number, b: number): number; da(a: number, b: number): number; db(a: number, b: number): number }> = {
  add: { f: (a, b) => a + b, da: () => 1, db: () => 1 },
  sub: { f: (a, b) => a - b, da: () => 1, db: () => -1 },
  mul: { f: (a, b) => a * b, da: (_a, b) => b, db: (a) => a },
  div: { f: (a, b) => a / b, da: (_a, b) => 1 / b, db: (a, b) => -a / (b * b) },
};

/** NumPy broadcasting of two shapes; -1 (unknown) extents stay unknown unless the other decides. */
function broadcastShapes(a: Shape, b: Shape, what: string): number[] {
  const n = Math.max(a.length, b.length);
  const out: number[] = [];
  for (let k = 0; k < n; k++) {
    const x = a[a.length - n + k] ?? 1;
    const y = b[b.length - n + k] ?? 1;
    if (x !== y && x !== 1 && y !== 1 && x >= 0 && y >= 0) throw new DimensionError(`${what}: shapes ${fmt(a)} and ${fmt(b)} do not broadcast`);
    out.push(x === 1 ? y : y === 1 ? x : Math.max(x, y));
  }
  return out;
}

/** For each flat index of `out`, the flat index of `inp` (broadcast to `out`) it reads. */
function broadcastMap(out: Shape, inp: Shape): Int32Array {
  const n = out.length;
  const strides = new Array<number>(n).fill(0);
  for (let k = inp.length - 1, st = 1; k >= 0; st *= inp[k]!, k--) strides[n - inp.length + k] = inp[k] === 1 ? 0 : st;
  const map = new Int32Array(size(out));
  const idx = new Array<number>(n).fill(0);
  let off = 0;
  for (let f = 0; f < map.length; f++) {
    map[f] = off;
    for (let k = n - 1; k >= 0; k--) {
      idx[k]!++;
      off += strides[k]!;
      if (idx[k]! < out[k]!) break;
      off -= strides[k]! * idx[k]!;
      idx[k] = 0;
    }
  }
  return map;
}

/** Axes 0..rank-1 from `axis` (undefined: all; negative: from the end), checked. */
function normalizeAxes(axes: readonly number[] | undefined, rank: number, what: string): number[] {
  if (axes === undefined) return Array.from({ length: rank }, (_, k) => k);
  const out = axes.map((a) => {
    if (!Number.isInteger(a) || a < -rank || a >= rank) throw new DimensionError(`${what}: axis ${a} is out of range for rank ${rank}`);
    return a < 0 ? a + rank : a;
  });
  if (new Set(out).size !== out.length) throw new DimensionError(`${what}: axis ${axes.join(', ')} repeats an axis`);
  return out;
}

/** The reduced shape with the reduced axes kept as 1, and without them. */
function reducedShapes(shape: Shape, axes: readonly number[]): { keep: number[]; drop: number[] } {
  const keep = shape.map((d, k) => (axes.includes(k) ? 1 : d));
  return { keep, drop: shape.filter((_, k) => !axes.includes(k)) };
}

/** A number operand, in the precision of the other operand (it never promotes a float32 computation). */
const scalar = (v: number, dtype: Dtype): Tensor => ({ data: dtype === 'float64' ? Float64Array.of(v) : Float32Array.of(v), shape: [] });

function forward(op: DenseOp, vals: readonly Tensor[], what: string): Tensor<FloatArray> {
  const A = vals[0]!;
  if (op.kind === 'binary') {
    const B = op.scalar === undefined ? vals[1]! : scalar(op.scalar, promotedDtype([A]));
    const shape = broadcastShapes(A.shape, B.shape, what);
    const ma = broadcastMap(shape, A.shape);
    const mb = broadcastMap(shape, B.shape);
    const f = BINARY[op.fn].f;
    const data = floatArray(promotedDtype([A, B]), ma.length);
    for (let k = 0; k < data.length; k++) data[k] = f(A.data[ma[k]!]!, B.data[mb[k]!]!);
    return { data, shape };
  }
  const axes = normalizeAxes(op.axes, A.shape.length, what);
  const { keep, drop } = reducedShapes(A.shape, axes);
  const map = broadcastMap(A.shape, keep);
  const count = A.data.length / Math.max(1, size(keep));
  if ((op.fn === 'max' || op.fn === 'min') && count === 0) throw new DimensionError(`${what}: ${op.fn} over an empty axis has no value`);
  const acc = new Float64Array(size(keep)).fill(op.fn === 'max' ? -Infinity : op.fn === 'min' ? Infinity : 0);
  for (let k = 0; k < A.data.length; k++) {
    const v = A.data[k]!;
    const o = map[k]!;
    if (op.fn === 'max') acc[o] = Math.max(acc[o]!, v);
    else if (op.fn === 'min') acc[o] = Math.min(acc[o]!, v);
    else acc[o]! += op.fn === 'norm' ? v * v : v;
  }
  for (let o = 0; o < acc.length; o++) acc[o] = op.fn === 'mean' ? acc[o]! / count : op.fn === 'norm' ? Math.sqrt(acc[o]!) : acc[o]!;
  return { data: promotedDtype([A]) === 'float64' ? acc : Float32Array.from(acc), shape: op.keepDims ? keep : drop };
}

/** The vector-Jacobian product of `op` for operand `k`: `g` is the cotangent of `out`, flat. */
function vjp(op: DenseOp, vals: readonly Tensor[], out: Tensor, g: Float64Array, k: number): Float64Array {
  const A = vals[0]!;
  if (op.kind === 'binary') {
    const B = op.scalar === undefined ? vals[1]! : scalar(op.scalar, promotedDtype([A]));
    const ma = broadcastMap(out.shape, A.shape);
    const mb = broadcastMap(out.shape, B.shape);
    const rule = BINARY[op.fn];
    const grad = new Float64Array(k === 0 ? A.data.length : B.data.length);
    for (let f = 0; f < g.length; f++) {
      const a = A.data[ma[f]!]!;
      const b = B.data[mb[f]!]!;
      if (k === 0) grad[ma[f]!]! += g[f]! * rule.da(a, b);
      else grad[mb[f]!]! += g[f]! * rule.db(a, b);
    }
    return grad;
  }
  const axes = normalizeAxes(op.axes, A.shape.length, 'gradient');
  const map = broadcastMap(A.shape, reducedShapes(A.shape, axes).keep);
  const count = A.data.length / Math.max(1, out.data.length);
  const grad = new Float64Array(A.data.length);
  for (let f = 0; f < grad.length; f++) {
    const o = map[f]!;
    const y = out.data[o]!;
    const a = A.data[f]!;
    const d = op.fn === 'sum' ? 1 : op.fn === 'mean' ? 1 / count : op.fn === 'norm' ? (y === 0 ? 0 : a / y) : a === y ? 1 : 0;
    grad[f] = g[o]! * d;
  }
  return grad;
}

/** A dense op as a graph node. */
class DenseNode extends Node<Tensor<FloatArray>> {
  constructor(
    inputs: readonly Node[],
    readonly op: DenseOp,
    private readonly label: string,
  ) {
    super(inputs);
    this.wire({ kind: 'computed', label });
  }

  /** The operands (graph inputs; a number operand is in `op`). */
  get sources(): readonly Node[] {
    return this.inputs;
  }

  protected compute(vals: readonly Tensor[]): Promise<Tensor<FloatArray>> {
    return Promise.resolve(forward(this.op, vals, this.label));
  }

  override describe(): string {
    return this.label;
  }

  override staticShape(): readonly number[] | undefined {
    const a = this.inputs[0]!.staticShape();
    if (a === undefined) return undefined;
    try {
      if (this.op.kind === 'binary') {
        const b = this.op.scalar === undefined ? this.inputs[1]!.staticShape() : [];
        return b === undefined ? undefined : broadcastShapes(a, b, this.label);
      }
      const { keep, drop } = reducedShapes(a, normalizeAxes(this.op.axes, a.length, this.label));
      return this.op.keepDims ? keep : drop;
    } catch {
      return undefined; // reported when computed
    }
  }

  override get dim(): number {
    const s = this.staticShape();
    if (s !== undefined && s.every((d) => d >= 0)) return s.length <= 1 ? 1 : s[s.length - 1]!;
    return this.op.kind === 'binary' ? Math.max(...this.inputs.map((n) => n.dim)) : 1;
  }

  override gradInputs(): readonly Node[] {
    return this.inputs;
  }

  override backward(terms: readonly Cotangent[], ctx: BackwardContext): void {
    this.inputs.forEach((input, k) => {
      if (ctx.reaches(input)) ctx.push(input, { node: new DenseGradNode(this, k, terms), dim: input.dim });
    });
  }
}

/** The cotangent of operand `k` of a dense node, rows of the operand's width (first order). */
class DenseGradNode extends Node<Tensor<FloatArray>> {
  private readonly ones: boolean;

  constructor(
    private readonly of: DenseNode,
    private readonly k: number,
    terms: readonly Cotangent[],
  ) {
    super([...of.sources, of, ...terms.flatMap((t) => ('node' in t ? [t.node] : []))]);
    this.ones = terms.some((t) => 'ones' in t);
    this.wire({ kind: 'computed', label: `gradient of ${of.describe()}` });
  }

  protected compute(vals: readonly Tensor[]): Promise<Tensor<FloatArray>> {
    const n = this.of.sources.length;
    const out = vals[n]!;
    const g = new Float64Array(out.data.length).fill(this.ones ? 1 : 0);
    for (const t of vals.slice(n + 1)) {
      if (t.data.length !== g.length) throw new DimensionError(`${this.describe()}: a cotangent of ${t.data.length} values for ${g.length}`);
      for (let f = 0; f < g.length; f++) g[f]! += t.data[f]!;
    }
    const grad = vjp(this.of.op, vals.slice(0, n), out, g, this.k);
    const dim = this.dim;
    // The gradient has the precision of the computation it differentiates.
    return Promise.resolve({ data: promotedDtype(vals) === 'float64' ? grad : Float32Array.from(grad), shape: [grad.length / dim, dim] });
  }

  override get dim(): number {
    return this.of.sources[this.k]!.dim;
  }

  override describe(): string {
    return `gradient of ${this.of.describe()}`;
  }
}

/** The Node, TensorLike or number operand of a binary op. */
function operand(b: unknown, what: string): Node | number {
  if (b instanceof Node || typeof b === 'number') return b;
  if (typeof b === 'object' && b !== null && 'data' in b && 'shape' in b) return new SourceNode(checkTensor(b, what), 'constant', { lifted: true });
  throw new KernelflowError('ARGUMENT', `${what}: expected a Node, a TensorLike { data, shape } or a number`);
}

function binary(a: Node, fn: Binary, b: unknown): DenseNode {
  const o = operand(b, fn);
  const label = `${fn}(#${a.id}, ${typeof o === 'number' ? o : `#${o.id}`})`;
  return typeof o === 'number' ? new DenseNode([a], { kind: 'binary', fn, scalar: o }, label) : new DenseNode([a, o], { kind: 'binary', fn }, label);
}

function reduce(a: Node, fn: Reduce, axis: number | readonly number[] | undefined, keepDims: boolean | undefined): DenseNode {
  const axes = axis === undefined ? undefined : typeof axis === 'number' ? [axis] : [...axis];
  if (axes?.some((x) => !Number.isInteger(x))) throw new KernelflowError('ARGUMENT', `${fn}: an axis must be an integer, got ${String(axis)}`);
  const label = `${fn}(#${a.id}${axes === undefined ? '' : `, axis ${axes.join(', ')}`}${keepDims === true ? ', keepDims' : ''})`;
  return new DenseNode([a], { kind: 'reduce', fn, axes, keepDims: keepDims === true }, label);
}

declare module '../nodes/node.js' {
  interface Node<T extends Tensor = Tensor> {
    /** `this + b` elementwise, NumPy broadcasting; b a Node, a TensorLike or a number. A node. */
    add(b: Node | TensorLike | number): Node<Tensor<FloatArray>>;
    /** `this - b` elementwise, NumPy broadcasting. A node. */
    sub(b: Node | TensorLike | number): Node<Tensor<FloatArray>>;
    /** `this * b` elementwise, NumPy broadcasting. A node. */
    mul(b: Node | TensorLike | number): Node<Tensor<FloatArray>>;
    /** `this / b` elementwise, NumPy broadcasting. A node. */
    div(b: Node | TensorLike | number): Node<Tensor<FloatArray>>;
    /** The sum over `axis` (a number or a list; negative counts from the end; default: all axes, giving shape `[]`). A node. */
    sum(axis?: number | readonly number[], keepDims?: boolean): Node<Tensor<FloatArray>>;
    /** The mean over `axis` (default: all axes). A node. */
    mean(axis?: number | readonly number[], keepDims?: boolean): Node<Tensor<FloatArray>>;
    /** The maximum over `axis` (default: all axes). A node. */
    max(axis?: number | readonly number[], keepDims?: boolean): Node<Tensor<FloatArray>>;
    /** The minimum over `axis` (default: all axes). A node. */
    min(axis?: number | readonly number[], keepDims?: boolean): Node<Tensor<FloatArray>>;
    /** The Euclidean (Frobenius) norm over `axis` (default: all axes), `sqrt(sum(this²))`. A node. */
    norm(axis?: number | readonly number[], keepDims?: boolean): Node<Tensor<FloatArray>>;
    /** The current value as nested arrays ({@link toArray} of `read()`). */
    array(): Promise<NestedArray>;
  }
}

const proto = Node.prototype as Node;
proto.add = function (this: Node, b) {
  return binary(this, 'add', b);
};
proto.sub = function (this: Node, b) {
  return binary(this, 'sub', b);
};
proto.mul = function (this: Node, b) {
  return binary(this, 'mul', b);
};
proto.div = function (this: Node, b) {
  return binary(this, 'div', b);
};
proto.sum = function (this: Node, axis, keepDims) {
  return reduce(this, 'sum', axis, keepDims);
};
proto.mean = function (this: Node, axis, keepDims) {
  return reduce(this, 'mean', axis, keepDims);
};
proto.max = function (this: Node, axis, keepDims) {
  return reduce(this, 'max', axis, keepDims);
};
proto.min = function (this: Node, axis, keepDims) {
  return reduce(this, 'min', axis, keepDims);
};
proto.norm = function (this: Node, axis, keepDims) {
  return reduce(this, 'norm', axis, keepDims);
};
proto.array = async function (this: Node) {
  return toArray(await this.read());
};
