import { reductionNodes, ReductionNode, type ReductionSpec } from '../api/lazy.js';
import { Node, SourceNode } from '../api/node.js';
import { SolveNode } from '../api/solve.js';
import { op } from '../nodes/build.js';
import type { Tensor, TensorLike } from '../api/tensor.js';
import { KernelflowError } from '../errors.js';
import { mapVars, mkConst, mkVar, variables, type Formula, type VarNode } from '../graph/formula.js';
import { add, widen } from '../nodes/ops/diff.js';
import { makePlan } from '../nodes/plan.js';
import type { ReductionName } from '../nodes/reductions.js';
import { hasGradient, keptCat, keptVar, reductionGrad, type GradReduction, type ReductionInfo } from './reductions.js';

/*
 * Reverse mode over the node graph (the "mirrored graph" of DESIGN.md). Cotangents are lists of
 * terms per node; a reduction's gradient with respect to each of its inputs is a new fused
 * reduction (reductions.ts) whose extra variables read the cotangent terms (summed inside the
 * formula, so no separate addition runs) and, where the rule needs them, the reduction's own
 * output. Only nodes on a path from the output to a target are visited.
 *
 * Sources outside this scheme (ComputedNode, solves) are treated as constants: no gradient
 * flows through them.
 */

/**
 * A node whose value is another node's data reshaped (`view`), or a constant of another node's
 * shape (`zeros`, `ones`). Views pass cotangents through; constants stop them.
 */
export class GradNode extends Node {
  constructor(
    readonly source: Node,
    readonly role: 'view' | 'zeros' | 'ones',
    /** Width of a row: the dimension this node has when lifted with Vi/Vj. */
    readonly dim: number,
    private readonly shapeOf: (t: Tensor) => number[],
  ) {
    super([source]);
    this.wire({ kind: 'computed', label: `gradient ${role}` });
  }
  protected compute([t]: readonly Tensor[]): Promise<Tensor> {
    const shape = this.shapeOf(t!);
    const n = t!.data.length;
    const data = this.role === 'view' ? Float32Array.from(t!.data) : new Float32Array(n).fill(this.role === 'ones' ? 1 : 0);
    return Promise.resolve({ data, shape });
  }
  override describe(): string {
    return `gradient ${this.role} of ${this.source.describe()}`;
  }
}

/** A cotangent contribution: a node with rows of width `dim` (shape [rows, dim], or [rows] when dim = 1), or the default ones. */
type Term = { readonly node: Node; readonly dim: number } | { readonly ones: true; readonly dim: number };

const prod = (xs: readonly number[]): number => xs.reduce((a, b) => a * b, 1);
const rowsOf = (dim: number) => (t: Tensor): number[] => [t.data.length / dim, dim];

/** The vector dimension of a node's rows, where it is known. */
function dimOf(n: Node): number {
  if (n instanceof ReductionNode || n instanceof GradNode || n instanceof SolveNode) return n.dim;
  if (n instanceof SourceNode) return n.shape.length <= 1 ? 1 : n.shape[n.shape.length - 1]!;
  return 1;
}

/** The shape a gradient of `w` should have: w's own (the data layout is the same row-major order). */
function shapeLike(w: Node): (t: Tensor) => number[] {
  if (w instanceof SourceNode) return (t) => (prod(w.shape) === t.data.length ? [...w.shape] : [...t.shape]);
  if (w instanceof ReductionNode) {
    const rowShape = makePlan(w.formula, { ...w.spec, weight: w.spec.weight ?? null }).outputs[w.output]!.rowShape;
    return (t) => [t.data.length / prod(rowShape), ...rowShape];
  }
  return (t) => [...t.shape];
}

/** Whether cotangents flow into the inputs of `n`, and which nodes they are. */
function parents(n: Node): readonly Node[] {
  if (n instanceof ReductionNode) return n.output === 0 && hasGradient(n.spec.reduction) ? n.sources : [];
  if (n instanceof GradNode) return n.role === 'view' ? [n.source] : [];
  if (n instanceof SolveNode) return [...n.kernelInputs, n.rhs];
  return [];
}

/**
 * Builds the node of one gradient reduction; `inputs[v]` is what variable v reads. Variables are
 * renumbered to the ones used, so that nothing unused is read (or computed).
 */
function buildReduction(gr: GradReduction, inputs: readonly Node[], backend: ReductionSpec['backend']): Node {
  const roots = gr.weight === null ? [gr.formula] : [gr.formula, gr.weight];
  const order = new Map<number, number>();
  for (const f of roots) for (const v of variables(f)) if (!order.has(v.index)) order.set(v.index, order.size);
  const ins = [...order.keys()].map((i) => inputs[i]!);
  const f = gr.formula;
  // A bare variable reduced over an absent index (extent 1) is its own data: no kernel needed.
  if (gr.weight === null && gr.reduction === 'Sum' && f.kind === 'var') {
    if (f.cat === 2) return new GradNode(ins[0]!, 'view', f.dim, rowsOf(f.dim));
    if (f.cat === keptCat(gr.axis) && !gr.sumRows) return ins[0]!;
  }
  const re = (g: Formula): Formula => mapVars(g, (v) => mkVar(order.get(v.index)!, v.dim, v.cat));
  const spec = { reduction: gr.reduction, axis: gr.axis, weight: gr.weight === null ? null : re(gr.weight), backend };
  const node = reductionNodes(re(f), ins, spec)[0]!;
  return gr.sumRows ? reductionNodes(mkVar(0, node.dim, 0), [node], { reduction: 'Sum', axis: 0, backend })[0]! : node;
}

