import { CpuBackend } from '../cpu/backend.js';
import { BackendError } from '../errors.js';

export type BackendName = 'webgpu' | 'cpu';
export type BackendChoice = BackendName | 'auto';

let cpu: CpuBackend | undefined;
let current: BackendName | undefined;

/**
 * Chooses the backend. `'auto'` (default) takes WebGPU when an adapter exists, else the CPU
 * backend, and says once on stderr which one it took.
 * @example
 * ```ts
 * import { init, backendName } from 'kernelflow';
 * await init({ backend: 'cpu' });
 * console.log(backendName()); // 'cpu'
 * ```
 */
export async function init(opts: { backend?: BackendChoice } = {}): Promise<BackendName> {
  const want = opts.backend ?? 'auto';
  if (want === 'webgpu') throw new BackendError('the WebGPU backend is not built yet (issue 3); use backend: "cpu" or "auto"');
  if (want !== 'cpu' && want !== 'auto') throw new BackendError(`unknown backend '${String(want)}' (use 'auto', 'webgpu' or 'cpu')`);
  if (want === 'auto' && current === undefined) process.stderr.write('kernelflow: using the CPU backend\n');
  current = 'cpu';
  return current;
}

/** The backend in use ('cpu' until `init` picks another). */
export function backendName(): BackendName {
  return current ?? 'cpu';
}

/** The backend object for a name (default: the current one). */
export function getBackend(name?: BackendChoice): CpuBackend {
  const n = name === undefined || name === 'auto' ? backendName() : name;
  if (n === 'webgpu') throw new BackendError('the WebGPU backend is not built yet (issue 3)');
  cpu ??= new CpuBackend();
  return cpu;
}

/** Stops backend threads and devices so the process can exit promptly. */
export async function shutdown(): Promise<void> {
  await cpu?.dispose();
  cpu = undefined;
}
