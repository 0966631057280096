import { Cat, LIMITS, mapLeaves, mkVar, postOrder, type ConstNode, type Formula } from '../graph/formula.js';
import { op } from '../ops/build.js';

/** Formulas whose numeric literals were moved into one parameter variable, and that variable's data. */
export interface LiftedLiterals {
  readonly f: Formula;
  readonly g: Formula | null;
  /** Index of the literal variable (after every variable of f and g), or -1 when there are no literals. */
  readonly index: number;
  /** Its data: `values[k]` is literal k (float64; a backend may round it to its precision). */
  readonly values: readonly number[];
}

/**
 * Turns the numeric literals of F and G into kernel parameters, as pykeops does with Python
 * floats: literal k becomes `Elem(P, k)` of one parameter variable P (one variable, so literals
 * never add bindings), P's data being the values. The same formula with other constants then has
 * the same structure, hence the same compiled kernel. Static op params (the exponent of `Pow`, the
 * index of `Elem`) are not literals and stay in the structure. Literals are numbered in the order
 * a walk of the DAG meets them, which only depends on the structure; two literals that happen to
 * be equal are one interned node, so such a formula has one literal less (and its own kernel).
 */
export function liftLiterals(f: Formula, g: Formula | null): LiftedLiterals {
  const lifted = liftRootLiterals(g === null ? [f] : [f, g]);
  return { f: lifted.roots[0]!, g: g === null ? null : lifted.roots[1]!, index: lifted.index, values: lifted.values };
}

/** `liftLiterals` over any number of formulas (the parts of a fused kernel): their literals become one parameter variable. */
export function liftRootLiterals(roots: readonly Formula[]): { readonly roots: readonly Formula[]; readonly index: number; readonly values: readonly number[] } {
  const nodes = postOrder(roots);
  // Beyond the dimension limit (never in practice) the remaining literals stay in the code.
  const consts = nodes.filter((n): n is ConstNode => n.kind === 'const').slice(0, LIMITS.dim);
  if (consts.length === 0) return { roots, index: -1, values: [] };
  const index = nodes.reduce((m, n) => (n.kind === 'var' ? Math.max(m, n.index) : m), -1) + 1;
  const P = mkVar(index, consts.length, Cat.param);
  const slot = new Map<Formula, Formula>(consts.map((c, k) => [c, consts.length === 1 ? P : op('Elem', [P], [k])]));
  return { roots: mapLeaves(roots, (leaf) => slot.get(leaf) ?? leaf), index, values: consts.map((c) => c.value) };
}
