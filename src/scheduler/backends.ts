import { ClusterBackend, type ClusterOptions } from '../cluster/backend.js';
import { closeNatsConnections } from '../cluster/connection.js';
import { CpuBackend } from '../cpu/backend.js';
import { BackendError } from '../errors.js';
import { GpuBackend } from '../gpu/backend.js';
import { adapterInfo, hasAdapter, releaseDevice } from '../gpu/device.js';
import type { KernelPlan } from '../kernel/plan.js';

/**
 * A backend: `'webgpu'` (one WGSL compute shader per fused reduction, through Dawn in Node or the
 * browser's WebGPU) or `'cpu'` (generated JavaScript, on worker threads for large problems).
 * @example
 * ```ts
 * import { init, type BackendName } from 'kernelflow';
 * const used: BackendName = await init(); // 'webgpu' when an adapter exists, else 'cpu'
 * console.log(used);
 * ```
 */
export type BackendName = 'webgpu' | 'cpu' | 'cluster';

/**
 * What `init` and the `backend` option of every entry point accept: a backend, or `'auto'`
 * (WebGPU when an adapter exists, else the CPU backend).
 * @example
 * ```ts
 * import { genred, type BackendChoice } from 'kernelflow';
 * const backend: BackendChoice = 'cpu';
 * const op = genred('SqNorm2(x)', ['x = Vi(2)'], { reduction: 'Sum', axis: 1, backend });
 * console.log((await op({ data: new Float32Array([3, 4]), shape: [1, 2] })).data); // Float32Array [25]
 * ```
 */
export type BackendChoice = BackendName | 'auto';

/**
 * The small interface both backends implement: run one fused reduction plan over typed arrays.
 * Exported for typing only: plans are built inside kernelflow, users pick a backend by name.
 * @example
 * ```ts
 * import type { Backend, BackendName } from 'kernelflow';
 * const describe = (b: Backend): BackendName => b.name;
 * ```
 */
export interface Backend {
  /** Which backend this is. */
  readonly name: BackendName;
  /** Runs one kernel plan on inputs of M and N rows; resolves to the plan's outputs. */
  run(plan: KernelPlan, ins: readonly (Float32Array | undefined)[], M: number, N: number): Promise<(Float32Array | Int32Array)[]>;
}

let cpu: CpuBackend | undefined;
let gpu: GpuBackend | undefined;
let current: BackendName | undefined;
let software = false;
let cluster: ClusterBackend | undefined;

/**
 * Chooses the backend. `'auto'` (default) takes WebGPU when an adapter exists, else the CPU
 * backend, and says once on stderr which one it took. `'webgpu'` without an adapter is a
 * BackendError. Without a call to `init` everything runs on the CPU backend. Call `shutdown()`
 * when done so that the process can exit.
 * `'cluster'` shards reductions over `kernelflow-worker` processes reached through the NATS
 * `servers` (docs/scaling-out.md); `servers` (and `cluster` options) given with another backend
 * configure the cluster for a per-call `backend: 'cluster'` option. An unreachable server is a
 * BackendError.
 * @returns the backend now in use.
 * @example
 * ```ts
 * import { init, backendName, shutdown } from 'kernelflow';
 * await init({ backend: 'cpu' });
 * console.log(backendName()); // 'cpu'
 * await init({ backend: 'cpu', servers: 'nats://127.0.0.1:4222' }); // CPU, and { backend: 'cluster' } per call
 * await shutdown();
 * ```
 */
