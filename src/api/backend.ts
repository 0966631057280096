import { CpuBackend } from '../cpu/backend.js';
import { BackendError } from '../errors.js';
import { GpuBackend } from '../gpu/backend.js';
import { adapterInfo, hasAdapter, releaseDevice } from '../gpu/device.js';
import type { KernelPlan } from '../nodes/plan.js';

export type BackendName = 'webgpu' | 'cpu';
export type BackendChoice = BackendName | 'auto';

/** The small interface both backends implement: run one fused reduction plan over typed arrays. */
export interface Backend {
  readonly name: BackendName;
  run(plan: KernelPlan, ins: readonly (Float32Array | undefined)[], M: number, N: number): Promise<(Float32Array | Int32Array)[]>;
}

let cpu: CpuBackend | undefined;
let gpu: GpuBackend | undefined;
let current: BackendName | undefined;
let software = false;

/**
 * Chooses the backend. `'auto'` (default) takes WebGPU when an adapter exists, else the CPU
 * backend, and says once on stderr which one it took. `'webgpu'` without an adapter is a
 * BackendError. Call `shutdown()` when done so that the process can exit.
 * @example
 * ```ts
 * import { init, backendName } from 'kernelflow';
 * await init({ backend: 'cpu' });
 * console.log(backendName()); // 'cpu'
 * ```
 */
export async function init(opts: { backend?: BackendChoice } = {}): Promise<BackendName> {
  const want = opts.backend ?? 'auto';
  if (want !== 'cpu' && want !== 'auto' && want !== 'webgpu') {
    throw new BackendError(`unknown backend '${String(want)}' (use 'auto', 'webgpu' or 'cpu')`);
  }
  if (want === 'cpu') {
    current = 'cpu';
    return current;
  }
  const info = (await hasAdapter()) ? await adapterInfo() : null;
  if (info === null) {
    if (want === 'webgpu') throw new BackendError('no WebGPU adapter: no GPU, or no Vulkan driver (install lavapipe: .ci/install-lavapipe.sh)');
    if (current === undefined) process.stderr.write('kernelflow: no WebGPU adapter, using the CPU backend\n');
    current = 'cpu';
    return current;
  }
  software = info.software;
  if (want === 'auto' && current === undefined) process.stderr.write(`kernelflow: using WebGPU (${info.description || 'unknown adapter'})\n`);
  current = 'webgpu';
  return current;
}

/** The backend in use ('cpu' until `init` picks another). */
export function backendName(): BackendName {
  return current ?? 'cpu';
}

/** Whether the WebGPU adapter in use is a CPU implementation (lavapipe): examples pick smaller sizes then. */
export function softwareAdapter(): boolean {
  return current === 'webgpu' && software;
}

/** The backend object for a name (default: the current one). */
export function getBackend(name?: BackendChoice): Backend {
  const n = name === undefined || name === 'auto' ? backendName() : name;
  if (n === 'webgpu') return (gpu ??= new GpuBackend());
  return (cpu ??= new CpuBackend());
}

/** Stops worker threads and releases the WebGPU device so the process can exit promptly. */
export async function shutdown(): Promise<void> {
  await cpu?.dispose();
  cpu = undefined;
  gpu = undefined;
  await releaseDevice();
}
