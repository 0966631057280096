import { DimensionError, LimitError, ReductionError } from '../errors.js';
import { LIMITS, postOrder, transpose, type Formula, type VarNode } from '../graph/formula.js';
import { printFormula } from '../graph/print.js';
// ops/reductions first: it loads the op table, which ops/composite reads while loading (a cycle).
import { reductionDef, type ReduceCtx, type ReductionDef, type ReductionName, type ReductionOutput, type ReductionSpec } from '../ops/reductions.js';
import { expandComposites } from '../ops/composite.js';
import { slotsWidth } from '../ops/accumulators.js';
import { ixAdd } from '../ops/loop.js';
import type { Dtype } from '../tensor.js';

/** One reduction a kernel computes: formula F (and weight G, both already reduced over j) with its reduction. */
export interface PlanPart {
  readonly f: Formula;
  readonly g: Formula | null;
  readonly reduction: ReductionDef;
  readonly K: number;
  readonly outputs: readonly ReductionOutput[];
}

/**
 * A fused kernel: formula F (and weight G) reduced over j. A reduction over i (axis 0) is planned
 * as the transposed formula reduced over j, so backends only ever write one loop nest.
 * `key` depends on structure only (never on sizes): it is the compiled-code cache key.
 *
 * A kernel may compute several reductions over the same (i, j) index space in one pass (sibling
 * reductions the scheduler fuses, issue 17): `parts` lists them, each with its formulas and
 * reduction, and `outputs` are their outputs in order. `reduction` is then a composite whose hooks
 * (init, finalize, state, save, load, merge) run every part's side by side, each part's
 * accumulators under a prefix of its own (see `partCtx`); `f` and `g` are the first part's (for
 * messages) and `K` the largest part's. A plain plan has one part, itself.
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
  /** The reductions of the kernel, in output order: one, or several when fused. */
  readonly parts: readonly PlanPart[];
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

/** Plans one reduction as a part: checks the reduction's constraints, transposes for axis 0, expands composites. */
function planPart(formula: Formula, opts: ReductionSpec): PlanPart {
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
  return { f, g, reduction: red, K, outputs: red.outputs(f.dim, g?.dim ?? 0, K) };
}

/** The roots of parts: F, then G when there is one, part after part. */
const rootsOf = (parts: readonly PlanPart[]): Formula[] => parts.flatMap((p) => (p.g === null ? [p.f] : [p.f, p.g]));

/** The variables of the parts by index; checks the node limit and that variables agree on their dims. */
function varsOf(parts: readonly PlanPart[], name: string): (VarNode | undefined)[] {
  const nodes = postOrder(rootsOf(parts));
  if (nodes.length > LIMITS.kernelNodes) {
    throw new LimitError('kernelNodes', `${name}: the formula has ${nodes.length} distinct nodes, more than the limit of ${LIMITS.kernelNodes} for one kernel: ${printFormula(parts[0]!.f, 200)}`);
  }
  const vars: (VarNode | undefined)[] = [];
  for (const v of nodes.filter((n): n is VarNode => n.kind === 'var')) {
    // Variables are kept in an array by index: a huge index would allocate (and walk) a huge array.
    if (v.index >= LIMITS.varIndex) throw new LimitError('varIndex', `${name}: variable index ${v.index} exceeds the limit of ${LIMITS.varIndex - 1}`);
    const seen = vars[v.index];
    if (seen !== undefined && (seen.dim !== v.dim || seen.cat !== v.cat)) {
      throw new DimensionError(`variable ${v.index} is used as ${printFormula(seen)} and as ${printFormula(v)}`);
    }
    vars[v.index] = v;
  }
  return vars;
}

const partKey = (p: PlanPart): string => `${p.reduction.name}|K=${p.K}|${structureOf(p.f)}|${p.g === null ? '' : structureOf(p.g)}`;

/** Plans a reduction; checks the reduction's constraints and that variables agree on their dims. */
export function makePlan(formula: Formula, opts: ReductionSpec, dtype: Dtype = 'float32'): KernelPlan {
  const part = planPart(formula, opts);
  const vars = varsOf([part], part.reduction.name);
  let key: string | undefined;
  return {
    // Built on first use: plans made only to check a reduction never pay for it.
    get key(): string {
      // float32 keys read as before; a float64 kernel is other code (no rounding, an exact exp).
      return (key ??= `${partKey(part)}${dtype === 'float64' ? '|f64' : ''}`);
    },
    f: part.f,
    g: part.g,
    reduction: part.reduction,
    K: part.K,
    vars,
    outputs: part.outputs,
    parts: [part],
    dtype,
  };
}

