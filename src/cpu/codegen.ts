import type { VarNode } from '../graph/formula.js';
import { Cat } from '../graph/formula.js';
import { linearize, type Linearized } from '../graph/lower.js';
import type { KernelPlan } from '../kernel/plan.js';
import type { ReduceCtx } from '../ops/reductions.js';
import { renderTemps, type RenderedTemps } from '../kernel/render.js';
import { JS_PRELUDE, jsDialect } from './dialect.js';

/** Signature of a generated CPU kernel: reduces over j in [0, N) for rows i in [i0, i1). */
export type CpuKernel = (
  N: number,
  i0: number,
  i1: number,
  ins: readonly (Float32Array | undefined)[],
  outs: readonly (Float32Array | Int32Array)[],
) => void;

/** Rows per block: several independent rows per j iteration give the CPU parallel work (ILP) and share the j loads. */
function rowsPerBlock(lin: Linearized, plan: KernelPlan): number {
  const pairTemps = lin.temps.filter((t) => t.level === 3).length;
  // Measured on the Gaussian sum (2 cores, V8): 2 rows beat 1 and 4.
  return plan.reduction.usesK || pairTemps > 48 ? 1 : 2;
}

const indent = (lines: readonly string[], n: number): string => lines.map((l) => ' '.repeat(n) + l).join('\n');

/**
 * Renders a plan as the source of a JavaScript function body that returns the kernel.
 * Each temporary is placed in the outermost loop it can live in (parameters once, i-only
 * subexpressions once per row, j-only ones once per j for a whole block of rows), then the
 * reduction hooks wrap the inner j loop. Rows are processed in blocks of R, the rest one by one.
 */
export function renderKernelJs(plan: KernelPlan, rows?: number): string {
  const roots = plan.g === null ? [plan.f] : [plan.f, plan.g];
  const lin = linearize(roots);
  const R = rows ?? rowsPerBlock(lin, plan);
  const vars = plan.vars.flatMap((v) => (v === undefined ? [] : [v]));
  const iVars = vars.filter((v) => v.cat === Cat.i);
  const jVars = vars.filter((v) => v.cat === Cat.j);
  const load = (r: number) => (v: VarNode, k: number): string =>
    v.cat === Cat.i ? `V${v.index}[ib${v.index}_${r} + ${k}]` : v.cat === Cat.j ? `V${v.index}[jb${v.index} + ${k}]` : `V${v.index}[${k}]`;
  const top = renderTemps(lin, jsDialect, load(0), '_r0');

  const block = (n: number, tag: string): string => {
    const rs: RenderedTemps[] = [];
    for (let r = 0; r < n; r++) {
      const first = rs[0];
      const shared = first === undefined ? { from: top, levels: [0 as const] } : { from: first, levels: [0 as const, 2 as const] };
      rs.push(renderTemps(lin, jsDialect, load(r), `_${tag}${r}`, shared));
    }
    const ctx = (r: number): ReduceCtx => ({ d: jsDialect, fDim: plan.f.dim, gDim: plan.g?.dim ?? 0, K: plan.K, p: `acc${r}_` });
    const comps = (r: number, root: number): readonly string[] => (root < 0 ? [] : rs[r]!.names[lin.roots[root]!]!);
    const each = (fn: (r: number) => readonly string[]): string[] => rs.flatMap((_, r) => fn(r));
    const red = plan.reduction;
    return [
      ...each((r) => iVars.map((v) => `const ib${v.index}_${r} = (i + ${r}) * ${v.dim};`)),
      ...each((r) => rs[r]!.stmts[1]),
      ...each((r) => red.init(ctx(r))),
      'for (let j = 0; j < N; j++) {',
      indent(jVars.map((v) => `const jb${v.index} = j * ${v.dim};`), 2),
      indent(rs[0]!.stmts[2], 2),
      indent(each((r) => [...rs[r]!.stmts[3], ...red.combine(ctx(r), comps(r, 0), comps(r, plan.g === null ? -1 : 1), 'j')]), 2),
      '}',
      ...each((r) => red.finalize(ctx(r), (o, k, e) => `O${o}[(i + ${r}) * ${plan.outputs[o]!.width} + ${k}] = ${e};`)),
    ].join('\n');
  };

  return `${JS_PRELUDE}
return function kernel(N, i0, i1, ins, outs) {
${indent([...vars.map((v) => `const V${v.index} = ins[${v.index}];`), ...plan.outputs.map((_, o) => `const O${o} = outs[${o}];`)], 2)}
${indent(top.stmts[0], 2)}
  let i = i0;
  for (; i + ${R} <= i1; i += ${R}) {
${indent(block(R, 'b').split('\n'), 4)}
  }
  for (; i < i1; i++) {
${indent(block(1, 'q').split('\n'), 4)}
  }
};`;
}

/** Compiles rendered source (in this thread). */
export function compileKernelJs(source: string): CpuKernel {
  return new Function(source)() as CpuKernel;
}
