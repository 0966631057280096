import { DimensionError, ReductionError } from '../errors.js';
import { transpose, variables, type Formula, type VarNode } from '../graph/formula.js';
import { expandComposites } from '../ops/composite.js';
import { reductionDef, type ReductionDef, type ReductionOutput, type ReductionSpec } from '../ops/reductions.js';

/**
 * A fused kernel: formula F (and weight G) reduced over j. A reduction over i (axis 0) is planned
 * as the transposed formula reduced over j, so backends only ever write one loop nest.
 * `key` depends on structure only (never on sizes): it is the compiled-code cache key.
 */
export interface KernelPlan {
  readonly key: string;
  readonly f: Formula;
  readonly g: Formula | null;
  readonly reduction: ReductionDef;
  readonly K: number;
  /** Variables of F and G by index (a gap is an argument the formula does not use). */
  readonly vars: readonly (VarNode | undefined)[];
  readonly outputs: readonly ReductionOutput[];
}

/** Plans a reduction; checks the reduction's constraints and that variables agree on their dims. */
export function makePlan(formula: Formula, opts: ReductionSpec): KernelPlan {
  const red = reductionDef(opts.reduction);
  if (opts.axis !== 0 && opts.axis !== 1) throw new ReductionError(`axis must be 0 or 1, got ${String(opts.axis)}`);
  const weight = opts.weight ?? null;
  if (red.weight === 'required' && weight === null) throw new ReductionError(`${red.name} needs a weight formula (formula2)`);
  if (red.weight === 'none' && weight !== null) throw new ReductionError(`${red.name} takes no weight formula`);
  const K = red.usesK ? (opts.K ?? NaN) : 0;
  red.check(formula.dim, weight?.dim ?? 0, K);
  // Composites (SqDist, Norm2, ...) reach codegen as the ops they are made of.
  const f = expandComposites(opts.axis === 1 ? formula : transpose(formula));
  const g = weight === null ? null : expandComposites(opts.axis === 1 ? weight : transpose(weight));
  const vars: (VarNode | undefined)[] = [];
  for (const v of [...variables(f), ...(g === null ? [] : variables(g))]) {
    const seen = vars[v.index];
    if (seen !== undefined && (seen.dim !== v.dim || seen.cat !== v.cat)) {
      throw new DimensionError(`variable ${v.index} is used as ${seen.key} and as ${v.key}`);
    }
    vars[v.index] = v;
  }
  const key = `${red.name}|K=${K}|${f.key}|${g?.key ?? ''}`;
  return { key, f, g, reduction: red, K, vars, outputs: red.outputs(f.dim, g?.dim ?? 0, K) };
}
