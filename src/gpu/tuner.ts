import { Cat } from '../graph/formula.js';
import type { KernelPlan } from '../kernel/plan.js';
import type { KernelShape } from './codegen.js';
import type { GpuProfile } from './profile.js';

/**
 * The WebGPU kernel shape chosen for one plan structure on the current device, and how.
 * @example
 * ```ts
 * import { kernelShapes, type KernelShapeInfo } from 'kernelflow';
 * const shapes: readonly KernelShapeInfo[] = kernelShapes();
 * for (const s of shapes) console.log(s.kernel, s.profile, s.chosenBy, s.shape);
 * ```
 */
export interface KernelShapeInfo {
  /** The reduction and formula of the kernel. */
  readonly kernel: string;
  /** The profile its shape comes from (`'cpu'` on CPU drivers, `'gpu'` on GPUs, unless forced). */
  readonly profile: GpuProfile;
  /** Rows per invocation, invocations per workgroup, j-rows per tile in workgroup memory (0: none). */
  readonly shape: Required<KernelShape>;
  /** `'profile'`: the profile's default; `'tuned'`: the autotuner's winner; `'pinned'`: `init({ kernelShape })`. */
  readonly chosenBy: 'profile' | 'tuned' | 'pinned';
  /** The autotuner's candidates with their best time in milliseconds (on M x N of `tunedOn`), fastest first. */
  readonly candidates?: readonly { readonly shape: Required<KernelShape>; readonly ms: number }[];
  /** The kept rows and reduced terms the candidates were timed on (a corner of the first large call). */
  readonly tunedOn?: readonly [number, number];
}

const chosen = new Map<string, KernelShapeInfo>();
/** The device generation the recorded shapes belong to: a new device starts a new record. */
let recordGeneration = -1;

const full = (s: KernelShape): Required<KernelShape> => ({ rowsPerThread: s.rowsPerThread, workgroupSize: s.workgroupSize, tileRows: s.tileRows ?? 0 });

/** Records the shape chosen for a plan structure on device `generation` (the latest per structure and profile is kept). */
export function noteShape(generation: number, key: string, info: Omit<KernelShapeInfo, 'shape' | 'candidates'> & { shape: KernelShape; candidates?: readonly { shape: KernelShape; ms: number }[] }): void {
  const { shape, candidates, ...rest } = info;
  if (generation !== recordGeneration) chosen.clear();
  recordGeneration = generation;
  chosen.delete(key);
  chosen.set(key, { ...rest, shape: full(shape), ...(candidates === undefined ? {} : { candidates: candidates.map((c) => ({ shape: full(c.shape), ms: c.ms })) }) });
  // A bounded log: the oldest structures go first.
  if (chosen.size > 256) chosen.delete(chosen.keys().next().value as string);
}

/**
 * The WebGPU kernel shapes chosen so far on the current device, one per plan structure and
 * profile, oldest first: the profile's default, the autotuner's winner with every candidate's
 * time, or the pinned shape (docs/gpu-profiles.md).
 * @example
 * ```ts
 * import { init, Vi, Vj, source, kernelShapes, shutdown } from 'kernelflow';
 * await init({ backend: 'cpu' });
 * const x = source(new Float32Array(30), [10, 3]);
 * await Vi(x).sqdist(Vj(x)).sum(1).read();
 * console.log(kernelShapes()); // [] on the CPU backend; on WebGPU, the shape of the Sum kernel
 * await shutdown();
 * ```
 */
export function kernelShapes(): KernelShapeInfo[] {
  return [...chosen.values()];
}

/** Pairs below which a problem is too small to time shapes apart: a CPU driver, a GPU. */
const MIN_PAIRS = { software: 1 << 22, hardware: 1 << 26 } as const;
/** The corner of a large problem the candidates are timed on: kept rows, and pairs in all. */
const TUNE_ROWS = { software: 1 << 13, hardware: 1 << 20 } as const;
const TUNE_PAIRS = { software: 2 ** 24, hardware: 2 ** 32 } as const;

/**
 * The M x N corner of a call on which to time candidates, or null when the call is too small to
 * measure (it runs with the profile's shape, and a later, larger call of the structure tunes).
 */
export function tuneSize(M: number, N: number, software: boolean): readonly [number, number] | null {
  const k = software ? 'software' : 'hardware';
  if (M * N < MIN_PAIRS[k] || N < 256) return null;
  const m = Math.min(M, TUNE_ROWS[k]);
  return [m, Math.min(N, Math.max(256, Math.floor(TUNE_PAIRS[k] / m)))];
}

/**
 * Times each candidate and returns them fastest first. `time` runs one candidate once and returns
 * its milliseconds (it compiles on first use): every candidate is run once untimed, then `rounds`
 * times alternated, and keeps its best time. A candidate that fails (a shape the device rejects)
 * is left out; all failing is the first failure.
 */
export async function timeCandidates(candidates: readonly KernelShape[], time: (s: KernelShape) => Promise<number>, rounds = 2): Promise<{ shape: KernelShape; ms: number }[]> {
  const best = new Map<KernelShape, number>();
  let firstError: unknown;
  for (const s of candidates) {
    try {
      await time(s);
      best.set(s, Infinity);
    } catch (e) {
      firstError ??= e;
    }
  }
  if (best.size === 0) throw firstError;
  for (let r = 0; r < rounds; r++) {
    for (const s of best.keys()) best.set(s, Math.min(best.get(s)!, await time(s)));
  }
  return [...best].map(([shape, ms]) => ({ shape, ms })).sort((a, b) => a.ms - b.ms);
}

/** Whether to tune: the `autotune` option, where `'auto'` means the GPU profile on a hardware adapter (CPU drivers' shapes were tuned by hand, and compiling candidates there costs seconds). */
export const autotunes = (option: boolean | 'auto', profile: GpuProfile, software: boolean): boolean => (option === 'auto' ? profile === 'gpu' && !software : option);

/** The inputs of a call's corner: its first m kept rows and n reduced terms (views: rows are contiguous). */
export function cornerOf(plan: KernelPlan, inputs: ReadonlyMap<number, Float32Array>, m: number, n: number): Map<number, Float32Array> {
  const corner = new Map<number, Float32Array>();
  for (const v of plan.vars) {
    if (v === undefined) continue;
    const data = inputs.get(v.index)!;
    corner.set(v.index, v.cat === Cat.i ? data.subarray(0, m * v.dim) : v.cat === Cat.j ? data.subarray(0, n * v.dim) : data);
  }
  return corner;
}
