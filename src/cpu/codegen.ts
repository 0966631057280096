import { Cat, type VarNode } from '../graph/formula.js';
import type { Linearized } from '../graph/lower.js';
import type { KernelPlan } from '../kernel/plan.js';
import { kernelTemplate, type LoopDialect } from '../kernel/template.js';
import type { Ix } from '../ops/loop.js';
import { JS_PRELUDE, jsDialect, jsDialect64 } from './dialect.js';

/**
 * Signature of a generated CPU kernel: reduces over j in [0, N) for rows i in [i0, i1). A ranged
 * kernel (plan.ranged) reads the segments and j-ranges of kernel/ranges.ts at `ins[V]` and
 * `ins[V + 1]`, V = plan.vars.length, and ignores N.
 */
export type CpuKernel = (
  N: number,
  i0: number,
  i1: number,
  ins: readonly (Float32Array | Float64Array | Int32Array | undefined)[],
  outs: readonly (Float32Array | Float64Array | Int32Array)[],
  /** Batched kernels only: per-batch row offsets of each variable (kernel/batch.ts), and the kept rows per batch. */
  batchOffsets?: Int32Array,
  batchRows?: number,
) => void;

/** Rows per block: several independent rows per j iteration give the CPU parallel work (ILP) and share the j loads. */
function rowsPerBlock(lin: Linearized, plan: KernelPlan): number {
  const pairTemps = lin.temps.filter((t) => t.level === 3).length;
  if (pairTemps > 48) return 1;
  // A fused kernel (several parts) reads the j side for more work per pair: 2 rows, whether or not a part keeps K-lists (streaming
  // registration, KMin K = 3 + two sums, 2000 x 2000: 1 row 145-190 ms, 2 rows 76-106 ms).
  if (plan.parts.length > 1) return 2;
  // Measured on the Gaussian sum (2 cores, V8): 2 rows beat 1 and 4. K-lists (ArgKMin of SqDist,
  // D = 3, N = 3e4, one thread, alternated): K = 10 (scalar lists) 1 row 0.14-0.49, 2 rows
  // 0.21-0.66, 4 rows 0.27-0.79, 8 rows 0.14-0.52 G pairs/s; K = 32 (arrays) 1, 2, 4 rows 0.15, 0.18, 0.22.
  return plan.reduction.usesK ? 4 : 2;
}

const indent = (lines: readonly string[], n: number): string => lines.map((l) => ' '.repeat(n) + l).join('\n');

/**
 * The JavaScript spelling of the kernel loop: row i + r of the block, variables in their own arrays
 * `V<index>`. Batched, every variable's rows start at its batch offset `vb<index>` and the outputs'
 * at `ob` (plain integer arithmetic, set per batch segment by `renderKernelJs`).
 */
function jsLoop(plan: KernelPlan, batched: boolean): LoopDialect {
  const row = (v: VarNode, what: string): string => (batched ? `(vb${v.index} + ${what})` : `(${what})`);
  return {
    // The code is the same for both dtypes but for exp; the arrays it is given decide the storage.
    d: plan.dtype === 'float64' ? jsDialect64 : jsDialect,
    load: (v: VarNode, k: Ix, r: number) =>
      v.cat === Cat.i
        ? `V${v.index}[ib${v.index}_${r} + ${k}]`
        : v.cat === Cat.j
          ? `V${v.index}[jb${v.index} + ${k}]`
          : batched
            ? `V${v.index}[pb${v.index} + ${k}]`
            : `V${v.index}[${k}]`,
    rowStart: (r, iVars) => iVars.map((v) => `const ib${v.index}_${r} = ${row(v, `i + ${r}`)} * ${v.dim};`),
    // Block-sparse: over the row segment's j-ranges s0 ... s1 - 1, then j in each (plain integer loops).
    openJ: plan.ranged === true ? 'for (let s = s0; s < s1; s++) { const je = RED[2 * s + 1]; for (let j = RED[2 * s]; j < je; j++) {' : 'for (let j = 0; j < N; j++) {',
    ...(plan.ranged === true ? { closeJ: ['}', '}'] } : {}),
    jStart: (jVars) => jVars.map((v) => `const jb${v.index} = ${row(v, 'j')} * ${v.dim};`),
    j: 'j',
    rowEnd: (r, c) => plan.reduction.finalize(c, (o, k, e) => `O${o}[(${batched ? 'ob + ' : ''}i + ${r}) * ${plan.outputs[o]!.width} + ${k}] = ${e};`),
  };
}

/**
 * Renders a plan as the source of a JavaScript function body that returns the kernel: the shared
 * loop template (kernel/template.ts) over blocks of R rows, then the remaining rows one by one.
 */
