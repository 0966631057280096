import { Cat } from '../graph/formula.js';
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
 * Cotangents are accumulated per node key (a shared subexpression is visited once) and only nodes
 * that depend on wrt are visited, so nulls prune whole branches (KeOps's `Grad` / `DiffT`).
 */
export function vjpSeeds(seeds: readonly Seed[], wrt: VarNode): Formula | null {
  const deps = new Map<string, boolean>();
  const depends = (f: Formula): boolean => {
    let d = deps.get(f.key);
    if (d === undefined) {
      d = f.key === wrt.key || (f.kind === 'op' && f.args.some(depends));
      deps.set(f.key, d);
    }
    return d;
  };
  // Post-order over the nodes that depend on wrt: every node after its arguments.
  const order: OpNode[] = [];
  const seen = new Set<string>();
  const visit = (f: Formula): void => {
    if (f.kind !== 'op' || seen.has(f.key) || !depends(f)) return;
    seen.add(f.key);
    f.args.forEach(visit);
    order.push(f);
  };
  const cot = new Map<string, Formula>();
  const accumulate = (f: Formula, c: Formula | null, who: string): void => {
    if (c === null || !depends(f)) return;
    if (c.dim !== f.dim) throw new DimensionError(`${who}: cotangent of dimension ${c.dim} for ${f.key} of dimension ${f.dim}`);
    cot.set(f.key, add(cot.get(f.key) ?? null, c)!);
  };
  for (const s of seeds) {
    visit(s.f);
    accumulate(s.f, s.g, 'gradient seed');
  }
  for (let k = order.length - 1; k >= 0; k--) {
    const node = order[k]!;
    const c = cot.get(node.key);
    if (c === undefined) continue;
    const def = opDef(node.op);
    if (def.vjp === undefined) throw new KernelflowError('NOT_DIFFERENTIABLE', `${node.op} has no vector-Jacobian product`);
    const parts = def.vjp(node, c);
    node.args.forEach((a, i) => accumulate(a, parts[i] ?? null, `${node.op} vjp`));
  }
  return cot.get(wrt.key) ?? null;
}

/**
 * d<f, g>/d wrt as a formula of wrt's dimension; null when it is identically zero.
 * @example
 * ```ts
 * const x = mkVar(0, 3, Cat.i);
 * const f = op('SqNorm2', [x]);
 * vjpFormula(f, x, mkConst(1))!.key; // '(IntCst(2) * Var(0,3,0))'
 * ```
 */
export function vjpFormula(f: Formula, wrt: VarNode, g: Formula): Formula | null {
  return vjpSeeds([{ f, g }], wrt);
}
