import { BackendError } from '../errors.js';
import type { KernelShape } from './codegen.js';
import type { GpuContext } from './device.js';

/**
 * How a reduction of M kept rows over N reduced terms is laid out on the device: whether the
 * reduced axis is split into blocks (pass 1 stores partial states, pass 2 merges them; KeOps
 * GpuReduc2D), how the kept rows and the reduced terms are cut into ranges that fit one storage
 * binding, and the dispatches with their uniforms. Pure arithmetic: no device needed.
 */
export interface ScheduleInput {
  readonly M: number;
  readonly N: number;
  /** Dimensions of the kept-side (i) and reduced-side (j) variables. */
  readonly iDims: readonly number[];
  readonly jDims: readonly number[];
  /** Values per row of each output. */
  readonly outWidths: readonly number[];
  /** Floats per row and block of the reduction's partial state. */
  readonly stateWidth: number;
  /** Shapes of the one-pass kernel and of pass 1 of a split (pass 2 is `mergeShape`). */
  readonly full: KernelShape;
  readonly partial: KernelShape;
  readonly merge: KernelShape;
  /** Largest storage binding in bytes (maxStorageBufferBindingSize, or less for tests). */
  readonly bindBytes: number;
  /** Offset alignment of storage bindings in floats (minStorageBufferOffsetAlignment / 4). */
  readonly unit: number;
  /** Workgroups per dispatch (maxComputeWorkgroupsPerDimension, or less for tests). */
  readonly maxGroups: number;
  /**
   * Invocations the device needs in flight to be busy. When the one-pass kernel would launch
   * fewer than half of them (and N >= 2 minBlock), the reduced axis is split into enough blocks
   * that pass 1 launches about this many.
   */
  readonly parallelism: number;
  /** Shortest block of the reduced axis a split makes on its own (it pays a state store and a merge per block). */
  readonly minBlock: number;
  /** 'off': split only when a reduced-side input exceeds a binding; a number: always split, blocks this long (rounded up to `unit`). */
  readonly split?: 'auto' | 'off' | number;
}

/** One dispatch: the bound ranges of the kept rows and of the reduced terms, its uniform and its workgroup count. */
export interface Dispatch {
  /** Kept rows [start, end) bound for this dispatch (kept-side inputs, outputs, partial states). */
  readonly rows: readonly [number, number];
  /** Reduced terms [start, end) bound for this dispatch (reduced-side inputs). */
  readonly terms: readonly [number, number];
  /** The u32 fields of the kernel's uniform (FULL_UNIFORM, PARTIAL_UNIFORM or MERGE_UNIFORM). */
  readonly uniform: readonly number[];
  /** Workgroups in x (and y: blocks of a split's pass 1). */
  readonly groups: number | readonly [number, number];
}

export interface Schedule {
  /** Null: one pass. Else blocks of J terms, B of them; partial states are stored per row and block. */
  readonly split: { readonly J: number; readonly B: number; readonly reason: 'parallelism' | 'binding' | 'forced' } | null;
  /** The one pass, or pass 1 of a split. */
  readonly pass1: readonly Dispatch[];
  /** Pass 2 of a split (empty without one). */
  readonly pass2: readonly Dispatch[];
}

const ceilDiv = (a: number, b: number): number => Math.ceil(a / b);
const roundUp = (a: number, m: number): number => ceilDiv(a, m) * m;
/** Invocations launched for M rows with a shape (whole workgroups). */
const launched = (M: number, sh: KernelShape): number => ceilDiv(M, sh.rowsPerThread * sh.workgroupSize) * sh.workgroupSize;