export function renderKernelJs(plan: KernelPlan, rows?: number, batched = false): string {
  const t = kernelTemplate(plan, jsLoop(plan, batched));
  const R = rows ?? rowsPerBlock(t.lin, plan);
  const vars = plan.vars.flatMap((v) => (v === undefined ? [] : [v]));
  const [blocked, single] = [t.block(R, 'b'), t.block(1, 'q')];
  if (batched) {
    const batchLoops = [
      `for (; i + ${R} <= i1; i += ${R}) {`,
      ...blocked.body.map((l) => `  ${l}`),
      '}',
      'for (; i < i1; i++) {',
      ...single.body.map((l) => `  ${l}`),
      '}',
    ];
    return renderBatchedJs(plan, t.once, [...t.once.arrays, ...blocked.arrays, ...single.arrays], batchLoops);
  }
  const rowLoops = (lo: string, hi: string): string => `  let i = ${lo};
  for (; i + ${R} <= ${hi}; i += ${R}) {
${indent(blocked.body, 4)}
  }
  for (; i < ${hi}; i++) {
${indent(single.body, 4)}
  }`;
  // Ranged: the rows [i0, i1) are walked segment by segment, each with its own j-ranges s0 ... s1 - 1.
  const loops =
    plan.ranged === true
      ? `  const SEG = ins[${plan.vars.length}], RED = ins[${plan.vars.length + 1}];
  for (let g = 0; g < SEG.length; g += 4) {
    const a = Math.max(SEG[g], i0), b = Math.min(SEG[g + 1], i1);
    if (a >= b) continue;
    const s0 = SEG[g + 2], s1 = SEG[g + 3];
${indent(rowLoops('a', 'b').split('\n'), 2)}
  }`
      : rowLoops('i0', 'i1');
  // Arrays (wide temps, accumulators) are allocated once per compiled kernel (each worker compiles
  // its own); both row loops run one after the other, so they share the accumulators' arrays.
  return `${JS_PRELUDE}
${[...new Set([...t.once.arrays, ...blocked.arrays, ...single.arrays])].join('\n')}
return function kernel(N, i0, i1, ins, outs) {
${indent([...vars.map((v) => `const V${v.index} = ins[${v.index}];`), ...plan.outputs.map((_, o) => `const O${o} = outs[${o}];`)], 2)}
${indent(t.once.body, 2)}
${loops}
};`;
}

/**
 * The batched kernel: rows i0 .. i1 count over all batches (batch b holds rows b*M .. b*M + M - 1),
 * so the worker pool splits batch x row blocks as it splits rows. Each batch segment sets the
 * variables' row offsets from the offsets table, runs the once-per-call statements (parameters may
 * be batched) and the same row loops as the plain kernel over its rows.
 */
function renderBatchedJs(plan: KernelPlan, once: { readonly body: readonly string[] }, arrays: readonly string[], rowLoops: readonly string[]): string {
  const vars = plan.vars.flatMap((v) => (v === undefined ? [] : [v]));
  const S = plan.vars.length;
  const offsets = vars.map((v) =>
    v.cat === Cat.param ? `const pb${v.index} = BO[bo + ${v.index}] * ${v.dim};` : `const vb${v.index} = BO[bo + ${v.index}];`,
  );
  return `${JS_PRELUDE}
${[...new Set(arrays)].join('\n')}
return function kernel(N, g0, g1, ins, outs, BO, M) {
${indent([...vars.map((v) => `const V${v.index} = ins[${v.index}];`), ...plan.outputs.map((_, o) => `const O${o} = outs[${o}];`)], 2)}
  let g = g0;
  while (g < g1) {
    const bt = Math.floor(g / M);
    const ob = bt * M;
    const bo = bt * ${S};
    const i1 = Math.min(g1, ob + M) - ob;
    let i = g - ob;
    g = ob + i1;
${indent([...offsets, ...once.body, ...rowLoops], 4)}
  }
};`;
}

/** Compiles rendered source (in this thread). */
export function compileKernelJs(source: string): CpuKernel {
  return new Function(source)() as CpuKernel;
}

/**
 * A batched kernel around a plain one (the WASM kernels have no batch offsets of their own): rows
 * g0 .. g1 count over all batches (batch b holds rows b*M .. b*M + M - 1); each batch segment runs
 * the plain kernel on views of the variables' rows at the batch's offsets (`BO`, as `renderBatchedJs`
 * reads them) and of the outputs at row b*M. One kernel run still, split by the pool like any other.
 */
