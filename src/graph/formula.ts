/**
 * The formula IR: a DAG of variables, constants and op nodes (KeOps keopscore's shape).
 * Nodes are hash-consed: each interned node has a small integer `id`, and its structural `key`
 * is its op, static params and the ids of its arguments (`Add(3,7)`, `Pow(5;3)`), so keys stay
 * of constant size however deep or shared the DAG is. Equal subexpressions are one object.
 * Humans read formulas through `printFormula` (graph/print.ts), never through keys.
 * Every walk here is iterative: formulas of any depth never overflow the JavaScript stack.
 */
import { LimitError } from '../errors.js';

/** Variable category (KeOps's numbering): indexed by i, indexed by j, or a parameter (no index). */
export const Cat = { i: 0, j: 1, param: 2 } as const;
export type Cat = (typeof Cat)[keyof typeof Cat];

/**
 * Hard limits of the IR. Chosen so that no real formula hits them (pykeops's largest test
 * dimension is 990) while a typo such as `Zero(100000000)` fails at once instead of exhausting memory.
 */
export const LIMITS = {
  /** Largest vector dimension of any node. */
  dim: 1 << 16,
  /** Variable indices a formula string or a kernel may use are below this. */
  varIndex: 1 << 16,
  /** Largest magnitude of a static op parameter (an exponent, an index, a dimension). */
  param: 2 ** 31 - 1,
  /** Largest K of KMin / ArgKMin / KMin_ArgKMin. */
  K: 1 << 16,
  /**
   * Most distinct nodes in one kernel. Generated code has a local per node and component: V8's
   * stack overflows near 40 000 of them, and lavapipe takes minutes to compile a few thousand.
   */
  kernelNodes: 1 << 14,
} as const;

export interface VarNode {
  readonly kind: 'var';
  readonly index: number;
  readonly dim: number;
  readonly cat: Cat;
  /** Interning id: unique among live nodes, never reused. */
  readonly id: number;
  /** Structural key (`Var(index,dim,cat)`). */
  readonly key: string;
}

export interface ConstNode {
  readonly kind: 'const';
  readonly value: number;
  readonly dim: 1;
  readonly id: number;
  readonly key: string;
}

export interface OpNode {
  readonly kind: 'op';
  readonly op: string;
  readonly args: readonly Formula[];
  /** Static numeric parameters (e.g. the exponent of Pow, the index of Elem). */
  readonly params: readonly number[];
  readonly dim: number;
  readonly id: number;
  /** Structural key: op, argument ids and params (`Pow(5;3)`), of constant size. */
  readonly key: string;
}

export type Formula = VarNode | ConstNode | OpNode;

// Interned nodes by key. WeakRefs let unused formulas be collected; a key of a collected node can
// never be rebuilt (ids are not reused), so a stale entry is only dropped, never matched.
const interned = new Map<string, WeakRef<Formula>>();
const reaper = new FinalizationRegistry<string>((key) => {
  const ref = interned.get(key);
  if (ref !== undefined && ref.deref() === undefined) interned.delete(key);
});
let nextId = 0;

function intern<T extends Formula>(key: string, make: (id: number) => T): T {
  const hit = interned.get(key)?.deref();
  if (hit !== undefined) return hit as T;
  const node = make(nextId++);
  interned.set(key, new WeakRef(node));
  reaper.register(node, key);
  return node;
}

/** @internal Live entries of the intern table (tests check that unused formulas are collected). */
export function internedCount(): number {
  return interned.size;
}

/** Prints a number so that it parses back to the same float64. */
export function printNumber(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 2 ** 31) return `IntCst(${v})`;
  return `Cst(${String(v)})`;
}

/** Throws a LimitError when `dim` is not a valid vector dimension; `who` names the culprit. */
export function checkDim(dim: number, who: string): void {
  if (!Number.isInteger(dim) || dim < 1) throw new LimitError('dim', `${who}: dimension ${dim} must be an integer >= 1`);
  if (dim > LIMITS.dim) throw new LimitError('dim', `${who}: dimension ${dim} exceeds the limit of ${LIMITS.dim}`);
}

