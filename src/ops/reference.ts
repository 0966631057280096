import type { Formula, VarNode } from '../graph/formula.js';
import { opDef } from './table.js';

/**
 * Float64 reference evaluation of a formula at one (i, j): `value(v)` gives a variable's components.
 * Independent of code generation: it walks the tree with each op's `ref`. Used by tests as ground truth.
 */
export function evaluateReference(f: Formula, value: (v: VarNode) => readonly number[]): number[] {
  const memo = new Map<string, number[]>();
  const walk = (g: Formula): number[] => {
    const hit = memo.get(g.key);
    if (hit !== undefined) return hit;
    let r: number[];
    if (g.kind === 'var') r = [...value(g)];
    else if (g.kind === 'const') r = [g.value];
    else r = opDef(g.op).ref(g.args.map(walk), g.params, g.dim);
    memo.set(g.key, r);
    return r;
  };
  return walk(f);
}
