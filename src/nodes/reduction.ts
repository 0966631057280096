import { Cat, mkVar, variables, type Formula, type VarNode } from '../graph/formula.js';
import { printFormula } from '../graph/print.js';
import { batchDims } from '../kernel/batch.js';
import { makePlan } from '../kernel/plan.js';
import type { Ranges } from '../kernel/ranges.js';
import { hasGradient, keptVar, reductionGrad } from '../ops/reduction-grads.js';
import type { ReductionSpec } from '../ops/reductions.js';
import { chosenBackend, type BackendChoice } from '../scheduler/backends.js';
import { declsOf, executeFused, executeReduction, type ArgDecl } from '../scheduler/execute.js';
import type { FusionKernel, FusionOffer } from '../scheduler/slots.js';
import { op } from '../ops/build.js';
import type { Tensor } from '../tensor.js';
import { buildGradReduction, cotangentFormula, isOnesGradient } from './cotangent.js';
import { Node, type BackwardContext, type Cotangent } from './node.js';
import { BatchSumNode, rowView } from './reshape.js';

/**
 * Builds the node(s) of one fused reduction of `formula`, whose variable v reads `inputs[v]`.
 * Pair reductions give two nodes sharing one kernel run. Planning here reports dimension and
 * reduction errors where the user built the node.
 */
export function reductionNodes(
  formula: Formula,
  inputs: readonly Node[],
  spec: ReductionSpec,
  backend?: BackendChoice,
  /** How each input is declared, when some may not be read by the formula (formula strings); default: the formula's variables. */
  decls?: readonly (ArgDecl | undefined)[],
  /** Block-sparse: pykeops's six `ranges` arrays (the axis picks which three are read). */
  ranges?: Ranges,
): ReductionNode[] {
  const plan = makePlan(formula, spec);
  const kernel = new ReductionKernel(formula, spec, backend, decls, ranges);
  return plan.outputs.map((out, o) => new ReductionNode(inputs, kernel, o, out.width, formula, spec, backend, decls, ranges));
}

/**
 * The kernel run of one reduction, shared by its output nodes: computed once per set of input
 * values (a stamp of their identities), alone or fused with sibling reductions by the scheduler
 * (src/scheduler/fusion.ts), which then leaves each kernel its outputs.
 */
class ReductionKernel implements FusionKernel<Tensor> {
  /**
   * The outputs for the latest input values. `primedFault`: the transient fault of a fused kernel
   * this kernel was part of, given once to each output node (`taken`): a node asking again with
   * the same inputs is a retry, which runs the kernel again.
   */
  private last: { stamp: string; value: Promise<Tensor[]>; primedFault?: { taken: Set<number> } } | undefined;
  /** What the scheduler's fusion needs to know (cached: the formula never changes). */
  private offerParts: { axis: 0 | 1; kept: number[]; reduced: number[] } | undefined;

  constructor(
    readonly formula: Formula,
    readonly spec: ReductionSpec,
    readonly backend: BackendChoice | undefined,
    readonly decls: readonly (ArgDecl | undefined)[] | undefined,
    readonly ranges: Ranges | undefined,
  ) {}

  /** Output `output` for these input values (the kernel runs once per stamp). */
  output(vals: readonly Tensor[], output: number): Promise<Tensor> {
    const stamp = stampOf(vals);
    const last = this.last;
    const fresh = last?.stamp === stamp && (last.primedFault === undefined || !last.primedFault.taken.has(output));
    if (!fresh) {
      const value = executeReduction(this.formula, { ...this.spec, backend: this.backend, ...(this.ranges === undefined ? {} : { ranges: this.ranges }) }, vals, this.info());
      this.last = { stamp, value };
      // A failed run is not kept: a retry after a transient fault (a lost device) runs again.
      value.catch(() => {
        if (this.last?.value === value) this.last = undefined;
      });
    }
    this.last!.primedFault?.taken.add(output);
    return this.last!.value.then((outs) => outs[output]!);
  }

  private info(): { decls?: readonly (ArgDecl | undefined)[] } {
    return this.decls === undefined ? {} : { decls: this.decls };
  }

  /** The offer of a node of this kernel to the scheduler's fusion; undefined on the cluster backend (it shards each reduction itself). */
  offer(): FusionOffer<Tensor> | undefined {
    const backend = this.backend ?? chosenBackend() ?? 'auto';
    // Block-sparse reductions run alone (their j loop is their own).
    if (backend === 'cluster' || this.ranges !== undefined) return undefined;
    if (this.offerParts === undefined) {
      const { axis } = this.spec;
      const kept = axis === 1 ? Cat.i : Cat.j;
      const decls = this.decls ?? declsOf([this.formula, this.spec.weight ?? null]);
      const at = (cat: Cat): number[] => decls.flatMap((d, k) => (d !== undefined && d.cat === cat ? [k] : []));
      this.offerParts = { axis, kept: at(kept), reduced: at(kept === Cat.i ? Cat.j : Cat.i) };
    }
    const { axis, kept, reduced } = this.offerParts;
    return { key: `${backend}|axis ${axis}`, kept, reduced, kernel: this };
  }

