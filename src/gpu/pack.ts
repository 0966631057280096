import { BackendError } from '../errors.js';
import { Cat, type VarNode } from '../graph/formula.js';
import type { KernelPlan } from '../kernel/plan.js';

/**
 * Variables packed by category, so a kernel binds at most three input buffers however many
 * variables its formula has (WebGPU adapters may allow as few as 8 storage buffers per stage).
 * The variables of a category are interleaved row by row: row r of variable v is at
 * r * stride + offset(v). Strides and offsets follow from the variables' dims, i.e. from the
 * plan's structure (never from sizes), so they are constants of the compiled kernel, and a
 * range of rows is still one contiguous range of the buffer (chunked dispatches bind slices).
 */
export interface PackedCategory {
  readonly cat: Cat;
  /** Floats per row: the sum of the category's variable dims. */
  readonly stride: number;
  /** The category's variables in index order, with the offset of their components within a row. */
  readonly vars: readonly { readonly index: number; readonly dim: number; readonly offset: number }[];
}

/** Name of a category's buffer in the shader. */
export const PACKED_NAME: Readonly<Record<Cat, string>> = { [Cat.i]: 'XI', [Cat.j]: 'XJ', [Cat.param]: 'XP' };

/** The packed layout of a plan's variables: one entry per category that has variables (i, j, parameters). */
export function packLayout(plan: KernelPlan): PackedCategory[] {
  const out: PackedCategory[] = [];
  for (const cat of [Cat.i, Cat.j, Cat.param]) {
    let stride = 0;
    const vars = plan.vars.flatMap((v) => {
      if (v === undefined || v.cat !== cat) return [];
      const entry = { index: v.index, dim: v.dim, offset: stride };
      stride += v.dim;
      return [entry];
    });
    if (vars.length > 0) out.push({ cat, stride, vars });
  }
  return out;
}

/** Offset of variable `index` within its category's row. */
export function packedOffset(layout: readonly PackedCategory[], index: number): number {
  for (const c of layout) for (const v of c.vars) if (v.index === index) return v.offset;
  throw new Error(`internal: variable ${index} is not in the packed layout`);
}

/** One category's data, `rows` rows interleaved (a lone variable's own array, without a copy). */
export function packRows(c: PackedCategory, data: ReadonlyMap<number, Float32Array>, rows: number): Float32Array {
  if (c.vars.length === 1) return data.get(c.vars[0]!.index)!;
  const out = new Float32Array(rows * c.stride);
  for (const v of c.vars) {
    const src = data.get(v.index)!;
    for (let r = 0; r < rows; r++) {
      const from = r * v.dim;
      const to = r * c.stride + v.offset;
      for (let k = 0; k < v.dim; k++) out[to + k] = src[from + k]!;
    }
  }
  return out;
}

/**
 * Variable v's data as float32 (float64 data converted), its rows checked before anything is
 * allocated: M for an i-variable, N for a j-variable, one for a parameter; a longer array is cut
 * to them. `whole`: a batch's arrays hold every batch (the caller checked their offsets), taken as given.
 */
export function float32Input(v: VarNode, given: Float32Array | Float64Array | undefined, M: number, N: number, whole = false): Float32Array {
  const need = (v.cat === Cat.i ? M : v.cat === Cat.j ? N : 1) * v.dim;
  const data = given instanceof Float64Array ? Float32Array.from(given) : given;
  if (data === undefined || (!whole && data.length < need)) {
    throw new BackendError(`WebGPU: variable ${v.index} (${v.key}) needs ${need} values, got ${data?.length ?? 'none'}`);
  }
  return data.length === need || whole ? data : data.subarray(0, need);
}
