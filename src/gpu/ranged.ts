import { BackendError } from '../errors.js';
import type { KernelRanges } from '../kernel/ranges.js';
import type { KernelShape } from './codegen.js';
import type { Dispatch, Schedule } from './schedule.js';

/** What a block-sparse reduction's layout depends on besides its ranges. */
export interface RangedInput {
  readonly M: number;
  readonly N: number;
  /** Floats per row of the kept-side and reduced-side packed inputs, values per row of the outputs. */
  readonly iStride: number;
  readonly jStride: number;
  readonly outWidths: readonly number[];
  readonly shape: KernelShape;
  /** Largest storage binding in bytes, workgroups per dispatch. */
  readonly bindBytes: number;
  readonly maxGroups: number;
}

/**
 * Lays a block-sparse reduction out (the `ranged` kernel, RANGED_UNIFORM): each segment of the
 * kept rows is cut into tiles of at most one workgroup's rows (workgroupSize x rowsPerThread), one
 * tile per workgroup, so that no workgroup straddles two segments and its j loop is uniform. The
 * table holds four words per tile, then the j-ranges. Every input and output is bound whole: the
 * segments and j-ranges index the whole axes (a BackendError when one does not fit one binding).
 */
export function rangedSchedule(r: KernelRanges, s: RangedInput): { schedule: Schedule; table: Uint32Array<ArrayBuffer> } {
  const { M, N } = s;
  const fits = (what: string, floats: number): void => {
    if (floats * 4 > s.bindBytes) {
      throw new BackendError(`WebGPU: a block-sparse reduction binds ${what} whole, ${floats * 4} bytes, more than the largest storage binding (${s.bindBytes} bytes); run it on the cpu backend or in smaller pieces`);
    }
  };
  fits('the kept-side inputs', M * s.iStride);
  fits('the reduced-side inputs', N * s.jStride);
  s.outWidths.forEach((w) => fits('an output', M * w));
  const rows = s.shape.workgroupSize * s.shape.rowsPerThread;
  const tiles: number[] = [];
  for (let g = 0; g < r.seg.length; g += 4) {
    const [a, b, s0, s1] = [r.seg[g]!, r.seg[g + 1]!, r.seg[g + 2]!, r.seg[g + 3]!];
    for (let t = a; t < b; t += rows) tiles.push(t, Math.min(b, t + rows), s0, s1);
  }
  const T = tiles.length / 4;
  fits('the tiles and j-ranges', tiles.length + r.red.length);
  const table = new Uint32Array(tiles.length + r.red.length);
  table.set(tiles);
  table.set(r.red, tiles.length);
  const pass1: Dispatch[] = [];
  for (let t0 = 0; t0 < T; t0 += s.maxGroups) {
    pass1.push({ rows: [0, M], terms: [0, N], uniform: [M, N, t0, 0, T, tiles.length], groups: Math.min(s.maxGroups, T - t0) });
  }
  return { schedule: { split: null, pass1, pass2: [] }, table };
}