  /** Runs these kernels together (see FusionKernel): each one run keeps its outputs for its inputs' stamp. */
  async fuse(kernels: readonly { readonly kernel: FusionKernel<Tensor>; readonly inputs: readonly Tensor[] }[]): Promise<readonly (readonly number[])[]> {
    const mine = kernels.flatMap((k) => (k.kernel instanceof ReductionKernel ? [{ kernel: k.kernel, inputs: k.inputs }] : []));
    if (mine.length !== kernels.length) return [];
    const { results, groups } = await executeFused(
      mine.map(({ kernel, inputs }) => ({ formula: kernel.formula, opts: { ...kernel.spec, backend: kernel.backend }, args: inputs, info: kernel.info() })),
    );
    results.forEach((r, k) => {
      if (r === undefined) return;
      const { kernel, inputs } = mine[k]!;
      const value = r.ok ? Promise.resolve(r.value) : Promise.reject(r.error);
      value.catch(() => undefined); // handled by the nodes that take it
      kernel.last = { stamp: stampOf(inputs), value, ...(r.ok ? {} : { primedFault: { taken: new Set<number>() } }) };
    });
    return groups;
  }
}

/**
 * The formula with its extents pinned: for a category (i or j) that is declared but that the
 * formulas do not read, `IfElse(a, F, F)` (which is F) reads the first such argument a, so that a
 * reduction built from F (a gradient) keeps the extent the arguments gave. Undefined when no pin is needed.
 */
function pinExtents(f: Formula, weight: Formula | null, decls: readonly (ArgDecl | undefined)[]): Formula | undefined {
  const read = new Set([f, ...(weight === null ? [] : [weight])].flatMap((g) => variables(g).map((v) => v.cat)));
  let out: Formula | undefined;
  decls.forEach((d, k) => {
    if (d === undefined || d.cat === Cat.param || read.has(d.cat)) return;
    read.add(d.cat);
    const v = mkVar(k, d.dim, d.cat);
    const g = out ?? f;
    out = op('IfElse', [d.dim === 1 ? v : op('Elem', [v], [0]), g, g]);
  });
  return out;
}

/** The result of one reduction output; pair reductions share one kernel run. */
export class ReductionNode extends Node {
  private views: Node | undefined;

  constructor(
    inputs: readonly Node[],
    private readonly kernel: ReductionKernel,
    /** Which output of the reduction this node is (1 = the indices of a pair reduction). */
    readonly output: number,
    private readonly width: number,
    readonly formula: Formula,
    readonly spec: ReductionSpec,
    /** The backend this reduction runs on (undefined: the one `init` chose). */
    readonly backend?: BackendChoice,
    /** How each input is declared (a formula-string reduction may have inputs its formula does not read). */
    readonly decls?: readonly (ArgDecl | undefined)[],
    /** The block-sparse ranges it reduces over (undefined: dense). */
    readonly ranges?: Ranges,
  ) {
    super(inputs);
    this.wire({ reduction: { formula, spec, output, ...(backend === undefined ? {} : { backend }) } });
  }

  /** @internal The scheduler's fusion of sibling reductions (src/scheduler/fusion.ts). */
  fusible(): FusionOffer<Tensor> | undefined {
    return this.kernel.offer();
  }

  override get dim(): number {
    return this.width;
  }

  /** The nodes variable v of `formula` reads. */
  get sources(): readonly Node[] {
    return this.inputs;
  }

  protected async compute(vals: readonly Tensor[]): Promise<Tensor> {
    return this.kernel.output(vals, this.output);
  }

  override describe(): string {
    return `${this.spec.reduction}(${printFormula(this.formula, 500)}, axis ${this.spec.axis}${this.ranges === undefined ? '' : ', block-sparse'})`;
  }

  override gradBackend(): BackendChoice | undefined {
    return this.backend;
  }

  /** [kept rows, ...row shape]: the rows from the inputs bound to the kept index (1 when none is). */
  override staticShape(): readonly number[] {
    const out = makePlan(this.formula, this.spec).outputs[this.output]!;
    const kept = this.spec.axis === 1 ? Cat.i : Cat.j;
    const roots = this.spec.weight ? [this.formula, this.spec.weight] : [this.formula];
    const vars = roots.flatMap((f) => variables(f));
    const v = vars.find((w) => w.cat === kept);
    const shapeOf = (w: VarNode): readonly number[] | undefined => this.inputs[w.index]?.staticShape();
    const keptShape = v === undefined ? undefined : shapeOf(v);
    const rows = v === undefined ? 1 : keptShape === undefined ? -1 : keptShape.length === 1 ? keptShape[0]! : keptShape[keptShape.length - 2]!;
    return [...staticBatch(vars.map((w) => ({ shape: shapeOf(w), param: w.cat === Cat.param }))), rows, ...out.rowShape];
  }

  /** int32 for indices; values are float64 when an input is (numpy's promotion; see executeReduction). */
  override valueDtype(): 'float32' | 'float64' | 'int32' {
    if (makePlan(this.formula, this.spec).outputs[this.output]!.int) return 'int32';
    return this.inputs.some((n) => n.valueDtype() === 'float64') ? 'float64' : 'float32';
  }

