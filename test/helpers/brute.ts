import type { Formula, VarNode } from '../../src/graph/formula.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { reductionDef } from '../../src/ops/reductions.js';

export interface Cloud {
  readonly rows: number;
  readonly dim: number;
  readonly values: readonly number[];
}

/**
 * Float64 brute force of a reduction: evaluates F (and G) at every pair with the op references,
 * then reduces with the reduction's reference. `data[v]` holds variable v's values.
 */
export function bruteReduce(
  f: Formula,
  g: Formula | null,
  reduction: string,
  axis: 0 | 1,
  data: readonly Cloud[],
  vars: readonly VarNode[],
  K = 0,
): number[][][] {
  const def = reductionDef(reduction);
  const extentOf = (cat: 0 | 1): number => vars.find((v) => v.cat === cat)?.index ?? -1;
  const iv = extentOf(0);
  const jv = extentOf(1);
  const M = iv < 0 ? 1 : data[iv]!.rows;
  const N = jv < 0 ? 1 : data[jv]!.rows;
  const kept = axis === 1 ? M : N;
  const reduced = axis === 1 ? N : M;
  const rows: number[][][] = [];
  for (let a = 0; a < kept; a++) {
    const terms = [];
    for (let b = 0; b < reduced; b++) {
      const i = axis === 1 ? a : b;
      const j = axis === 1 ? b : a;
      const value = (v: VarNode): number[] => {
        const d = data[v.index]!;
        const r = v.cat === 0 ? i : v.cat === 1 ? j : 0;
        return d.values.slice(r * d.dim, (r + 1) * d.dim) as number[];
      };
      terms.push({ f: evaluateReference(f, value), g: g === null ? [] : evaluateReference(g, value) });
    }
    rows.push(def.ref(terms, f.dim, g?.dim ?? 0, K));
  }
  return rows;
}
