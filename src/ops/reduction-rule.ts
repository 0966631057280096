import type { Formula } from '../graph/formula.js';
import { op } from './build.js';
import { add, call, cst, mul, sub } from './diff.js';
import type { ReductionSpec } from './reductions.js';
import type { Seed } from './vjp.js';

/*
 * The shape of a reduction's gradient rule (KeOps `DiffT`), written beside each reduction in
 * reductions.ts. For R_i = Red_j F(x_i, y_j, p) with output cotangent G_i, a rule gives the
 * per-pair cotangents W of F (and of the weight V) such that, for a variable v of the formulas,
 *   d<R, G>/dv = sum over pairs of vjp(F, v, W_ij) + vjp(V, v, WV_ij).
 * reduction-grads.ts turns that into a reduction over the other index.
 */

/** A reduction as its rule sees it: the shared description with its formula, weight and K made definite. */
export interface ReductionInfo extends ReductionSpec {
  readonly formula: Formula;
  readonly weight: Formula | null;
  readonly K: number;
}

/** Data the gradient reads besides R's own inputs: formulas over R's kept index (variables bound by the caller). */
export interface GradInputs {
  /** The cotangent of R's output (dimension: the output width). */
  readonly g: Formula;
  /** R's output values. */
  out(): Formula;
  /** log sum_j exp F_ij (scalar F), for SumSoftMaxWeight's j-variables. */
  lse(): Formula;
}

/** Relative tolerance of the "selected entry" masks: a few float32 ulps (see `selected`). */
export const SELECT_TOL = 2 ** -18;

/**
 * 1 where F_ij is the selected value m_i, else 0. Not Equal: the CPU backend evaluates F in
 * float64 and stores m in float32, and a GPU may round a recomputed F differently, so F and m
 * agree only to a few ulps. Right away from ties (two values within SELECT_TOL relative).
 */
export function selected(f: Formula, m: Formula): Formula {
  const tol = add(mul(cst(SELECT_TOL), call('Abs', m)), cst(1e-30))!;
  return call('LessOrEqual', call('Abs', sub(f, m)), tol);
}

/** Per-pair cotangents of F and V; `softmax`: sum them with softmax weights (SumSoftMaxWeight over j). */
export interface PairRule {
  readonly seeds: readonly Seed[];
  readonly softmax: boolean;
}

/** A reduction's gradient rule; `overKept`: the variable is of the reduced index (the gradient reduces over the kept one). */
export type GradRule = (r: ReductionInfo, inp: GradInputs, overKept: boolean) => PairRule;

export const plain = (seeds: Seed[]): PairRule => ({ seeds, softmax: false });

/** Min, Max and the values of Min_ArgMin, Max_ArgMax: the cotangent flows to the selected j. */
export const extremumGrad: GradRule = (r, inp) => plain([{ f: r.formula, g: mul(selected(r.formula, inp.out()), inp.g) }]);

/** KMin and the values of KMin_ArgKMin: output [K, D] row-major; entry k of F receives G_r,k where it is the r-th smallest. */
export const kminGrad: GradRule = (r, inp) => {
  const D = r.formula.dim;
  const part = (x: Formula, k: number): Formula => (r.K === 1 ? x : op('Extract', [x], [k * D, D]));
  let w: Formula | null = null;
  for (let k = 0; k < r.K; k++) w = add(w, mul(selected(r.formula, part(inp.out(), k)), part(inp.g, k)));
  return plain([{ f: r.formula, g: w }]);
};