/** Sum of cotangent terms as one node: a single term as it is, several as one elementwise-map reduction. */
function sumTerms(terms: readonly Term[], like: Node, backend: ReductionSpec['backend']): Node {
  const nodes: Node[] = [];
  let f: Formula | null = null;
  const dims = new Set(terms.map((t) => t.dim));
  // Terms of different widths (a 1-D source used both as Vi and Pm) are added as flat columns.
  const flat = dims.size > 1;
  for (const t of terms) {
    const d = flat ? 1 : t.dim;
    if ('ones' in t) f = add(f, widen(mkConst(1), d));
    else {
      const node = flat ? new GradNode(t.node, 'view', 1, rowsOf(1)) : t.node;
      f = add(f, mkVar(nodes.push(node) - 1, d, 0));
    }
  }
  if (nodes.length === 0) return new GradNode(like, 'ones', dimOf(like), (t) => [...t.shape]);
  if (nodes.length === 1 && f!.kind === 'var') return nodes[0]!;
  return reductionNodes(f!, nodes, { reduction: 'Sum', axis: 1, backend })[0]!;
}

/** Formula of the cotangent of reduction R: the sum of its terms, each node term a variable of R's kept index. */
function cotangentFormula(terms: readonly Term[], R: ReductionNode, bind: (n: Node) => number): Formula {
  let g: Formula | null = null;
  for (const t of terms) g = add(g, 'ones' in t ? widen(mkConst(1), R.dim) : keptVar(bind(t.node), R.dim, R.spec.axis));
  return g!;
}

/**
 * Reverse-mode gradient of `output` with respect to each node of `wrt`, as nodes of the same
 * graph: d<output, gradOutput>/d wrt[k], shaped like wrt[k]. A gradient with respect to an
 * i-variable of a reduction over j is itself one fused reduction over j (KeOps `Grad`); a
 * j-variable's is a reduction over i; a parameter's sums over both. The results recompute when
 * a source changes, like any node, and can be differentiated again (Hessian-vector products).
 * Targets that `output` does not depend on get zeros. Index outputs (argmin, argKmin, ...) and
 * nodes computed outside formulas carry no gradient.
 * @param output the node to differentiate (a reduction, a solve, or a node built from them).
 * @param wrt the nodes to differentiate with respect to (sources, or any node `output` reads).
 * @param gradOutput the cotangent of `output` (default: ones of its shape).
 * @returns one node per `wrt` entry, shaped like it.
 * @example
 * ```ts
 * import { source, Vi, Vj, grad } from 'kernelflow';
 * const M = 100, N = 200;
 * const x = source(Float32Array.from({ length: M * 3 }, Math.random), [M, 3]);
 * const y = source(Float32Array.from({ length: N * 3 }, Math.random), [N, 3]);
 * const b = source(Float32Array.from({ length: N }, Math.random), [N, 1]);
 * const v = source(Float32Array.from({ length: M * 3 }, Math.random), [M, 3]);
 * const a = Vi(x).sqdist(Vj(y)).neg().exp().matmul(b);        // [M, 1]
 * const [dx, dy] = grad(a, [x, y]);                             // d sum(a) / dx: [M, 3], / dy: [N, 3]
 * const [hv] = grad(Vi(dx!).dot(Vi(v)).sum(0), [x]);            // Hessian-vector product, [M, 3]
 * console.log((await dx!.read()).shape, (await dy!.read()).shape, (await hv!.read()).shape);
 * ```
 */
