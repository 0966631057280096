import { mkVar, variables, Cat, type Formula, type VarNode } from '../graph/formula.js';
import { op } from './build.js';
import { add, call, cst, mul, sub } from './diff.js';
import type { ReductionName } from './reductions.js';
import { vjpSeeds, type Seed } from './vjp.js';

/*
 * Gradient rules of the reductions (KeOps: a reduction's gradient is a reduction over the other
 * index). For R_i = Red_j F(x_i, y_j, p) with output cotangent G_i, each rule gives the per-pair
 * cotangents W of F (and of the weight V) such that, for a variable v of the formulas,
 *   d<R, G>/dv = sum over pairs of vjp(F, v, W_ij) + vjp(V, v, WV_ij).
 * The sum runs over j for an i-variable (a reduction over j, like R), over i for a j-variable
 * (a reduction over the other axis), over both for a parameter (over j, then over the rows).
 * Names i and j here are R's kept and reduced index; for axis 0 the categories swap.
 */

/** What the rules need to know of a reduction. */
export interface ReductionInfo {
  readonly formula: Formula;
  readonly weight: Formula | null;
  readonly reduction: ReductionName;
  readonly axis: 0 | 1;
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

/** One gradient reduction to build: reduce `formula` (with `weight`) over `axis`, then maybe over the rows. */
export interface GradReduction {
  readonly formula: Formula;
  readonly weight: Formula | null;
  readonly reduction: 'Sum' | 'SumSoftMaxWeight';
  readonly axis: 0 | 1;
  /** A parameter's gradient: the [rows, d] result is summed over its rows. */
  readonly sumRows: boolean;
}

/** Relative tolerance of the "selected entry" masks: a few float32 ulps (see `selected`). */
export const SELECT_TOL = 2 ** -18;

/**
 * 1 where F_ij is the selected value m_i, else 0. Not Equal: the CPU backend evaluates F in
 * float64 and stores m in float32, and a GPU may round a recomputed F differently, so F and m
 * agree only to a few ulps. Right away from ties (two values within SELECT_TOL relative).
 */
function selected(f: Formula, m: Formula): Formula {
  const tol = add(mul(cst(SELECT_TOL), call('Abs', m)), cst(1e-30))!;
  return call('LessOrEqual', call('Abs', sub(f, m)), tol);
}

/** Per-pair cotangents of F and V; `softmax`: sum them with softmax weights (SumSoftMaxWeight over j). */
interface PairRule {
  readonly seeds: readonly Seed[];
  readonly softmax: boolean;
}

type Rule = (r: ReductionInfo, inp: GradInputs, overKept: boolean) => PairRule;

const plain = (seeds: Seed[]): PairRule => ({ seeds, softmax: false });

/** Min, Max and the values of Min_ArgMin, Max_ArgMax: the cotangent flows to the selected j. */
const extremum: Rule = (r, inp) => plain([{ f: r.formula, g: mul(selected(r.formula, inp.out()), inp.g) }]);

/** KMin and the values of KMin_ArgKMin: output [K, D] row-major; entry k of F receives G_r,k where it is the r-th smallest. */
const kmin: Rule = (r, inp) => {
  const D = r.formula.dim;
  const part = (x: Formula, k: number): Formula => (r.K === 1 ? x : op('Extract', [x], [k * D, D]));
  let w: Formula | null = null;
  for (let k = 0; k < r.K; k++) w = add(w, mul(selected(r.formula, part(inp.out(), k)), part(inp.g, k)));
  return plain([{ f: r.formula, g: w }]);
};

/**
 * The rules, one per reduction. Index outputs (ArgMin, ArgMax, ArgKMin, and the second output of
 * the pair reductions) are piecewise constant: no rule, zero gradient.
 */
export const REDUCTION_RULES: Readonly<Record<ReductionName, Rule | null>> = {
  Sum: (r, inp) => plain([{ f: r.formula, g: inp.g }]),
  // out_k = log sum_j exp F_jk (each coordinate alone): dout/dF_jk = exp(F_jk - out_k).
  // With a weight V (F scalar): out_k = log sum_j exp(F_j) V_jk, so dF_j gets sum_k G_k exp(F_j - out_k) V_jk
  // and dV_jk gets G_k exp(F_j - out_k).
  LogSumExp: (r, inp) => {
    const e = call('Exp', sub(r.formula, inp.out()));
    if (r.weight === null) return plain([{ f: r.formula, g: mul(e, inp.g) }]);
    return plain([
      { f: r.formula, g: call('Scalprod', inp.g, mul(e, r.weight)) },
      { f: r.weight, g: mul(inp.g, e) },
    ]);
  },
  // out = sum_j p_j V_j with p = softmax_j(F): dF_j = p_j <G, V_j - out>, dV_j = p_j G. Over j the
  // p-weighted sum is itself a SumSoftMaxWeight (no lse needed); over i, p_ij = exp(F_ij - lse_i).
  SumSoftMaxWeight: (r, inp, overKept) => {
    const v = r.weight!;
    const dF = call('Scalprod', inp.g, sub(v, inp.out()));
    if (!overKept) return { seeds: [{ f: r.formula, g: dF }, { f: v, g: inp.g }], softmax: true };
    const p = call('Exp', sub(r.formula, inp.lse()));
    return plain([{ f: r.formula, g: mul(p, dF) }, { f: v, g: mul(p, inp.g) }]);
  },
  Min: extremum,
  Max: extremum,
  Min_ArgMin: extremum,
  Max_ArgMax: extremum,
  KMin: kmin,
  KMin_ArgKMin: kmin,
  ArgMin: null,
  ArgMax: null,
  ArgKMin: null,
};

/** Whether a reduction's (first) output has a gradient rule. */
export function hasGradient(reduction: string): boolean {
  return (REDUCTION_RULES as Record<string, Rule | null | undefined>)[reduction] != null;
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
  const rule = REDUCTION_RULES[r.reduction];
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
