import { postOrder, type Formula, type VarNode } from '../graph/formula.js';
import { opDef } from './table.js';

/**
 * Float64 reference evaluation of a formula at one (i, j): `value(v)` gives a variable's components.
 * Independent of code generation: it walks the DAG (iteratively, each node once) with each op's
 * `ref`. Used by tests as ground truth.
 */
export function evaluateReference(f: Formula, value: (v: VarNode) => readonly number[]): number[] {
  const memo = new Map<Formula, number[]>();
  for (const g of postOrder([f])) {
    let r: number[];
    if (g.kind === 'var') r = [...value(g)];
    else if (g.kind === 'const') r = [g.value];
    else r = opDef(g.op).ref(g.args.map((a) => memo.get(a)!), g.params, g.dim);
    memo.set(g, r);
  }
  return memo.get(f)!;
}
