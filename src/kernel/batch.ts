import { DimensionError, LimitError } from '../errors.js';
import { Cat } from '../graph/formula.js';

/**
 * Leading batch dimensions of a reduction (pykeops's "nbatchdims"): every argument may carry
 * batch dimensions before its rows; they broadcast as in NumPy (missing leading dims and dims of
 * size 1 repeat). The kernel runs all batches in one dispatch: batch b's rows of variable v start
 * at row `offsets[b * stride + v]` of v's data (a broadcast dim contributes 0), a table computed
 * here once per call, so that the compiled kernel never depends on batch sizes.
 */
export interface BatchRun {
  /** Number of batches (the product of the broadcast batch shape), at least 1. */
  readonly count: number;
  /** Entries per batch in `offsets` (the plan's variable count). */
  readonly stride: number;
  /** `offsets[b * stride + v]`: first row of variable v in batch b (in rows of v's data). */
  readonly offsets: Int32Array;
  /** The broadcast batch shape (its product is `count`). */
  readonly shape: readonly number[];
  /** `strides[v][k]`: rows of variable v per step of batch axis k (0 where v broadcasts); undefined for unused indices. */
  readonly strides: readonly (readonly number[] | undefined)[];
}

/** The batch dims of one argument and its rows per batch (1 for a parameter). */
export interface BatchedArg {
  readonly name: string;
  readonly batch: readonly number[];
  readonly rows: number;
}

/**
 * The batch dims of an argument's shape: `[...batch, n, D]` for a variable (`[n]` has none),
 * `[...batch, D]` for a parameter, except `[1, D]`, the unbatched parameter form (API.md), which
 * has none (it broadcasts the same either way; only the result's shape would differ).
 */
export function batchDims(shape: readonly number[], param: boolean): number[] {
  if (param) return shape.length === 2 && shape[0] === 1 ? [] : shape.slice(0, Math.max(0, shape.length - 1));
  return shape.slice(0, Math.max(0, shape.length - 2));
}

/** Largest batch count one dispatch takes (WebGPU's workgroups per dimension). */
export const MAX_BATCHES = 65535;

/** Broadcast batch shape of the arguments, or a DimensionError naming the two that disagree. */
export function broadcastBatch(args: readonly (BatchedArg | undefined)[]): number[] {
  // A loop, not map: the arguments may be a sparse array (holes are unused argument indices).
  let rank = 0;
  for (const a of args) rank = Math.max(rank, a?.batch.length ?? 0);
  const out: number[] = new Array<number>(rank).fill(1);
  const who: (string | undefined)[] = new Array<string | undefined>(rank).fill(undefined);
  const shown = (a: BatchedArg): string => `[${a.batch.join(', ')}]`;
  const owner: (BatchedArg | undefined)[] = new Array<BatchedArg | undefined>(rank).fill(undefined);
  for (const a of args) {
    if (a === undefined) continue;
    const pad = rank - a.batch.length;
    a.batch.forEach((s, k) => {
      const at = pad + k;
      if (s === 1) return;
      if (out[at] !== 1 && out[at] !== s) {
        const o = owner[at]!;
        throw new DimensionError(
          `batch dimensions of ${a.name} ${shown(a)} and ${who[at]} ${shown(o)} do not broadcast: ${s} against ${out[at]} at batch axis ${at} (sizes must agree or be 1)`,
        );
      }
      out[at] = s;
      who[at] = a.name;
      owner[at] = a;
    });
  }
  return out;
}

/**
 * The per-batch row offsets of each argument for a broadcast batch `shape`: argument v's batch
 * dims are right-aligned against it, and a dim of size 1 (or a missing one) has stride 0.
 */
export function batchRun(shape: readonly number[], args: readonly (BatchedArg | undefined)[]): BatchRun {
  const count = shape.reduce((a, b) => a * b, 1);
  if (count > MAX_BATCHES) throw new LimitError('batches', `${count} batches (batch shape [${shape.join(', ')}]) exceed the limit of ${MAX_BATCHES} per call`);
  const stride = args.length;
  const offsets = new Int32Array(count * stride);
  const allStrides: (number[] | undefined)[] = new Array<number[] | undefined>(stride).fill(undefined);
  args.forEach((a, v) => {
    if (a === undefined) return;
    // Row stride of each batch axis of this argument (0 where it broadcasts).
    const pad = shape.length - a.batch.length;
    const strides = new Array<number>(shape.length).fill(0);
    let step = a.rows;
    for (let k = a.batch.length - 1; k >= 0; k--) {
      strides[pad + k] = a.batch[k] === 1 ? 0 : step;
      step *= a.batch[k]!;
    }
    allStrides[v] = strides;
    for (let b = 0; b < count; b++) {
      let rest = b;
      let off = 0;
      for (let k = shape.length - 1; k >= 0; k--) {
        const s = shape[k]!;
        off += (rest % s) * strides[k]!;
        rest = Math.floor(rest / s);
      }
      offsets[b * stride + v] = off;
    }
  });
  return { count, stride, offsets, shape: [...shape], strides: allStrides };
}

/**
 * Runs a batch one batch at a time through `run` (M and N rows per batch, on views of each
 * variable's rows): for a backend without batched kernels, or a batch too large for one dispatch.
 */
export async function eachBatch(
  vars: readonly ({ readonly cat: Cat; readonly dim: number } | undefined)[],
  outputs: readonly { readonly int: boolean; readonly width: number }[],
  ins: readonly (Float32Array | Float64Array | undefined)[],
  M: number,
  N: number,
  batch: BatchRun,
  run: (ins: readonly (Float32Array | Float64Array | undefined)[]) => Promise<(Float32Array | Float64Array | Int32Array)[]>,
  float64 = false,
): Promise<(Float32Array | Float64Array | Int32Array)[]> {
  const size = (o: { readonly width: number }): number => batch.count * M * o.width;
  const outs = outputs.map((o) => (o.int ? new Int32Array(size(o)) : float64 ? new Float64Array(size(o)) : new Float32Array(size(o))));
  for (let b = 0; b < batch.count; b++) {
    const views = ins.map((data, v) => {
      const x = vars[v];
      if (data === undefined || x === undefined) return data;
      const rows = x.cat === Cat.i ? M : x.cat === Cat.j ? N : 1;
      const at = batch.offsets[b * batch.stride + v]! * x.dim;
      return data.subarray(at, at + rows * x.dim);
    });
    const part = await run(views);
    part.forEach((data, o) => outs[o]!.set(data, b * M * outputs[o]!.width));
  }
  return outs;
}
