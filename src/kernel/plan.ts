import { DimensionError, LimitError, ReductionError } from '../errors.js';
import { LIMITS, postOrder, transpose, type Formula, type VarNode } from '../graph/formula.js';
import { printFormula } from '../graph/print.js';
import { expandComposites } from '../ops/composite.js';
import type { Dtype } from '../tensor.js';
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
  /** Block-sparse: the j loop runs over each row block's j-ranges (kernel/ranges.ts), not over [0, N). */
  readonly ranged?: boolean;
  /**
   * The precision of inputs, arithmetic and value outputs. Part of the structure (and of `key`):
   * float64 plans are for backends that compute in float64 (the CPU's JavaScript kernels); a
   * float32-only path (WGSL, WASM SIMD) must decline them.
   */
  readonly dtype: Dtype;
}

// Structure strings by root node: a formula that is planned again (every run of a node) costs a lookup.
const structures = new WeakMap<Formula, string>();

/**
 * The structure of a formula as text of size O(nodes): its DAG in post-order, each node as its op,
 * params and the local numbers of its arguments (`0:Var(0,3,0);1:Var(1,3,1);2:SqDist(0,1)`).
 * Local numbering, not the global interning ids, so a formula rebuilt after its nodes were
 * garbage-collected has the same structure string and finds its compiled kernel again.
 */
export function structureOf(f: Formula): string {
  const known = structures.get(f);
  if (known !== undefined) return known;
  const local = new Map<Formula, number>();
  const parts: string[] = [];
  for (const g of postOrder([f])) {
    local.set(g, parts.length);
    if (g.kind !== 'op') parts.push(g.key);
    else {
      const args = g.args.map((a) => local.get(a)!).join(',');
      parts.push(g.params.length === 0 ? `${g.op}(${args})` : `${g.op}(${args};${g.params.join(',')})`);
    }
  }
  const s = parts.join(';');
  structures.set(f, s);
  return s;
}

/** Plans a reduction; checks the reduction's constraints and that variables agree on their dims. */
export function makePlan(formula: Formula, opts: ReductionSpec, dtype: Dtype = 'float32'): KernelPlan {
  const red = reductionDef(opts.reduction);
  if (opts.axis !== 0 && opts.axis !== 1) throw new ReductionError(`axis must be 0 or 1, got ${String(opts.axis)}`);
  const weight = opts.weight ?? null;
  if (red.weight === 'required' && weight === null) throw new ReductionError(`${red.name} needs a weight formula (formula2)`);
  if (red.weight === 'none' && weight !== null) throw new ReductionError(`${red.name} takes no weight formula`);
  const K = red.usesK ? (opts.K ?? NaN) : 0;
  if (K > LIMITS.K) throw new LimitError('K', `${red.name}: K = ${K} exceeds the limit of ${LIMITS.K}`);
  red.check(formula.dim, weight?.dim ?? 0, K);
  // Composites (SqDist, Norm2, ...) reach codegen as the ops they are made of.
  const f = expandComposites(opts.axis === 1 ? formula : transpose(formula));
  const g = weight === null ? null : expandComposites(opts.axis === 1 ? weight : transpose(weight));
  const nodes = postOrder(g === null ? [f] : [f, g]);
  if (nodes.length > LIMITS.kernelNodes) {
    throw new LimitError('kernelNodes', `${red.name}: the formula has ${nodes.length} distinct nodes, more than the limit of ${LIMITS.kernelNodes} for one kernel: ${printFormula(f, 200)}`);
  }
  const vars: (VarNode | undefined)[] = [];
  for (const v of nodes.filter((n): n is VarNode => n.kind === 'var')) {
    // Variables are kept in an array by index: a huge index would allocate (and walk) a huge array.
    if (v.index >= LIMITS.varIndex) throw new LimitError('varIndex', `${red.name}: variable index ${v.index} exceeds the limit of ${LIMITS.varIndex - 1}`);
    const seen = vars[v.index];
    if (seen !== undefined && (seen.dim !== v.dim || seen.cat !== v.cat)) {
      throw new DimensionError(`variable ${v.index} is used as ${printFormula(seen)} and as ${printFormula(v)}`);
    }
    vars[v.index] = v;
  }
  let key: string | undefined;
  return {
    // Built on first use: plans made only to check a reduction never pay for it.
    get key(): string {
      // float32 keys read as before; a float64 kernel is other code (no rounding, an exact exp).
      return (key ??= `${red.name}|K=${K}|${structureOf(f)}|${g === null ? '' : structureOf(g)}${dtype === 'float64' ? '|f64' : ''}`);
    },
    f,
    g,
    reduction: red,
    K,
    vars,
    outputs: red.outputs(f.dim, g?.dim ?? 0, K),
    dtype,
  };
}