  protected override details(): string {
    return ` ${this.valueDtype()} on ${this.backend ?? chosenBackend() ?? 'auto'}`;
  }

  override gradInputs(): readonly Node[] {
    return this.output === 0 && hasGradient(this.spec.reduction) ? this.inputs : [];
  }

  override gradShape(t: Tensor): number[] {
    const rowShape = makePlan(this.formula, this.spec).outputs[this.output]!.rowShape;
    return [t.data.length / rowShape.reduce((a, b) => a * b, 1), ...rowShape];
  }

  /**
   * A reduction's gradient is a reduction over the other index (KeOps `DiffT`): for each variable
   * whose input leads to a target, one fused reduction (ops/reduction-grads.ts gives its formula)
   * reading R's inputs, the cotangent terms and, where the rule needs it, R's own output.
   */
  override backward(terms: readonly Cotangent[], ctx: BackwardContext): void {
    const { spec, backend } = this;
    const axis = spec.axis;
    const inputs: Node[] = [...this.inputs];
    const memo = new Map<Node, number>();
    // Extra nodes are bound after R's own inputs; each once, even if several gradients read it.
    const bind = (n: Node): number => {
      let i = memo.get(n);
      if (i === undefined) memo.set(n, (i = inputs.push(n) - 1));
      return i;
    };
    // Gradients keep the forward extents: a category given only by inputs the formula does not read is pinned.
    const formula = (this.decls === undefined ? undefined : pinExtents(this.formula, spec.weight ?? null, this.decls)) ?? this.formula;
    let lse: Node | undefined;
    const inp = {
      g: cotangentFormula(terms, this.dim, axis, bind),
      // A vector KMin's value is [rows, K, D]: read as rows of width K*D.
      out: () => keptVar(bind(this.formula.dim > 1 && spec.reduction.startsWith('KMin') ? this.rowView() : this), this.dim, axis),
      lse: () => {
        lse ??= reductionNodes(this.formula, this.inputs, { reduction: 'LogSumExp', axis }, backend, this.decls, this.ranges)[0]!;
        return keptVar(bind(lse), 1, axis);
      },
    };
    const info = { ...spec, formula, weight: spec.weight ?? null, K: spec.K ?? 0 };
    const vars = new Map<string, VarNode>();
    for (const f of info.weight === null ? [info.formula] : [info.formula, info.weight]) for (const v of variables(f)) vars.set(v.key, v);
    // Batched (an input has leading batch dims): each gradient is summed over the dims its input broadcasts.
    const batched = [...vars.values()].some((v) => {
      const s = this.inputs[v.index]!.staticShape();
      return s !== undefined && batchDims(s, v.cat === Cat.param).length > 0;
    });
    for (const v of vars.values()) {
      const src = this.inputs[v.index]!;
      if (!ctx.reaches(src)) continue;
      const gr = reductionGrad(info, v, inp);
      if (gr === null) continue;
      // A row sum's gradient is ones (no kernel), unless blocks or broadcast batch dims shape it.
      if (isOnesGradient(gr) && this.ranges === undefined && !batched) {
        ctx.push(src, { ones: true, dim: v.dim });
        continue;
      }
      // The gradient of a block-sparse reduction reduces over the same blocks (pykeops): the six arrays give either axis.
      const node = buildGradReduction(gr, inputs, backend, this.ranges);
      ctx.push(src, { node: batched ? new BatchSumNode(node, src, v.cat === Cat.param) : node, dim: v.dim });
    }
  }

  /** One [rows, dim] view of this node, shared by the gradients that read it. */
  private rowView(): Node {
    return (this.views ??= rowView(this, this.dim));
  }
}

const tensorIds = new WeakMap<object, number>();
let nextTensorId = 0;
/** Identity of an input value: a node's value object changes exactly when the node recomputes. */
function inputStamp(t: Tensor): number {
  let id = tensorIds.get(t);
  if (id === undefined) tensorIds.set(t, (id = nextTensorId++));
  return id;
}

/** Identity of a set of input values. */
const stampOf = (vals: readonly Tensor[]): string => vals.map((v) => inputStamp(v)).join(',');

/**
 * The broadcast batch dims of inputs whose shapes are known (pykeops: `[...batch, n, D]` for a
 * variable, `[...batch, D]` for a parameter); an unknown or non-broadcasting dim reads -1.
 */
export function staticBatch(inputs: readonly { readonly shape: readonly number[] | undefined; readonly param: boolean }[]): number[] {
  const batches = inputs.map(({ shape, param }) => (shape === undefined ? [] : batchDims(shape, param)));
  const rank = Math.max(0, ...batches.map((b) => b.length));
  const out = new Array<number>(rank).fill(1);
  for (const b of batches) {
    b.forEach((s, k) => {
      const at = rank - b.length + k;
      if (s !== 1) out[at] = out[at] === 1 || out[at] === s ? s : -1;
    });
  }
  return out;
}