/** Lays a reduction out: see `ScheduleInput`. Throws a BackendError when not even `unit` rows or terms fit one binding. */
export function schedule(s: ScheduleInput): Schedule {
  const { M, N, unit } = s;
  const L = s.bindBytes;
  const mode = s.split ?? 'auto';

  // Reduced side: terms per binding; more than that forces a split with one binding per group of blocks.
  const jPerBind = Math.min(Infinity, ...s.jDims.map((d) => Math.floor(L / (4 * d))));
  const forced = N > jPerBind;
  const jChunk = forced ? Math.floor(jPerBind / unit) * unit : Infinity;
  if (forced && jChunk < unit) {
    throw new BackendError(`WebGPU: ${unit} terms of a reduced-side input need more than the largest storage binding (${L} bytes)`);
  }

  let split: Schedule['split'] = null;
  let J = Infinity;
  if (typeof mode === 'number') {
    J = roundUp(Math.max(1, mode), unit);
  } else if (mode === 'auto' && N >= 2 * s.minBlock && launched(M, s.full) < s.parallelism / 2) {
    // Enough blocks that pass 1 launches about `parallelism` invocations, none shorter than minBlock.
    const B0 = Math.max(2, Math.min(ceilDiv(s.parallelism, launched(M, s.partial)), Math.floor(N / s.minBlock)));
    J = roundUp(ceilDiv(N, B0), unit);
  }
  J = Math.min(J, jChunk);
  if (J < N) {
    const reason = typeof mode === 'number' ? 'forced' : J === jChunk ? 'binding' : 'parallelism';
    split = { J, B: ceilDiv(N, J), reason };
  }

  // Kept side: rows per binding, so that kept-side inputs, outputs and partial states each fit.
  const perRow = [...s.iDims.map((d) => 4 * d), ...s.outWidths.map((w) => 4 * w), ...(split === null ? [] : [4 * split.B * s.stateWidth])];
  const widest = Math.max(4, ...perRow);
  let rowsPerBind = M;
  if (M * widest > L) {
    rowsPerBind = Math.floor(L / widest / unit) * unit;
    if (rowsPerBind < unit) throw new BackendError(`WebGPU: ${unit} kept rows need more than the largest storage binding (${L} bytes)`);
  }
  const rowChunks: [number, number][] = [];
  for (let rb = 0; rb < M; rb += rowsPerBind) rowChunks.push([rb, Math.min(M, rb + rowsPerBind)]);

  const pass1: Dispatch[] = [];
  const pass2: Dispatch[] = [];
  if (split === null) {
    const { rowsPerThread: R, workgroupSize: wg } = s.full;
    const perDispatch = s.maxGroups * wg * R;
    for (const rows of rowChunks) {
      const n = rows[1] - rows[0];
      for (let row0 = 0; row0 < n; row0 += perDispatch) {
        pass1.push({ rows, terms: [0, N], uniform: [n, N, row0, 0], groups: ceilDiv(Math.min(perDispatch, n - row0), wg * R) });
      }
    }
    return { split, pass1, pass2 };
  }

  const { J: bJ, B } = split;
  const blocksPerBind = forced ? Math.floor(jChunk / bJ) : B;
  const { rowsPerThread: R, workgroupSize: wg } = s.partial;
  const rowsPerDispatch = s.maxGroups * wg * R;
  for (const rows of rowChunks) {
    const n = rows[1] - rows[0];
    for (let fb = 0; fb < B; fb += blocksPerBind) {
      const eb = Math.min(B, fb + blocksPerBind);
      const terms: [number, number] = [fb * bJ, Math.min(N, eb * bJ)];
      // 2-D: x over row invocations, y over blocks, each at most maxGroups per dispatch.
      for (let row0 = 0; row0 < n; row0 += rowsPerDispatch) {
        for (let b0 = fb; b0 < eb; b0 += s.maxGroups) {
          const groups: [number, number] = [ceilDiv(Math.min(rowsPerDispatch, n - row0), wg * R), Math.min(s.maxGroups, eb - b0)];
          pass1.push({ rows, terms, uniform: [n, terms[1] - terms[0], row0, 0, bJ, B, b0, fb], groups });
        }
      }
    }
    const perDispatch = s.maxGroups * s.merge.workgroupSize * s.merge.rowsPerThread;
    for (let row0 = 0; row0 < n; row0 += perDispatch) {
      pass2.push({ rows, terms: [0, 0], uniform: [n, B, row0, 0], groups: ceilDiv(Math.min(perDispatch, n - row0), s.merge.workgroupSize * s.merge.rowsPerThread) });
    }
  }
  return { split, pass1, pass2 };
}

/** Shortest block of the reduced axis a split makes on its own: each block costs a state store and a merge. */
export const MIN_BLOCK = 512;

/**
 * Invocations an adapter needs in flight. A CPU driver (lavapipe) runs a workgroup on one core,
 * its invocations in SIMD lanes (8 at 256 bits): 8 workgroups of 16 per core keep it busy and
 * balanced (other work on the host makes the cores uneven). A GPU needs tens of thousands.
 */
export function defaultParallelism(ctx: Pick<GpuContext, 'software' | 'cores'>): number {
  return ctx.software ? ctx.cores * 16 * 8 : 1 << 15;
}
