import { Cat } from '../graph/formula.js';
import type { KernelPlan } from '../kernel/plan.js';
import { BackendError } from '../errors.js';
import { defaultShape, defaultSplitShape, type KernelShape } from './codegen.js';
import { packLayout } from './pack.js';

/**
 * The two kernel profiles. `'cpu'`: shapes measured on a CPU Vulkan driver (lavapipe), several
 * rows per invocation, workgroups of 16, no workgroup memory (`defaultShape`). `'gpu'`: KeOps's
 * CUDA scheme, one row per invocation, workgroups of 128, the j-variables staged in tiles in
 * workgroup memory (`gpuShape`).
 */
export type GpuProfile = 'cpu' | 'gpu';

/** What the profile options accept: a profile, or `'auto'` (from the adapter). */
export type GpuProfileChoice = GpuProfile | 'auto';

/** The WebGPU default of maxComputeWorkgroupStorageSize (16 KiB): what every adapter allows. */
export const DEFAULT_WORKGROUP_STORAGE = 16384;

/** Invocations per workgroup of the GPU profile: four NVIDIA warps, two AMD wavefronts. */
export const GPU_WORKGROUP = 128;

/** Floats per row of a plan's packed j-variables (0 when it has none). */
export const jStride = (plan: KernelPlan): number => packLayout(plan).find((c) => c.cat === Cat.j)?.stride ?? 0;

/**
 * Rows of the reduced side per tile in workgroup memory: at most `want` (default: one per
 * invocation, so each loads one row), and no more than fit in `limitBytes`; 0 (no tiling) when
 * the plan has no j-variable or one j-row alone does not fit.
 */
export function tileRowsFor(plan: KernelPlan, workgroupSize: number, limitBytes: number, want = workgroupSize): number {
  const S = jStride(plan);
  if (S === 0) return 0;
  return Math.max(0, Math.min(want, Math.floor(limitBytes / (4 * S))));
}

/** The GPU profile's shape: one row per invocation, workgroups of 128, j tiles in workgroup memory. */
export function gpuShape(plan: KernelPlan, limitBytes = DEFAULT_WORKGROUP_STORAGE): KernelShape {
  return { rowsPerThread: 1, workgroupSize: GPU_WORKGROUP, tileRows: tileRowsFor(plan, GPU_WORKGROUP, limitBytes) };
}

/** A profile's shape of the one-pass kernel. */
export function profileShape(profile: GpuProfile, plan: KernelPlan, limitBytes = DEFAULT_WORKGROUP_STORAGE): KernelShape {
  return profile === 'gpu' ? gpuShape(plan, limitBytes) : defaultShape(plan);
}

/**
 * The shape of pass 1 of a split for M kept rows, from the one-pass kernel's `full`: the same,
 * but one row per invocation when M is below its rows per invocation (see `defaultSplitShape`).
 */
export function splitShapeOf(full: KernelShape, M: number): KernelShape {
  return M < full.rowsPerThread ? { ...full, rowsPerThread: 1 } : full;
}

/** A profile's shape of pass 1 of a split for M kept rows. */
export function profileSplitShape(profile: GpuProfile, plan: KernelPlan, M: number, limitBytes = DEFAULT_WORKGROUP_STORAGE): KernelShape {
  return profile === 'gpu' ? splitShapeOf(gpuShape(plan, limitBytes), M) : defaultSplitShape(plan, M);
}

/** A shape pinned by the user: its tile clamped to what fits the plan and the device. */
export function pinnedShape(pin: KernelShape, plan: KernelPlan, limitBytes: number): KernelShape {
  const tileRows = tileRowsFor(plan, pin.workgroupSize, limitBytes, pin.tileRows ?? 0);
  return { rowsPerThread: pin.rowsPerThread, workgroupSize: pin.workgroupSize, tileRows };
}

const sameShape = (a: KernelShape, b: KernelShape): boolean =>
  a.rowsPerThread === b.rowsPerThread && a.workgroupSize === b.workgroupSize && (a.tileRows ?? 0) === (b.tileRows ?? 0);

/**
 * The autotuner's candidates (at most 4, the profile's default first). GPU: workgroups of 128
 * and 256, 2 rows per invocation, and no tiling (whether workgroup memory pays on this device);
 * CPU driver: half and twice the rows per invocation, and the GPU profile's shape.
 */
export function shapeCandidates(profile: GpuProfile, plan: KernelPlan, limitBytes = DEFAULT_WORKGROUP_STORAGE): KernelShape[] {
  const base = profileShape(profile, plan, limitBytes);
  const all: KernelShape[] =
    profile === 'gpu'
      ? [
          base,
          { rowsPerThread: 1, workgroupSize: 256, tileRows: tileRowsFor(plan, 256, limitBytes) },
          { ...base, rowsPerThread: 2 },
          { ...base, tileRows: 0 },
        ]
      : [
          base,
          { ...base, rowsPerThread: Math.max(1, base.rowsPerThread >> 1) },
          { ...base, rowsPerThread: Math.min(16, base.rowsPerThread * 2) },
          gpuShape(plan, limitBytes),
        ];
  return all.filter((s, k) => all.findIndex((t) => sameShape(s, t)) === k);
}

/** Parses a profile choice from the environment (KERNELFLOW_GPU_PROFILE): '' is 'auto'; anything else is a BackendError. */
export function envProfile(value: string): GpuProfileChoice {
  if (value === '' || value === 'auto') return 'auto';
  if (value === 'cpu' || value === 'gpu') return value;
  throw new BackendError(`KERNELFLOW_GPU_PROFILE='${value}': use auto, cpu or gpu`);
}

/** The profile KERNELFLOW_GPU_PROFILE asks for (Node; elsewhere 'auto'). */
export const profileFromEnv = (): GpuProfileChoice => envProfile((typeof process !== 'undefined' ? process.env?.KERNELFLOW_GPU_PROFILE : undefined) ?? '');

/** A shape as one short word for logs and `kernelShapes()`: `R x WG` and the tile. */
export const shapeName = (s: KernelShape): string => `${s.rowsPerThread}x${s.workgroupSize}${(s.tileRows ?? 0) > 0 ? ` tile ${s.tileRows}` : ''}`;