/**
 * A variable. The index only has to be a safe integer here (LazyTensor numbers its variables by
 * a global counter before renumbering them); kernels and formula strings bound it by LIMITS.varIndex.
 */
export function mkVar(index: number, dim: number, cat: Cat): VarNode {
  if (!Number.isSafeInteger(index) || index < 0) throw new LimitError('varIndex', `Var: index ${index} must be a non-negative integer`);
  checkDim(dim, `Var(${index})`);
  if (cat !== 0 && cat !== 1 && cat !== 2) throw new LimitError('cat', `Var(${index}): category ${String(cat)} must be 0, 1 or 2`);
  const key = `Var(${index},${dim},${cat})`;
  return intern(key, (id) => ({ kind: 'var', index, dim, cat, id, key }));
}

export function mkConst(value: number): ConstNode {
  // -0 is 0: one node per printed value, whichever sign was built first.
  const v = value === 0 ? 0 : value;
  const key = `C(${String(v)})`;
  return intern(key, (id) => ({ kind: 'const', value: v, dim: 1, id, key }));
}

/** Builds an op node with an already-checked output dimension (use `ops/build` to check). */
export function mkOpUnchecked(op: string, args: readonly Formula[], params: readonly number[], dim: number): OpNode {
  const ids = args.map((a) => a.id).join(',');
  const key = params.length === 0 ? `${op}(${ids})` : `${op}(${ids};${params.join(',')})`;
  return intern(key, (id) => ({ kind: 'op', op, args: [...args], params: [...params], dim, id, key }));
}

/**
 * Every node reachable from `roots`, each once, arguments before the nodes that use them
 * (depth-first post-order, arguments left to right), without recursion.
 */
export function postOrder(roots: readonly Formula[]): Formula[] {
  const seen = new Set<Formula>();
  const out: Formula[] = [];
  const nodes: Formula[] = [];
  const next: number[] = [];
  for (const root of roots) {
    if (seen.has(root)) continue;
    seen.add(root);
    nodes.push(root);
    next.push(0);
    while (nodes.length > 0) {
      const top = nodes.length - 1;
      const f = nodes[top]!;
      const k = next[top]!;
      if (f.kind === 'op' && k < f.args.length) {
        next[top] = k + 1;
        const a = f.args[k]!;
        if (!seen.has(a)) {
          seen.add(a);
          nodes.push(a);
          next.push(0);
        }
      } else {
        nodes.pop();
        next.pop();
        out.push(f);
      }
    }
  }
  return out;
}

/** Every variable of a formula, each once, in order of first appearance (depth first). */
export function variables(f: Formula): VarNode[] {
  return postOrder([f]).filter((g): g is VarNode => g.kind === 'var');
}

/**
 * Rebuilds formulas bottom-up, replacing leaves (variables and constants) through `mapLeaf`;
 * the structure is kept and each shared node is rebuilt once.
 */
export function mapLeaves(roots: readonly Formula[], mapLeaf: (leaf: VarNode | ConstNode) => Formula): Formula[] {
  const memo = new Map<Formula, Formula>();
  for (const g of postOrder(roots)) {
    if (g.kind !== 'op') memo.set(g, mapLeaf(g));
    else {
      const args = g.args.map((a) => memo.get(a)!);
      memo.set(g, args.every((a, k) => a === g.args[k]) ? g : mkOpUnchecked(g.op, args, g.params, g.dim));
    }
  }
  return roots.map((r) => memo.get(r)!);
}

/** Rebuilds a formula bottom-up, replacing variables through `mapVar` (structure kept, memoised). */
export function mapVars(f: Formula, mapVar: (v: VarNode) => Formula): Formula {
  return mapLeaves([f], (leaf) => (leaf.kind === 'var' ? mapVar(leaf) : leaf))[0]!;
}

/** Swaps the roles of i and j (a reduction over i is a reduction over j of the transposed formula). */
export function transpose(f: Formula): Formula {
  return mapVars(f, (v) => (v.cat === Cat.param ? v : mkVar(v.index, v.dim, v.cat === Cat.i ? Cat.j : Cat.i)));
}