export function grad(output: Node, wrt: readonly Node[], gradOutput?: Node | TensorLike): Node[] {
  if (!(output instanceof Node)) throw new KernelflowError('ARGUMENT', 'grad: output must be a Node');
  const targets = new Set(wrt);
  for (const w of wrt) if (!(w instanceof Node)) throw new KernelflowError('ARGUMENT', 'grad: every target must be a Node');
  const reach = new Map<Node, boolean>();
  const reaches = (n: Node): boolean => {
    let r = reach.get(n);
    if (r === undefined) {
      reach.set(n, false);
      r = targets.has(n) || parents(n).map(reaches).some(Boolean);
      reach.set(n, r);
    }
    return r;
  };
  // Reverse post-order: every node before the nodes it reads, so its cotangent is complete when visited.
  const order: Node[] = [];
  const seen = new Set<Node>();
  const visit = (n: Node): void => {
    if (seen.has(n) || !reaches(n)) return;
    seen.add(n);
    parents(n).forEach(visit);
    order.push(n);
  };
  visit(output);
  const cot = new Map<Node, Term[]>();
  const push = (n: Node, t: Term): void => void (cot.get(n) ?? cot.set(n, []).get(n)!).push(t);
  const dim = dimOf(output);
  if (gradOutput === undefined) push(output, { ones: true, dim });
  else {
    const g = gradOutput instanceof Node ? gradOutput : new SourceNode(gradOutput, 'gradOutput');
    push(output, { node: new GradNode(g, 'view', dim, rowsOf(dim)), dim });
  }
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    const terms = cot.get(n);
    if (terms === undefined) continue;
    if (n instanceof GradNode) terms.forEach((t) => push(n.source, t));
    else if (n instanceof ReductionNode) backward(n, terms, reaches, push);
    else if (n instanceof SolveNode) solveBackward(n, terms, reaches, push);
  }
  return wrt.map((w) => {
    const terms = cot.get(w) ?? [];
    if (terms.length === 0) return new GradNode(w, 'zeros', dimOf(w), (t) => [...t.shape]);
    const backend = terms.map((t) => ('node' in t && t.node instanceof ReductionNode ? t.node.spec.backend : undefined)).find(Boolean);
    return new GradNode(sumTerms(terms, w, backend), 'view', terms[0]!.dim, shapeLike(w));
  });
}

/**
 * A solve's gradient is a solve (KeOps KernelSolveAutograd, JAX custom_linear_solve): with
 * c = (alpha Id + K)^-1 b and K symmetric, the adjoint a = (alpha Id + K)^-1 g gives d/db = a and,
 * for the variables inside K, the gradient of -<a, K c> with c held fixed.
 */
function solveBackward(n: SolveNode, terms: readonly Term[], reaches: (m: Node) => boolean, push: (m: Node, t: Term) => void): void {
  const backend = n.options.backend;
  const g = sumTerms(terms, n, backend);
  const a = new SolveNode(n.kernel, n.kernelInputs, g, { ...n.options, x0: undefined }, n.dim);
  if (reaches(n.rhs)) push(n.rhs, { node: a, dim: n.dim });
  if (!n.kernelInputs.some(reaches)) return;
  const p = n.kernelInputs.length;
  const Kc = reductionNodes(op('Mult', [n.kernel, mkVar(p, n.dim, 1)]), [...n.kernelInputs, n], { reduction: 'Sum', axis: 1, backend })[0]!;
  const minusA = reductionNodes(op('Minus', [mkVar(0, n.dim, 0)]), [a], { reduction: 'Sum', axis: 1, backend })[0]!;
  backward(Kc, [{ node: minusA, dim: n.dim }], (m) => m !== n && reaches(m), push);
}

const rowViews = new WeakMap<Node, GradNode>();
/** One [rows, dim] view per node, so that gradients reading it share it. */
function rowView(n: ReductionNode): GradNode {
  let v = rowViews.get(n);
  if (v === undefined) rowViews.set(n, (v = new GradNode(n, 'view', n.dim, rowsOf(n.dim))));
  return v;
}

/** Pushes the cotangent contributions of reduction R (cotangent `terms`) onto the inputs that lead to a target. */
function backward(R: ReductionNode, terms: readonly Term[], reaches: (n: Node) => boolean, push: (n: Node, t: Term) => void): void {
  const { spec } = R;
  const info: ReductionInfo = {
    formula: R.formula,
    weight: spec.weight ?? null,
    reduction: spec.reduction as ReductionName,
    axis: spec.axis,
    K: spec.K ?? 0,
  };
  const inputs: Node[] = [...R.sources];
  const memo = new Map<Node, number>();
  // Extra nodes are bound after R's own inputs; each once, even if several gradients read it.
  const bind = (n: Node): number => {
    let i = memo.get(n);
    if (i === undefined) memo.set(n, (i = inputs.push(n) - 1));
    return i;
  };
  const g = cotangentFormula(terms, R, bind);
  let lse: Node | undefined;
  const inp = {
    g,
    // A vector KMin's value is [rows, K, D]: read as rows of width K*D.
    out: () => keptVar(bind(R.formula.dim > 1 && spec.reduction.startsWith('KMin') ? rowView(R) : R), R.dim, spec.axis),
    lse: () => {
      lse ??= reductionNodes(R.formula, R.sources, { reduction: 'LogSumExp', axis: spec.axis, backend: spec.backend })[0]!;
      return keptVar(bind(lse), 1, spec.axis);
    },
  };
  const vars = new Map<string, VarNode>();
  for (const f of info.weight === null ? [info.formula] : [info.formula, info.weight]) for (const v of variables(f)) vars.set(v.key, v);
  for (const v of vars.values()) {
    const src = R.sources[v.index]!;
    if (!reaches(src)) continue;
    const gr = reductionGrad(info, v, inp);
    if (gr !== null) push(src, { node: buildReduction(gr, inputs, spec.backend), dim: v.dim });
  }
}
