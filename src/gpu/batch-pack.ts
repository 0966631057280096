import { Cat } from '../graph/formula.js';
import type { BatchRun } from '../kernel/batch.js';
import type { KernelPlan } from '../kernel/plan.js';
import type { KernelShape } from './codegen.js';
import { packLayout, packRows, type PackedCategory } from './pack.js';
import type { Schedule } from './schedule.js';

/** Batch axes a batched WGSL kernel decodes from its workgroup's y (more are run batch by batch). */
export const BATCH_RANK = 4;

/**
 * Uniform fields a batched kernel adds to FULL_UNIFORM: the batch shape right-aligned in
 * BATCH_RANK axes (leading 1s), then per category (i, j, parameters) its rows per step of each axis.
 */
export const BATCH_FIELDS = [
  ...['b0', 'b1', 'b2', 'b3'],
  ...['i0', 'i1', 'i2', 'i3'],
  ...['j0', 'j1', 'j2', 'j3'],
  ...['p0', 'p1', 'p2', 'p3'],
] as const;

/** What a batched dispatch binds: each category's packed rows, and the BATCH_FIELDS values of its uniform. */
export interface PackedBatch {
  readonly data: ReadonlyMap<Cat, Float32Array>;
  readonly uniform: readonly number[];
}

const contiguous = (shape: readonly number[], rows: number): number[] => {
  const out = new Array<number>(shape.length).fill(0);
  let step = rows;
  for (let k = shape.length - 1; k >= 0; k--) {
    out[k] = shape[k] === 1 ? 0 : step;
    step *= shape[k]!;
  }
  return out;
};

/**
 * Packs a batch's variables by category (pack.ts) so that each category's first row for batch b
 * is an affine function of b's batch index (rows per step of each axis: uniform values, so the
 * shader's offsets are uniform across a workgroup and its j loads stay scalar). A category of one
 * variable binds that variable's data as it is, with its own strides; a category of several packs
 * one block per index of the batch axes any of them varies along.
 */
export function packBatch(layout: readonly PackedCategory[], inputs: ReadonlyMap<number, Float32Array>, M: number, N: number, batch: BatchRun): PackedBatch | undefined {
  const rank = batch.shape.length;
  if (rank > BATCH_RANK) return undefined;
  const pad = BATCH_RANK - rank;
  const strides: Record<Cat, number[]> = { [Cat.i]: [], [Cat.j]: [], [Cat.param]: [] };
  const data = new Map<Cat, Float32Array>();
  for (const c of layout) {
    const rows = c.cat === Cat.i ? M : c.cat === Cat.j ? N : 1;
    const varStrides = c.vars.map((v) => batch.strides[v.index] ?? new Array<number>(rank).fill(0));
    if (c.vars.length === 1) {
      data.set(c.cat, inputs.get(c.vars[0]!.index)!);
      strides[c.cat] = [...varStrides[0]!];
      continue;
    }
    // The axes along which some variable of the category varies; a block per index of those.
    const shape = batch.shape.map((s, k) => (varStrides.some((st) => st[k] !== 0) ? s : 1));
    const blocks = shape.reduce((a, b) => a * b, 1);
    const all = new Float32Array(blocks * rows * c.stride);
    for (let blk = 0; blk < blocks; blk++) {
      let rest = blk;
      const idx = new Array<number>(rank).fill(0);
      for (let k = rank - 1; k >= 0; k--) {
        idx[k] = rest % shape[k]!;
        rest = Math.floor(rest / shape[k]!);
      }
      const views = new Map(
        c.vars.map((v, n) => {
          const first = idx.reduce((a, i, k) => a + i * varStrides[n]![k]!, 0);
          return [v.index, inputs.get(v.index)!.subarray(first * v.dim, (first + rows) * v.dim)] as const;
        }),
      );
      all.set(packRows(c, views, rows), blk * rows * c.stride);
    }
    data.set(c.cat, all);
    strides[c.cat] = contiguous(shape, rows);
  }
  const padded = (xs: readonly number[], fill: number): number[] => [...new Array<number>(pad).fill(fill), ...xs];
  return {
    data,
    uniform: [
      ...padded(batch.shape, 1),
      ...padded(strides[Cat.i].length === rank ? strides[Cat.i] : new Array<number>(rank).fill(0), 0),
      ...padded(strides[Cat.j].length === rank ? strides[Cat.j] : new Array<number>(rank).fill(0), 0),
      ...padded(strides[Cat.param].length === rank ? strides[Cat.param] : new Array<number>(rank).fill(0), 0),
    ],
  };
}

/** Whether a batch runs as one dispatch: workgroups in x (rows) and y (batches), and each buffer within one binding. */
export function fitsOneDispatch(plan: KernelPlan, M: number, N: number, batch: BatchRun, shape: KernelShape, lim: { maxGroups: number; bindBytes: number }): boolean {
  const groups = Math.ceil(M / (shape.rowsPerThread * shape.workgroupSize));
  const rows = (cat: Cat): number => (cat === Cat.i ? M : cat === Cat.j ? N : 1);
  // Upper bound of a packed buffer: every batch its own block.
  const packedFits = packLayout(plan).every((c) => batch.count * rows(c.cat) * c.stride * 4 <= lim.bindBytes);
  const outFits = plan.outputs.every((o) => batch.count * M * o.width * 4 <= lim.bindBytes);
  return groups <= lim.maxGroups && batch.count <= lim.maxGroups && packedFits && outFits;
}

/** The one dispatch of a batch: workgroups over the rows in x, batches in y. */
export function batchSchedule(M: number, N: number, batch: BatchRun, uniform: readonly number[], shape: KernelShape): Schedule {
  const groups = Math.ceil(M / (shape.rowsPerThread * shape.workgroupSize));
  return { split: null, pass1: [{ rows: [0, M], terms: [0, N], uniform: [M, N, 0, 0, ...uniform], groups: [groups, batch.count] }], pass2: [] };
}
