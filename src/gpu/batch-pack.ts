import { Cat } from '../graph/formula.js';
import type { BatchRun } from '../kernel/batch.js';
import { packRows, type PackedCategory } from './pack.js';

/** What a batched dispatch binds: each category's packed rows and the batch table (i, j, parameter rows per batch). */
export interface PackedBatch {
  readonly data: ReadonlyMap<Cat, Float32Array>;
  readonly table: Uint32Array;
}

const SLOT: Readonly<Record<Cat, number>> = { [Cat.i]: 0, [Cat.j]: 1, [Cat.param]: 2 };

/**
 * Packs a batch's variables by category (pack.ts): a category of one variable binds that
 * variable's data as it is, and its batch rows are the variable's offsets; a category of several
 * variables packs one block per distinct combination of their offsets (usually one per batch, or
 * one when they all broadcast), and a batch's rows are its block's.
 */
export function packBatch(layout: readonly PackedCategory[], inputs: ReadonlyMap<number, Float32Array>, M: number, N: number, batch: BatchRun): PackedBatch {
  const table = new Uint32Array(batch.count * 3);
  const data = new Map<Cat, Float32Array>();
  const offset = (b: number, v: number): number => batch.offsets[b * batch.stride + v]!;
  for (const c of layout) {
    const rows = c.cat === Cat.i ? M : c.cat === Cat.j ? N : 1;
    const slot = SLOT[c.cat];
    if (c.vars.length === 1) {
      const v = c.vars[0]!.index;
      data.set(c.cat, inputs.get(v)!);
      for (let b = 0; b < batch.count; b++) table[b * 3 + slot] = offset(b, v);
      continue;
    }
    const blocks = new Map<string, number>();
    const parts: Float32Array[] = [];
    for (let b = 0; b < batch.count; b++) {
      const key = c.vars.map((v) => offset(b, v.index)).join(',');
      let block = blocks.get(key);
      if (block === undefined) {
        block = parts.length;
        blocks.set(key, block);
        const views = new Map(c.vars.map((v) => [v.index, inputs.get(v.index)!.subarray(offset(b, v.index) * v.dim, (offset(b, v.index) + rows) * v.dim)] as const));
        parts.push(packRows(c, views, rows));
      }
      table[b * 3 + slot] = block * rows;
    }
    const all = new Float32Array(parts.length * rows * c.stride);
    parts.forEach((p, k) => all.set(p, k * rows * c.stride));
    data.set(c.cat, all);
  }
  return { data, table };
}
