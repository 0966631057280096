/**
 * How LazyTensor variables are bound to data: a stable id per (data object, index category), the
 * renumbering into KeOps's Var(0..) order with the nodes each reads, and lifting dense data into
 * source nodes.
 */
import { DimensionError } from '../errors.js';
import { mapVars, mkVar, variables, Cat, type Formula } from '../graph/formula.js';
import { Node } from '../nodes/node.js';
import { SourceNode } from '../nodes/source.js';
import { setExactValues, type TensorLike } from '../tensor.js';

/** A formula with the nodes its variables read, by variable id (a LazyTensor). */
export interface Bindable {
  readonly formula: Formula;
  readonly bindings: ReadonlyMap<number, Node>;
}

const uidBase = new WeakMap<object, number>();
let nextUid = 0;
/**
 * A stable variable id per (data object, category), so `Vi(x)` twice is one variable. Each object
 * gets three consecutive ids, `base + cat`, so that transposing (`t()`) turns `Vi(x)`'s id into `Vj(x)`'s.
 */
export function uidFor(obj: object, cat: Cat): number {
  let base = uidBase.get(obj);
  if (base === undefined) {
    base = nextUid;
    nextUid += 3;
    uidBase.set(obj, base);
  }
  return base + cat;
}

/** The id of the same data object in the other index category (a parameter's id stays). */
export function swappedUid(uid: number): number {
  const cat = uid % 3;
  return cat === Cat.i ? uid + 1 : cat === Cat.j ? uid - 1 : uid;
}

/** Renumbers variables 0.. by first appearance (KeOps's Var indices) and lists their nodes. */
export function canonical(t: Bindable, extra: readonly Bindable[]): { formula: Formula; weightFormula?: Formula; inputs: Node[] } {
  const bindings = new Map<number, Node>();
  for (const x of [t, ...extra]) x.bindings.forEach((v, k) => bindings.set(k, v));
  const order = new Map<number, number>();
  for (const x of [t, ...extra]) for (const v of variables(x.formula)) if (!order.has(v.index)) order.set(v.index, order.size);
  const renumber = (f: Formula): Formula => mapVars(f, (v) => mkVar(order.get(v.index)!, v.dim, v.cat));
  const inputs = [...order.keys()].map((uid) => bindings.get(uid)!);
  return { formula: renumber(t.formula), weightFormula: extra[0] === undefined ? undefined : renumber(extra[0].formula), inputs };
}

/** float32 data of numbers, remembering them exactly for float64 computations. */
export function exactly(values: readonly number[]): Float32Array {
  const data = Float32Array.from(values);
  setExactValues(data, Float64Array.from(values));
  return data;
}

/** Accepts a Node or dense data (lifted into a constant source node). */
export function asNode(x: Node | TensorLike, label: string): Node {
  return x instanceof Node ? x : new SourceNode(x, label, { lifted: true });
}

/** The vector dimension of a node's rows (its last extent). */
export function lastDim(n: Node): number {
  if (n instanceof SourceNode) {
    const s = n.shape;
    return s.length <= 1 ? 1 : s[s.length - 1]!;
  }
  const d = (n as { dim?: number }).dim;
  if (d === undefined) throw new DimensionError(`${n.describe()}: its vector dimension is not known; give a TensorLike or a source`);
  return d;
}
