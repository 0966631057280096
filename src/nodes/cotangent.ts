import { Cat, mapVars, mkConst, mkVar, variables, type Formula } from '../graph/formula.js';
import { add, widen } from '../ops/diff.js';
import { keptCat, keptVar, type GradReduction } from '../ops/reduction-grads.js';
import type { BackendChoice } from '../scheduler/backends.js';
import type { Ranges } from '../kernel/ranges.js';
import type { Node, Cotangent } from './node.js';
import { reductionNodes } from './reduction.js';
import { ReshapeNode, rowsOf, rowView } from './reshape.js';

/*
 * Building blocks of the nodes' `backward`: cotangent terms summed inside formulas (so no separate
 * addition runs), and gradient reductions as nodes.
 */

/**
 * Builds the node of one gradient reduction; `inputs[v]` is what variable v reads. Variables are
 * renumbered to the ones used, so that nothing unused is read (or computed).
 */
export function buildGradReduction(gr: GradReduction, inputs: readonly Node[], backend: BackendChoice | undefined, ranges?: Ranges): Node {
  // A block-sparse forward reduction: its gradient reads the same blocks (the six arrays hold both axes' views of them).
  const grRanges = ranges;
  const roots = gr.weight === null ? [gr.formula] : [gr.formula, gr.weight];
  const order = new Map<number, number>();
  for (const f of roots) for (const v of variables(f)) if (!order.has(v.index)) order.set(v.index, order.size);
  const ins = [...order.keys()].map((i) => inputs[i]!);
  const f = gr.formula;
  // A bare variable reduced over an absent index (extent 1) is its own data: no kernel needed.
  if (grRanges === undefined && gr.weight === null && gr.reduction === 'Sum' && f.kind === 'var') {
    if (f.cat === Cat.param) return rowView(ins[0]!, f.dim);
    if (f.cat === keptCat(gr.axis) && !gr.sumRows) return ins[0]!;
  }
  const re = (g: Formula): Formula => mapVars(g, (v) => mkVar(order.get(v.index)!, v.dim, v.cat));
  const spec = { reduction: gr.reduction, axis: gr.axis, weight: gr.weight === null ? null : re(gr.weight) };
  const node = reductionNodes(re(f), ins, spec, backend, undefined, grRanges)[0]!;
  return gr.sumRows ? reductionNodes(mkVar(0, node.dim, Cat.i), [node], { reduction: 'Sum', axis: 0 }, backend)[0]! : node;
}

/**
 * Whether a gradient reduction is ones of the kept rows: a Sum of the constant 1 over an index
 * none of its variables has (one term), held at the forward extents by `IfElse(a, 1, 1)` anchors
 * (the gradient of a plain sum of rows, `Vi(r).sum(0)`, with respect to r). Its cotangent is then
 * `{ ones }`: no node and no kernel, and the gradients it feeds read the same inputs as the forward
 * reductions beside them, so that the scheduler computes them in the same pass (issue 17).
 */
export function isOnesGradient(gr: GradReduction): boolean {
  if (gr.reduction !== 'Sum' || gr.weight !== null || gr.sumRows) return false;
  const reduced = gr.axis === 1 ? Cat.j : Cat.i;
  if (variables(gr.formula).some((v) => v.cat === reduced)) return false;
  let h = gr.formula;
  while (h.kind === 'op' && h.op === 'IfElse' && h.args[1] === h.args[2]) h = h.args[1]!;
  if (h.kind === 'op' && h.op === 'SumT' && h.args[0]!.dim === 1) h = h.args[0]!;
  return h.kind === 'const' && h.value === 1;
}

/** The sum of cotangent terms as one node: a single term as it is, several as one elementwise-map reduction. */
export function sumCotangents(terms: readonly Cotangent[], like: Node, backend: BackendChoice | undefined): Node {
  const nodes: Node[] = [];
  let f: Formula | null = null;
  // Terms of different widths (a 1-D source used both as Vi and Pm) are added as flat columns.
  const flat = new Set(terms.map((t) => t.dim)).size > 1;
  for (const t of terms) {
    const d = flat ? 1 : t.dim;
    if ('ones' in t) f = add(f, widen(mkConst(1), d));
    else f = add(f, mkVar(nodes.push(flat ? new ReshapeNode(t.node, 'view', 1, rowsOf(1)) : t.node) - 1, d, 0));
  }
  if (nodes.length === 0) return new ReshapeNode(like, 'ones', like.dim, (t) => [...t.shape]);
  if (nodes.length === 1 && f!.kind === 'var') return nodes[0]!;
  return reductionNodes(f!, nodes, { reduction: 'Sum', axis: 1 }, backend)[0]!;
}

/** Formula of a reduction's cotangent (rows of width `dim`): its terms summed, each node term a variable of the kept index. */
export function cotangentFormula(terms: readonly Cotangent[], dim: number, axis: 0 | 1, bind: (n: Node) => number): Formula {
  let g: Formula | null = null;
  for (const t of terms) g = add(g, 'ones' in t ? widen(mkConst(1), dim) : keptVar(bind(t.node), dim, axis));
  return g!;
}
