import { linearize } from '../graph/lower.js';
import type { KernelPlan } from '../nodes/plan.js';
import type { ReduceCtx } from '../nodes/reductions.js';
import { renderTemps } from '../nodes/render.js';
import { JS_PRELUDE, jsDialect } from './dialect.js';

/** Signature of a generated CPU kernel: reduces over j in [0, N) for rows i in [i0, i1). */
export type CpuKernel = (
  N: number,
  i0: number,
  i1: number,
  ins: readonly (Float32Array | undefined)[],
  outs: readonly (Float32Array | Int32Array)[],
) => void;

/**
 * Renders a plan as the source of a JavaScript function body that returns the kernel.
 * Each temporary is placed in the outermost loop it can live in (parameters once, i-only
 * subexpressions once per row), then the reduction hooks wrap the inner j loop.
 */
export function renderKernelJs(plan: KernelPlan): string {
  const roots = plan.g === null ? [plan.f] : [plan.f, plan.g];
  const lin = linearize(roots);
  const base = (cat: 0 | 1 | 2, index: number): string => (cat === 0 ? `ib${index} + ` : cat === 1 ? `jb${index} + ` : '');
  const r = renderTemps(lin, jsDialect, (v, k) => `V${v.index}[${base(v.cat, v.index)}${k}]`);
  const f = r.names[lin.roots[0]!]!;
  const g = plan.g === null ? [] : r.names[lin.roots[1]!]!;
  const c: ReduceCtx = { d: jsDialect, fDim: plan.f.dim, gDim: plan.g?.dim ?? 0, K: plan.K, p: 'acc_' };
  const red = plan.reduction;
  const vars = plan.vars.flatMap((v) => (v === undefined ? [] : [v]));
  const write = (o: number, k: number, e: string): string => `O${o}[i * ${plan.outputs[o]!.width} + ${k}] = ${e};`;
  return `${JS_PRELUDE}
return function kernel(N, i0, i1, ins, outs) {
${vars.map((v) => `  const V${v.index} = ins[${v.index}];`).join('\n')}
${plan.outputs.map((_, o) => `  const O${o} = outs[${o}];`).join('\n')}
  ${r.stmts[0].join('\n  ')}
  for (let i = i0; i < i1; i++) {
${vars.filter((v) => v.cat === 0).map((v) => `    const ib${v.index} = i * ${v.dim};`).join('\n')}
    ${r.stmts[1].join('\n    ')}
    ${red.init(c).join('\n    ')}
    for (let j = 0; j < N; j++) {
${vars.filter((v) => v.cat === 1).map((v) => `      const jb${v.index} = j * ${v.dim};`).join('\n')}
      ${r.stmts[2].join('\n      ')}
      ${red.combine(c, f, g, 'j').join('\n      ')}
    }
    ${red.finalize(c, write).join('\n    ')}
  }
};`;
}

/** Compiles rendered source (in this thread). */
export function compileKernelJs(source: string): CpuKernel {
  return new Function(source)() as CpuKernel;
}
