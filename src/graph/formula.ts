/**
 * The formula IR: a DAG of variables, constants and op nodes (KeOps keopscore's shape).
 * Nodes are interned by their structural key, so equal subexpressions are one object and a
 * key can be used as a cache key for anything derived from the formula.
 */

/** Variable category (KeOps's numbering): indexed by i, indexed by j, or a parameter (no index). */
export const Cat = { i: 0, j: 1, param: 2 } as const;
export type Cat = (typeof Cat)[keyof typeof Cat];

export interface VarNode {
  readonly kind: 'var';
  readonly index: number;
  readonly dim: number;
  readonly cat: Cat;
  readonly key: string;
}

export interface ConstNode {
  readonly kind: 'const';
  readonly value: number;
  readonly dim: 1;
  readonly key: string;
}

export interface OpNode {
  readonly kind: 'op';
  readonly op: string;
  readonly args: readonly Formula[];
  /** Static numeric parameters (e.g. the exponent of Pow, the index of Elem). */
  readonly params: readonly number[];
  readonly dim: number;
  readonly key: string;
}

export type Formula = VarNode | ConstNode | OpNode;

/** Ops printed infix, as KeOps prints them: `(a + b)`. */
const INFIX: Readonly<Record<string, string>> = { Add: '+', Subtract: '-', Mult: '*', Divide: '/', Scalprod: '|' };

const interned = new Map<string, WeakRef<Formula>>();
const reaper = new FinalizationRegistry<string>((key) => {
  const ref = interned.get(key);
  if (ref !== undefined && ref.deref() === undefined) interned.delete(key);
});

function intern<T extends Formula>(node: T): T {
  const hit = interned.get(node.key)?.deref();
  if (hit !== undefined) return hit as T;
  interned.set(node.key, new WeakRef(node));
  reaper.register(node, node.key);
  return node;
}

/** Prints a number so that it parses back to the same float64. */
export function printNumber(v: number): string {
  if (Number.isInteger(v) && Math.abs(v) < 2 ** 31) return `IntCst(${v})`;
  return `Cst(${String(v)})`;
}

export function mkVar(index: number, dim: number, cat: Cat): VarNode {
  return intern({ kind: 'var', index, dim, cat, key: `Var(${index},${dim},${cat})` });
}

export function mkConst(value: number): ConstNode {
  return intern({ kind: 'const', value, dim: 1, key: printNumber(value) });
}

/** Builds an op node with an already-checked output dimension (use `nodes/build` to check). */
export function mkOpUnchecked(op: string, args: readonly Formula[], params: readonly number[], dim: number): OpNode {
  const infix = INFIX[op];
  let key: string;
  if (infix !== undefined && args.length === 2 && params.length === 0) {
    key = `(${args[0]!.key} ${infix} ${args[1]!.key})`;
  } else if (op === 'Minus' && args.length === 1) {
    key = `-${args[0]!.key}`;
  } else {
    key = `${op}(${[...args.map((a) => a.key), ...params.map(String)].join(',')})`;
  }
  return intern({ kind: 'op', op, args: [...args], params: [...params], dim, key });
}

/** Every variable of a formula, each once, in order of first appearance (depth first). */
export function variables(f: Formula): VarNode[] {
  const seen = new Set<string>();
  const out: VarNode[] = [];
  const walk = (g: Formula): void => {
    if (seen.has(g.key)) return;
    seen.add(g.key);
    if (g.kind === 'var') out.push(g);
    else if (g.kind === 'op') g.args.forEach(walk);
  };
  walk(f);
  return out;
}

/** Rebuilds a formula bottom-up, replacing variables through `mapVar` (structure kept, memoised). */
export function mapVars(f: Formula, mapVar: (v: VarNode) => Formula): Formula {
  const memo = new Map<string, Formula>();
  const walk = (g: Formula): Formula => {
    const hit = memo.get(g.key);
    if (hit !== undefined) return hit;
    let r: Formula;
    if (g.kind === 'var') r = mapVar(g);
    else if (g.kind === 'const') r = g;
    else r = mkOpUnchecked(g.op, g.args.map(walk), g.params, g.dim);
    memo.set(g.key, r);
    return r;
  };
  return walk(f);
}

/** Swaps the roles of i and j (a reduction over i is a reduction over j of the transposed formula). */
export function transpose(f: Formula): Formula {
  return mapVars(f, (v) => (v.cat === Cat.param ? v : mkVar(v.index, v.dim, v.cat === Cat.i ? Cat.j : Cat.i)));
}
