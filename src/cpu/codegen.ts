import { Cat, type VarNode } from '../graph/formula.js';
import type { Linearized } from '../graph/lower.js';
import type { KernelPlan } from '../kernel/plan.js';
import { kernelTemplate, type LoopDialect } from '../kernel/template.js';
import type { Ix } from '../ops/loop.js';
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
  if (pairTemps > 48) return 1;
  // Measured on the Gaussian sum (2 cores, V8): 2 rows beat 1 and 4. K-lists (ArgKMin of SqDist,
  // D = 3, N = 3e4, one thread, alternated): K = 10 (scalar lists) 1 row 0.14-0.49, 2 rows
  // 0.21-0.66, 4 rows 0.27-0.79, 8 rows 0.14-0.52 G pairs/s; K = 32 (arrays) 1, 2, 4 rows 0.15, 0.18, 0.22.
  return plan.reduction.usesK ? 4 : 2;
}

const indent = (lines: readonly string[], n: number): string => lines.map((l) => ' '.repeat(n) + l).join('\n');

/** The JavaScript spelling of the kernel loop: row i + r of the block, variables in their own arrays `V<index>`. */
function jsLoop(plan: KernelPlan): LoopDialect {
  return {
    d: jsDialect,
    load: (v: VarNode, k: Ix, r: number) =>
      v.cat === Cat.i ? `V${v.index}[ib${v.index}_${r} + ${k}]` : v.cat === Cat.j ? `V${v.index}[jb${v.index} + ${k}]` : `V${v.index}[${k}]`,
    rowStart: (r, iVars) => iVars.map((v) => `const ib${v.index}_${r} = (i + ${r}) * ${v.dim};`),
    openJ: 'for (let j = 0; j < N; j++) {',
    jStart: (jVars) => jVars.map((v) => `const jb${v.index} = j * ${v.dim};`),
    j: 'j',
    rowEnd: (r, c) => plan.reduction.finalize(c, (o, k, e) => `O${o}[(i + ${r}) * ${plan.outputs[o]!.width} + ${k}] = ${e};`),
  };
}

/**
 * Renders a plan as the source of a JavaScript function body that returns the kernel: the shared
 * loop template (kernel/template.ts) over blocks of R rows, then the remaining rows one by one.
 */
export function renderKernelJs(plan: KernelPlan, rows?: number): string {
  const t = kernelTemplate(plan, jsLoop(plan));
  const R = rows ?? rowsPerBlock(t.lin, plan);
  const vars = plan.vars.flatMap((v) => (v === undefined ? [] : [v]));
  const [blocked, single] = [t.block(R, 'b'), t.block(1, 'q')];
  // Arrays (wide temps, accumulators) are allocated once per compiled kernel (each worker compiles
  // its own); both row loops run one after the other, so they share the accumulators' arrays.
  return `${JS_PRELUDE}
${[...new Set([...t.once.arrays, ...blocked.arrays, ...single.arrays])].join('\n')}
return function kernel(N, i0, i1, ins, outs) {
${indent([...vars.map((v) => `const V${v.index} = ins[${v.index}];`), ...plan.outputs.map((_, o) => `const O${o} = outs[${o}];`)], 2)}
${indent(t.once.body, 2)}
  let i = i0;
  for (; i + ${R} <= i1; i += ${R}) {
${indent(blocked.body, 4)}
  }
  for (; i < i1; i++) {
${indent(single.body, 4)}
  }
};`;
}

/** Compiles rendered source (in this thread). */
export function compileKernelJs(source: string): CpuKernel {
  return new Function(source)() as CpuKernel;
}
