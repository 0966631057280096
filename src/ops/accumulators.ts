import { forEach, isWide, ix, ixAdd, type Ix } from './loop.js';
import type { PrintCtx } from './op.js';
import type { ReduceCtx, ReductionDef } from './reductions.js';

/*
 * Accumulators of the reduction hooks. An accumulator of n coordinates is n scalars `<p><base><k>`
 * when n is narrow, or one array `<p><base>` filled by loops when n is wide (the dialect's unrollMax), so the
 * hooks of a 1000-wide Sum or a 200-long K-list print loops, not 1000 statements.
 */

/** One accumulator of a partial state: `n` coordinates (an array when `wide`, default: by the dialect's unrollMax), or n = 0 for a lone scalar named `base`. */
export interface StateSlot {
  readonly base: string;
  readonly n: number;
  readonly wide?: boolean;
}

/** The hooks' printer: loop variables are named from the accumulator prefix and a hint (nested loops use different hints). */
export const printer = (c: ReduceCtx): PrintCtx => ({ d: c.d, fresh: (hint) => `${c.p}${hint}` });

/** Coordinate k of accumulator `base` (of n coordinates), under prefix `p` (default: the context's). */
export const acc =
  (c: ReduceCtx, base: string, n: number, wide = isWide(c.d, n)) =>
  (k: Ix, p: string = c.p): string =>
    wide ? `${p}${base}[${ix(c.d, k)}]` : `${p}${base}${k}`;

/** A lone scalar accumulator. */
export const one = (c: ReduceCtx, base: string) => (p: string = c.p): string => `${p}${base}`;

/** Declares accumulator `base` of n coordinates (n = 0: a lone scalar), each set to `init`. */
export function declAcc(c: ReduceCtx, base: string, n: number, init: string, wide = isWide(c.d, n)): string[] {
  if (n === 0) return [c.d.decl(`${c.p}${base}`, init)];
  if (!wide) return Array.from({ length: n }, (_, k) => c.d.decl(`${c.p}${base}${k}`, init));
  const a = acc(c, base, n, true);
  const decl = c.d.declArray(`${c.p}${base}`, n);
  const fill = forEach(printer(c), n, (k) => [`${a(k)} = ${init};`]);
  if (c.arrays === undefined) return [decl, ...fill];
  c.arrays.push(decl);
  return fill;
}

/** Width (floats) of a state layout. */
export const slotsWidth = (slots: readonly StateSlot[]): number => slots.reduce((w, s) => w + Math.max(1, s.n), 0);

/** Statements visiting every float of a state layout: `visit(offset, accumulator)` for each, in storage order. */
function eachFloat(c: ReduceCtx, slots: readonly StateSlot[], visit: (at: Ix, name: string) => string): string[] {
  const out: string[] = [];
  let off = 0;
  for (const s of slots) {
    if (s.n === 0) out.push(visit(off, `${c.p}${s.base}`));
    else {
      const a = acc(c, s.base, s.n, s.wide);
      const at = off;
      out.push(...forEach(printer(c), s.n, (k) => [visit(ixAdd(c.d, at, k), a(k))]));
    }
    off += Math.max(1, s.n);
  }
  return out;
}

/** `state`, `save` and `load` from a reduction's state layout and its `init` (which declares every accumulator). */
export function stateHooks(
  state: (c: ReduceCtx) => readonly StateSlot[],
  init: (c: ReduceCtx) => string[],
): Pick<ReductionDef, 'state' | 'save' | 'load' | 'init'> {
  return {
    init,
    state,
    save: (c, put) => eachFloat(c, state(c), (at, n) => put(at, n)),
    load: (c, get) => [...init(c), ...eachFloat(c, state(c), (at, n) => `${n} = ${get(at)};`)],
  };
}
