import { mkVar, variables, Cat, type Formula, type VarNode } from '../graph/formula.js';
import { op } from './build.js';
import type { GradInputs, ReductionInfo } from './reduction-rule.js';
import { REDUCTIONS, reductionDef, type ReductionName, type ReductionSpec } from './reductions.js';
import { vjpSeeds } from './vjp.js';

/*
 * A reduction's gradient is a reduction over the other index (KeOps). Each reduction's rule
 * (reductions.ts, `grad`) gives per-pair cotangents; this turns them into the reduction to build:
 * over j for an i-variable (like R), over i for a j-variable, over both for a parameter (over j,
 * then over the rows). Names i and j here are R's kept and reduced index; for axis 0 they swap.
 */

/** One gradient reduction to build: reduce `formula` (with `weight`) over `axis`, then maybe over the rows. */
export interface GradReduction extends ReductionSpec {
  readonly formula: Formula;
  readonly weight: Formula | null;
  readonly reduction: 'Sum' | 'SumSoftMaxWeight';
  /** A parameter's gradient: the [rows, d] result is summed over its rows. */
  readonly sumRows: boolean;
}

/** Whether a reduction's (first) output has a gradient rule. */
export function hasGradient(reduction: string): boolean {
  return REDUCTIONS.get(reduction as ReductionName)?.grad != null;
}

/**
 * Keeps the extents of the forward pass: a gradient formula that lost every variable of an index
 * the forward formulas had would be reduced over an extent of 1. `IfElse(a, h, h)` is h and reads a.
 */
function anchor(h: Formula, roots: readonly Formula[], forward: readonly Formula[]): Formula {
  const has = new Set(roots.flatMap((f) => variables(f).map((v) => v.cat)));
  for (const v of forward.flatMap((f) => variables(f))) {
    if (v.cat === Cat.param || has.has(v.cat)) continue;
    has.add(v.cat);
    const a = v.dim === 1 ? v : op('Elem', [v], [0]);
    h = op('IfElse', [a, h, h]);
  }
  return h;
}

/** The kept index's category of a reduction over `axis`. */
export const keptCat = (axis: 0 | 1): Cat => (axis === 1 ? Cat.i : Cat.j);

/**
 * The gradient reduction of d<R, G>/dv for a variable v of R's formula or weight, or null when
 * it is zero (no path from v, or an index output).
 * @example
 * ```ts
 * // R_i = sum_j exp(-|x_i - y_j|^2): the gradient in x is a Sum over j of a formula in x_i, y_j, G_i.
 * const x = mkVar(0, 2, Cat.i), y = mkVar(1, 2, Cat.j), G = mkVar(2, 1, Cat.i);
 * const F = op('Exp', [op('Minus', [op('SqDist', [x, y])])]);
 * reductionGrad({ formula: F, weight: null, reduction: 'Sum', axis: 1, K: 0 }, x, { g: G, out: () => G, lse: () => G });
 * // { formula: ..., weight: null, reduction: 'Sum', axis: 1, sumRows: false }
 * ```
 */
export function reductionGrad(r: ReductionInfo, v: VarNode, inp: GradInputs): GradReduction | null {
  const rule = reductionDef(r.reduction).grad;
  if (rule === null) return null;
  const kept = keptCat(r.axis);
  const overKept = v.cat === (kept === Cat.i ? Cat.j : Cat.i);
  const { seeds, softmax } = rule(r, inp, overKept);
  const h = vjpSeeds(seeds, v);
  if (h === null) return null;
  const forward = r.weight === null ? [r.formula] : [r.formula, r.weight];
  const body = anchor(h, softmax ? [r.formula, h] : [h], forward);
  if (overKept) return { formula: body, weight: null, reduction: 'Sum', axis: r.axis === 1 ? 0 : 1, sumRows: false };
  return {
    formula: softmax ? r.formula : body,
    weight: softmax ? body : null,
    reduction: softmax ? 'SumSoftMaxWeight' : 'Sum',
    axis: r.axis,
    sumRows: v.cat === Cat.param,
  };
}

/** A variable of R's kept index (for the cotangent and output data the gradient reads). */
export function keptVar(index: number, dim: number, axis: 0 | 1): VarNode {
  return mkVar(index, dim, keptCat(axis));
}
