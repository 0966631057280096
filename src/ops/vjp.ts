import { Cat, postOrder } from '../graph/formula.js';
import { printFormula } from '../graph/print.js';
import { DimensionError, KernelflowError } from '../errors.js';
import type { Formula, OpNode, VarNode } from '../graph/formula.js';
import { add } from './diff.js';
import { opDef } from './table.js';

/** A formula and the cotangent it is paired with: the scalar <f, g> is what gets differentiated. */
export interface Seed {
  readonly f: Formula;
  readonly g: Formula | null;
}

/**
 * Reverse mode on the formula DAG: the gradient of sum_k <f_k, g_k> with respect to `wrt`, as a
 * formula of wrt's dimension, or null for a symbolic zero (wrt does not reach any seeded f).
 * Cotangents are accumulated per node (a shared subexpression is visited once) and only nodes
 * that depend on wrt are visited, so nulls prune whole branches (KeOps's `Grad` / `DiffT`).
 */
export function vjpSeeds(seeds: readonly Seed[], wrt: VarNode): Formula | null {
  // Which nodes depend on wrt, and a post-order of those that are ops (every node after its
  // arguments): both from one iterative walk, so a formula of any depth is fine.
  const deps = new Set<Formula>();
  const order: OpNode[] = [];
  for (const f of postOrder(seeds.map((s) => s.f))) {
    if (f === wrt || (f.kind === 'op' && f.args.some((a) => deps.has(a)))) {
      deps.add(f);
      if (f.kind === 'op') order.push(f);
    }
  }
  const cot = new Map<Formula, Formula>();
  const accumulate = (f: Formula, c: Formula | null, who: string): void => {
    if (c === null || !deps.has(f)) return;
    if (c.dim !== f.dim) throw new DimensionError(`${who}: cotangent of dimension ${c.dim} for ${printFormula(f, 200)} of dimension ${f.dim}`);
    cot.set(f, add(cot.get(f) ?? null, c)!);
  };
  for (const s of seeds) accumulate(s.f, s.g, 'gradient seed');
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k]!;
    const c = cot.get(node);
    if (c === undefined) continue;
    // The cotangent of a node is complete once every node using it is done: drop it to free memory.
    cot.delete(node);
    const def = opDef(node.op);
    if (def.vjp === undefined) throw new KernelflowError('NOT_DIFFERENTIABLE', `${node.op} has no vector-Jacobian product`);
    const parts = def.vjp(node, c);
    node.args.forEach((a, i) => accumulate(a, parts[i] ?? null, `${node.op} vjp`));
  }
  return cot.get(wrt) ?? null;
}

/**
 * d<f, g>/d wrt as a formula of wrt's dimension; null when it is identically zero.
 * @example
 * ```ts
 * const x = mkVar(0, 3, Cat.i);
 * const f = op('SqNorm2', [x]);
 * printFormula(vjpFormula(f, x, mkConst(1))!); // '(IntCst(2) * Var(0,3,0))'
 * ```
 */
export function vjpFormula(f: Formula, wrt: VarNode, g: Formula): Formula | null {
  return vjpSeeds([{ f, g }], wrt);
}
