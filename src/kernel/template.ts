import { Cat, type VarNode } from '../graph/formula.js';
import { linearize, type Linearized } from '../graph/lower.js';
import type { Ix, Operand } from '../ops/loop.js';
import type { Dialect } from '../ops/op.js';
import type { ReduceCtx } from '../ops/reductions.js';
import { partCtx, type KernelPlan } from './plan.js';
import { renderTemps, type RenderedTemps } from './render.js';

/**
 * How one backend spells the parts of the kernel loop that differ between languages. The loop
 * itself (what runs per row, per j, per pair, and in which order) is `kernelTemplate`'s.
 */
export interface LoopDialect {
  readonly d: Dialect;
  /** An expression reading component k (a constant or an index expression) of variable v for row r of the block (at the current j for a j-variable). */
  load(v: VarNode, k: Ix, r: number): string;
  /** Statements starting row r of a block: its index and the offsets of its i-variables' rows. */
  rowStart(r: number, iVars: readonly VarNode[]): string[];
  /** The opening line of the loop over j. */
  readonly openJ: string;
  /** The lines closing the loop over j (default `}`; a tiled loop closes two). */
  readonly closeJ?: readonly string[];
  /** Statements at the top of each j iteration, before any temp: the offsets of the j-variables' rows. */
  jStart(jVars: readonly VarNode[]): string[];
  /** The reduced index as the reduction hooks receive it. */
  readonly j: string;
  /** Statements ending row r after the j loop: finalize into the outputs, or save a partial state. */
  rowEnd(r: number, c: ReduceCtx): string[];
}

/** Statements, and the declarations of the arrays they use (for the backend to hoist out of every loop: never allocated per pair). */
export interface Code {
  readonly arrays: readonly string[];
  readonly body: readonly string[];
}

/** The kernel loop of a plan, printed with a backend's loop dialect. */
export interface KernelTemplate {
  readonly lin: Linearized;
  /** Statements run once per kernel call, before any row (level 0: parameters, constants). */
  readonly once: Code;
  /** The statements reducing a block of R rows over j; names of the block's temps end in `_${tag}${r}`. */
  block(R: number, tag: string): Code;
}

/** The roots a plan's kernel computes: F, then G when there is one, for each of its parts in order. */
export const planRoots = (plan: KernelPlan) => plan.parts.flatMap((p) => (p.g === null ? [p.f] : [p.f, p.g]));

const indent = (lines: readonly string[]): string[] => lines.map((l) => `  ${l}`);

/** The weight operand of a reduction without one. */
const NO_WEIGHT: Operand = {
  dim: 0,
  at: () => {
    throw new Error('internal: a reduction without weight read one');
  },
};

/**
 * The one loop template of both backends. Each temporary is placed in the outermost loop it can
 * live in: level 0 once, level 1 per row, level 2 once per j for all R rows of a block (the rows
 * share the j loads), level 3 per pair; the plan's reduction hooks wrap the j loop per row.
 * A fused plan (several parts) reduces every part in the same j loop: the temporaries of all their
 * formulas are linearized together (a subexpression they share is computed once), and each part's
 * accumulators sit beside the others' under a prefix of their own (`partCtx`).
 */
export function kernelTemplate(plan: KernelPlan, loop: LoopDialect, lin: Linearized = linearize(planRoots(plan))): KernelTemplate {
  const { d } = loop;
  const vars = plan.vars.flatMap((v) => (v === undefined ? [] : [v]));
  const iVars = vars.filter((v) => v.cat === Cat.i);
  const jVars = vars.filter((v) => v.cat === Cat.j);
  const load = (r: number) => (v: VarNode, k: Ix): string => loop.load(v, k, r);
  const top = renderTemps(lin, d, load(0), '_r0');
  const red = plan.reduction;
  // Where each part's roots are in `lin.roots` (F, then G when it has one).
  const rootAt: number[] = [];
  plan.parts.reduce((k, p) => (rootAt.push(k), k + (p.g === null ? 1 : 2)), 0);

  const block = (R: number, tag: string): Code => {
    const rs: RenderedTemps[] = [];
    for (let r = 0; r < R; r++) {
      const first = rs[0];
      const shared = first === undefined ? { from: top, levels: [0 as const] } : { from: first, levels: [0 as const, 2 as const] };
      rs.push(renderTemps(lin, d, load(r), `_${tag}${r}`, shared));
    }
    const accArrays: string[] = [];
    const ctx = (r: number): ReduceCtx => ({ d, fDim: plan.f.dim, gDim: plan.g?.dim ?? 0, K: plan.K, p: `acc${r}_`, arrays: accArrays });
    const root = (r: number, k: number): Operand => rs[r]!.values[lin.roots[k]!]!;
    const combine = (r: number): string[] =>
      plan.parts.flatMap((p, k) => p.reduction.combine(partCtx(ctx(r), plan, k), root(r, rootAt[k]!), p.g === null ? NO_WEIGHT : root(r, rootAt[k]! + 1), loop.j));
    const each = (fn: (r: number) => readonly string[]): string[] => rs.flatMap((_, r) => fn(r));
    // Level-2 temps (and their arrays) are the first row's, shared by the block.
    const arrays = [...rs[0]!.arrays[2], ...each((r) => [...rs[r]!.arrays[1], ...rs[r]!.arrays[3]])];
    const body = [
      ...each((r) => loop.rowStart(r, iVars)),
      ...each((r) => rs[r]!.stmts[1]),
      ...each((r) => red.init(ctx(r))),
      loop.openJ,
      ...indent([
        ...loop.jStart(jVars),
        ...rs[0]!.stmts[2],
        ...each((r) => [...rs[r]!.stmts[3], ...combine(r)]),
      ]),
      ...(loop.closeJ ?? ['}']),
      ...each((r) => loop.rowEnd(r, ctx(r))),
    ];
    // Accumulator arrays were declared (once each) while printing the hooks.
    return { arrays: [...arrays, ...new Set(accArrays)], body };
  };
  return { lin, once: { arrays: top.arrays[0], body: top.stmts[0] }, block };
}