export async function init(opts: { backend?: BackendChoice; servers?: string | readonly string[]; cluster?: ClusterOptions } = {}): Promise<BackendName> {
  const want = opts.backend ?? 'auto';
  if (want !== 'cpu' && want !== 'auto' && want !== 'webgpu' && want !== 'cluster') {
    throw new BackendError(`unknown backend '${String(want)}' (use 'auto', 'webgpu', 'cpu' or 'cluster')`);
  }
  // The cluster backend (src/cluster): configured by `servers` with any backend, so that a
  // per-call `backend: 'cluster'` option can use it; current when `backend: 'cluster'`.
  if (opts.servers !== undefined || opts.cluster !== undefined) {
    const servers = opts.servers ?? cluster?.servers ?? (typeof process !== 'undefined' ? process.env.KERNELFLOW_SERVERS : undefined);
    if (servers === undefined) throw new BackendError("the cluster backend needs servers: init({ backend: 'cluster', servers: 'nats://HOST:PORT' })");
    cluster = new ClusterBackend(servers, opts.cluster);
  }
  if (want === 'cluster') {
    await clusterBackend().connection();
    current = 'cluster';
    return current;
  }
  if (want === 'cpu') {
    current = 'cpu';
    return current;
  }
  const info = (await hasAdapter()) ? await adapterInfo() : null;
  if (info === null) {
    if (want === 'webgpu') throw new BackendError('no WebGPU adapter: no GPU, or no Vulkan driver (install lavapipe: .ci/install-lavapipe.sh)');
    if (current === undefined) notice('kernelflow: no WebGPU adapter, using the CPU backend');
    current = 'cpu';
    return current;
  }
  software = info.software;
  if (want === 'auto' && current === undefined) notice(`kernelflow: using WebGPU (${info.description || 'unknown adapter'})`);
  current = 'webgpu';
  return current;
}

/** One line on stderr in Node; console.warn where there is no process (a browser). */
function notice(line: string): void {
  if (typeof process !== 'undefined' && typeof process.stderr?.write === 'function') process.stderr.write(`${line}\n`);
  else console.warn(line);
}

/**
 * The backend in use ('cpu' until `init` picks another).
 * @example
 * ```ts
 * import { init, backendName, shutdown } from 'kernelflow';
 * await init({ backend: 'cpu' });
 * console.log(backendName()); // 'cpu'
 * await shutdown();
 * ```
 */
export function backendName(): BackendName {
  return current ?? 'cpu';
}

/**
 * Whether the WebGPU adapter in use is a CPU implementation (lavapipe): examples pick smaller sizes then.
 * @example
 * ```ts
 * import { init, softwareAdapter, shutdown } from 'kernelflow';
 * await init();
 * const n = softwareAdapter() ? 2_000 : 100_000; // lavapipe runs on the CPU's cores
 * console.log(n);
 * await shutdown();
 * ```
 */
export function softwareAdapter(): boolean {
  return current === 'webgpu' && software;
}

/** The backend object for a name (default: the current one). */
export function getBackend(name?: BackendChoice): Backend {
  const n = name === undefined || name === 'auto' ? backendName() : name;
  if (n === 'cluster') return clusterBackend();
  if (n === 'webgpu') return (gpu ??= new GpuBackend());
  return (cpu ??= new CpuBackend());
}

/** The configured cluster backend (from `init({ servers })`, else the KERNELFLOW_SERVERS environment variable). */
function clusterBackend(): ClusterBackend {
  if (cluster !== undefined) return cluster;
  const env = typeof process !== 'undefined' ? process.env.KERNELFLOW_SERVERS : undefined;
  if (env === undefined || env === '') {
    throw new BackendError("the cluster backend is not configured: call init({ backend: 'cluster', servers: 'nats://HOST:PORT' }) (or set KERNELFLOW_SERVERS)");
  }
  return (cluster = new ClusterBackend(env));
}

/** The NATS servers the cluster backend uses, if it is configured. */
export function clusterServers(): readonly string[] | undefined {
  return cluster?.servers;
}

/**
 * Stops worker threads and releases the WebGPU device so the process can exit promptly. A later
 * call of any entry point starts them again.
 * @example
 * ```ts
 * import { init, genred, shutdown } from 'kernelflow';
 * await init();
 * const op = genred('SqNorm2(x)', ['x = Vi(2)'], { reduction: 'Sum', axis: 1 });
 * console.log((await op({ data: new Float32Array([3, 4]), shape: [1, 2] })).data); // Float32Array [25]
 * await shutdown(); // the process can now exit
 * ```
 */
export async function shutdown(): Promise<void> {
  await cpu?.dispose();
  cpu = undefined;
  gpu = undefined;
  cluster?.reset();
  await closeNatsConnections();
  await releaseDevice();
}