export function wrapBatched(plan: KernelPlan, plainSource: string): string {
  const vars = plan.vars.map((v) => (v === undefined ? null : [v.cat, v.dim]));
  return `const plain = (function () {
${plainSource}
})();
const VARS = ${JSON.stringify(vars)};
const WIDTHS = ${JSON.stringify(plan.outputs.map((o) => o.width))};
return function kernel(N, g0, g1, ins, outs, BO, M) {
  const S = VARS.length;
  for (let g = g0; g < g1; ) {
    const b = Math.floor(g / M);
    const lo = g - b * M, hi = Math.min(M, g1 - b * M);
    const views = ins.map((a, v) => {
      const x = VARS[v];
      if (a === undefined || x === null || x === undefined) return a;
      const at = BO[b * S + v] * x[1];
      return a.subarray(at, at + (x[0] === 0 ? M : x[0] === 1 ? N : 1) * x[1]);
    });
    plain(N, lo, hi, views, outs.map((o, k) => o.subarray(b * M * WIDTHS[k], (b + 1) * M * WIDTHS[k])));
    g = b * M + hi;
  }
};`;
}

/**
 * How an index output of a ranged plan says that no term set it (the slot keeps its start, not
 * mapped back to j): K-lists start at -1; the pairs' index starts at 0, but their value output
 * (output 0) still holds its start then (+inf for Min, -inf for Max: a term never beats it).
 * ArgMin and ArgMax alone cannot tell, so their ranged plans keep the JavaScript kernel.
 */
const UNSET_INDEX: Readonly<Record<string, 'negative' | { readonly start: number }>> = {
  KMin: 'negative',
  ArgKMin: 'negative',
  KMin_ArgKMin: 'negative',
  Min_ArgMin: { start: Infinity },
  Max_ArgMax: { start: -Infinity },
};

/** Whether a block-sparse plan can run a plain (dense) kernel segment by segment through `wrapRanged`. */
export const rangedByGather = (plan: KernelPlan): boolean =>
  plan.outputs.every((o) => o.int !== true) || (plan.parts.length === 1 && UNSET_INDEX[plan.reduction.name] !== undefined);

/**
 * A block-sparse kernel around a plain dense one (the WASM kernels have no ranged loop of their
 * own): for each segment of rows [a, b) (kernel/ranges.ts, `SEG` and `RED` after the variables),
 * the j-variables' rows of its j-ranges are gathered, in range order, into contiguous scratch
 * arrays; the plain kernel reduces rows [a, b) over those n rows; index outputs a term set
 * (`UNSET_INDEX`) are mapped from gathered positions back to original j. Terms are visited in the same
 * order as the JavaScript ranged loop, so ties resolve alike.
 */
export function wrapRanged(plan: KernelPlan, plainSource: string): string {
  const vars = plan.vars.map((v) => (v === undefined ? null : [v.cat, v.dim]));
  return `const plain = (function () {
${plainSource}
})();
const VARS = ${JSON.stringify(vars)};
const WIDTHS = ${JSON.stringify(plan.outputs.map((o) => o.width))};
// Per output: null (values), 'negative' (indices, -1 unset), or [value output, its start] (indices unset where that value is).
const UNSET = [${plan.outputs.map((o) => { const u = UNSET_INDEX[plan.reduction.name]; return o.int !== true || u === undefined ? 'null' : u === 'negative' ? "'negative'" : `[0, ${u.start}]`; }).join(', ')}];
const scratch = VARS.map(() => new Float32Array(0));
let jrows = new Int32Array(0);
return function kernel(N, i0, i1, ins, outs) {
  const V = VARS.length, SEG = ins[V], RED = ins[V + 1];
  for (let g = 0; g < SEG.length; g += 4) {
    const a = Math.max(SEG[g], i0), b = Math.min(SEG[g + 1], i1);
    if (a >= b) continue;
    const s0 = SEG[g + 2], s1 = SEG[g + 3];
    let n = 0;
    for (let s = s0; s < s1; s++) n += RED[2 * s + 1] - RED[2 * s];
    if (jrows.length < n) jrows = new Int32Array(n * 2);
    let t = 0;
    for (let s = s0; s < s1; s++) for (let j = RED[2 * s]; j < RED[2 * s + 1]; j++) jrows[t++] = j;
    const views = ins.slice(0, V).map((src, v) => {
      const x = VARS[v];
      if (src === undefined || x === null || x[0] !== 1) return src;
      const dim = x[1];
      if (scratch[v].length < n * dim) scratch[v] = new Float32Array(n * dim * 2);
      const dst = scratch[v];
      for (let r = 0; r < n; r++) {
        const from = jrows[r] * dim;
        for (let c = 0; c < dim; c++) dst[r * dim + c] = src[from + c];
      }
      return dst;
    });
    plain(n, a, b, views, outs);
    UNSET.forEach((u, o) => {
      if (u === null) return;
      const out = outs[o];
      const value = u === 'negative' ? undefined : outs[u[0]];
      for (let k = a * WIDTHS[o]; k < b * WIDTHS[o]; k++) {
        if (value === undefined ? out[k] >= 0 : value[k] !== u[1]) out[k] = jrows[out[k]];
      }
    });
  }
};`;
}