/**
 * Plans several reductions over the same index space as one kernel (issue 17): their formulas
 * read one variable space (variable v is the same data in every part), so that the temporaries
 * they share are computed once. One reduction gives the plain plan. Throws what `makePlan` throws
 * for a part, and a LimitError when the parts together exceed the node limit of one kernel.
 */
export function makeFusedPlan(reductions: readonly { readonly formula: Formula; readonly spec: ReductionSpec }[], dtype: Dtype = 'float32'): KernelPlan {
  if (reductions.length === 1) return makePlan(reductions[0]!.formula, reductions[0]!.spec, dtype);
  const parts = reductions.map((r) => planPart(r.formula, r.spec));
  const reduction = fusedReduction(parts);
  const vars = varsOf(parts, reduction.name);
  let key: string | undefined;
  return {
    get key(): string {
      return (key ??= `fused[${parts.map(partKey).join(' & ')}]${dtype === 'float64' ? '|f64' : ''}`);
    },
    f: parts[0]!.f,
    g: parts[0]!.g,
    reduction,
    K: Math.max(...parts.map((p) => p.K)),
    vars,
    outputs: parts.flatMap((p) => p.outputs),
    parts,
    dtype,
  };
}

/**
 * The hooks' context of part k of a plan: its own dims and K, and, when the plan has several
 * parts, an accumulator prefix of its own (`<p>u<k>_`). A one-part plan's part sees `c` itself.
 */
export function partCtx(c: ReduceCtx, plan: Pick<KernelPlan, 'parts'>, k: number): ReduceCtx {
  const part = plan.parts[k]!;
  if (plan.parts.length === 1) return c;
  return { ...c, fDim: part.f.dim, gDim: part.g?.dim ?? 0, K: part.K, p: `${c.p}u${k}_` };
}

/**
 * The reduction of a fused kernel: every hook runs each part's hook with the part's context
 * (`partCtx`); outputs and partial states are the parts' side by side, in part order. `combine`
 * is the template's (it gives each part its own roots). The context's dims are ignored.
 */
function fusedReduction(parts: readonly PlanPart[]): ReductionDef {
  const plan = { parts };
  const each = (c: ReduceCtx, fn: (pc: ReduceCtx, part: PlanPart, k: number) => readonly string[]): string[] =>
    parts.flatMap((part, k) => fn(partCtx(c, plan, k), part, k));
  const outOffset: number[] = [];
  parts.reduce((o, p) => (outOffset.push(o), o + p.outputs.length), 0);
  const widths = (c: ReduceCtx): number[] => parts.map((p, k) => slotsWidth(p.reduction.state(partCtx(c, plan, k))));
  const stateOffset = (c: ReduceCtx, k: number): number => widths(c).slice(0, k).reduce((a, b) => a + b, 0);
  const internal = (what: string) => (): never => {
    throw new Error(`internal: a fused kernel's ${what} is its parts'`);
  };
  return {
    name: parts.map((p) => p.reduction.name).join('+') as ReductionName,
    weight: 'optional',
    usesK: parts.some((p) => p.reduction.usesK),
    grad: null,
    check: () => undefined,
    outputs: () => parts.flatMap((p) => p.outputs),
    init: (c) => each(c, (pc, p) => p.reduction.init(pc)),
    combine: internal('combine'),
    finalize: (c, w) => each(c, (pc, p, k) => p.reduction.finalize(pc, (o, i, e) => w(outOffset[k]! + o, i, e))),
    // Each part's slots under its own prefix: `<p>u<k>_<base>` is the name its hooks use.
    state: (c) => parts.flatMap((p, k) => p.reduction.state(partCtx(c, plan, k)).map((s) => ({ ...s, base: `u${k}_${s.base}` }))),
    save: (c, put) => each(c, (pc, p, k) => p.reduction.save(pc, (i, e) => put(ixAdd(c.d, stateOffset(c, k), i), e))),
    load: (c, get) => each(c, (pc, p, k) => p.reduction.load(pc, (i) => get(ixAdd(c.d, stateOffset(c, k), i)))),
    merge: (c, from) => each(c, (pc, p, k) => p.reduction.merge(pc, `${from}u${k}_`)),
    ref: internal('reference'),
  };
}
