import { ClusterBackend } from '../cluster/backend.js';
import type { ClusterOptions } from '../cluster/options.js';
import { closeNatsConnections } from '../cluster/connection.js';
import { CpuBackend, type CpuKernelInfo, type CpuKernels } from '../cpu/backend.js';
import { BackendError } from '../errors.js';
import { GpuBackend, type GpuBackendOptions } from '../gpu/backend.js';
import type { KernelShape } from '../gpu/codegen.js';
import type { GpuProfileChoice } from '../gpu/profile.js';
import { adapterInfo, hasAdapter, releaseDevice, whyNoAdapter } from '../gpu/device.js';
import { setKernelCacheSize } from '../kernel/cache.js';
import type { BatchRun } from '../kernel/batch.js';
import type { KernelPlan } from '../kernel/plan.js';
import type { KernelRanges } from '../kernel/ranges.js';
import { checkOptions, integerAtLeast, oneOf, show, type OptionCheck } from '../options.js';
import { setFusion } from './fusion.js';

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

/** Every name `init` and the `backend` options accept. */
const CHOICES: readonly BackendChoice[] = ['auto', 'webgpu', 'cpu', 'cluster'];

/** A backend name checked: anything else is a BackendError naming it (`where` is the entry). */
export function checkBackend(name: unknown, where: string): BackendChoice {
  if (!CHOICES.includes(name as BackendChoice)) {
    const what = typeof name === 'string' ? `'${name}'` : show(name);
    throw new BackendError(`${where}: unknown backend ${what} (use ${CHOICES.map((c) => `'${c}'`).join(', ')})`);
  }
  return name as BackendChoice;
}

/** The `backend` option of every entry, as an option check (an unknown name is a BackendError). */
export const backendOption: OptionCheck = (v, where) => {
  checkBackend(v, where);
  return undefined;
};

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
  /**
   * Runs one kernel plan on inputs of M and N rows (float64 data: the literal parameters, and every
   * input of a float64 plan), block-sparse over `ranges` when given; resolves to the plan's outputs
   * (values of the plan's dtype). With `batch` (only where `batches` is true, never with `ranges`):
   * M and N rows per batch, all batches in one run, outputs batch after batch.
   */
  run(plan: KernelPlan, ins: readonly (Float32Array | Float64Array | undefined)[], M: number, N: number, ranges?: KernelRanges, batch?: BatchRun): Promise<(Float32Array | Float64Array | Int32Array)[]>;
  /** Whether `run` takes a batch (leading batch dimensions in one kernel run). */
  readonly batches?: boolean;
  /**
   * Present on backends that run fused plans (several sibling reductions in one kernel, issue 17):
   * how many storage buffers one kernel may bind on this device and how many a plan's kernels bind,
   * and a plan's floats of reduction state per row.
   */
  fusion?(): Promise<{ readonly maxBindings: number; bindings(plan: KernelPlan): number; stateWidth(plan: KernelPlan): number }>;
}

let cpu: CpuBackend | undefined;
let gpu: GpuBackend | undefined;
/** The WebGPU backend's options from `init` (gpuProfile, autotune, kernelShape). */
let gpuOptions: GpuBackendOptions = {};
let current: BackendName | undefined;
let software = false;
let cluster: ClusterBackend | undefined;
/** The CPU kernels chosen by `init({ cpuKernels })` (undefined: `KERNELFLOW_CPU_KERNELS`, else 'auto'). */
let cpuChoice: CpuKernels | undefined;

/**
 * Options of {@link init}.
 * @example
 * ```ts
 * import { init, type InitOptions } from 'kernelflow';
 * const opts: InitOptions = { backend: 'auto', quiet: true }; // no line on stderr
 * console.log(await init(opts));
 * ```
 */
export interface InitOptions {
  /** `'auto'` (default: WebGPU when an adapter exists, else CPU; `KERNELFLOW_BACKEND` may say which), `'webgpu'` or `'cpu'`. */
  readonly backend?: BackendChoice;
  /** Says nothing on stderr about the backend chosen (also `KERNELFLOW_QUIET=1`). */
  readonly quiet?: boolean;
  /** Compiled kernels each backend keeps, least recently used evicted first (default 256). */
  readonly kernelCacheSize?: number;
  /** NATS server(s) of the cluster backend (`'nats://HOST:PORT'`): needed by `backend: 'cluster'`, here or per call. */
  readonly servers?: string | readonly string[];
  /** Options of the cluster backend (docs/scaling-out.md). */
  readonly cluster?: ClusterOptions;
  /**
   * Whether the scheduler fuses sibling reductions (default true): reductions of a graph that are
   * due together and reduce over the same axis of the same sources run as one kernel (one pass
   * computes every output, shared subexpressions once; `stats().fusedPasses`). Results are the
   * same either way; `false` runs each reduction as its own kernel (for comparisons).
   */
  readonly fuse?: boolean;
  /**
   * What a float64 computation does on a backend without float64 (WebGPU: WGSL has no f64; the
   * cluster): `'error'` (default) a BackendError, `'cpu'` runs it on the CPU backend in float64,
   * `'downcast'` computes in float32 there (Float32Array results). The CPU backend always computes
   * float64 data in float64.
   */
  readonly float64?: Float64Policy;
  /**
   * WebGPU kernel profile (docs/gpu-profiles.md): `'auto'` (default: `'cpu'` on CPU drivers such as
   * lavapipe and SwiftShader, `'gpu'` on GPUs; `KERNELFLOW_GPU_PROFILE` may force one), `'cpu'` or `'gpu'`.
   */
  readonly gpuProfile?: GpuProfileChoice;
  /** WebGPU autotuner: time up to 4 kernel shapes on the first large call of each formula (default `'auto'`: on GPUs, off on CPU drivers). */
  readonly autotune?: boolean | 'auto';
  /** Pins the WebGPU kernel shape of every formula (no profile default, no tuning): rows per invocation, workgroup size, j-rows per tile (0: none). */
  readonly kernelShape?: KernelShape;
  /**
   * The CPU backend's kernels: `'auto'` (default; also `KERNELFLOW_CPU_KERNELS`): WebAssembly SIMD
   * where the engine has it, else JavaScript; `'wasm'` (a BackendError without SIMD) or `'js'`.
   * {@link cpuKernels} says which run.
   */
  readonly cpuKernels?: CpuKernels;
}

/**
 * What a float64 computation does on a backend that computes in float32 only (see {@link InitOptions}).
 * @example
 * ```ts
 * import { init, type Float64Policy } from 'kernelflow';
 * const float64: Float64Policy = 'cpu'; // float64 reductions run on the CPU backend, the rest on WebGPU
 * await init({ float64, quiet: true });
 * ```
 */
export type Float64Policy = 'error' | 'cpu' | 'downcast';

let policy64: Float64Policy = 'error';

/** @internal The float64 policy `init` set (default `'error'`). */
export function float64Policy(): Float64Policy {
  return policy64;
}

const CPU_KERNELS: readonly CpuKernels[] = ['auto', 'wasm', 'js'];

const isBoolean: OptionCheck = (v) => (typeof v === 'boolean' ? undefined : 'must be true or false');
const isServers: OptionCheck = (v) =>
  typeof v === 'string' || (Array.isArray(v) && v.every((s) => typeof s === 'string')) ? undefined : "must be a NATS URL ('nats://HOST:PORT') or a list of them";
// The cluster options are checked, key by key, by the cluster backend itself.
const isObject: OptionCheck = (v) => (typeof v === 'object' && v !== null && !Array.isArray(v) ? undefined : 'must be an object of cluster options');
/** An integer in [lo, hi]. */
const intIn =
  (lo: number, hi: number): OptionCheck =>
  (v) =>
    typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi ? undefined : `must be an integer from ${lo} to ${hi}`;
/** `kernelShape`: an object of its three keys, each checked (an unknown key or a bad value is an OptionError naming it). */
const isKernelShape: OptionCheck = (v, where) => {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'must be an object { rowsPerThread, workgroupSize, tileRows? }';
  // WebGPU guarantees 256 invocations per workgroup; 16 rows per invocation is where compile time explodes.
  checkOptions(`${where}: kernelShape`, v, { rowsPerThread: intIn(1, 16), workgroupSize: intIn(1, 256), tileRows: intIn(0, 4096) });
  for (const k of ['rowsPerThread', 'workgroupSize'] as const) if ((v as Record<string, unknown>)[k] === undefined) return `needs ${k}`;
  return undefined;
};

/** An environment variable in Node ('' elsewhere). */
function env(name: string): string {
  return (typeof process !== 'undefined' ? process.env?.[name] : undefined) ?? '';
}

/**
 * Chooses the backend. `'auto'` (default) takes WebGPU when an adapter exists, else the CPU
 * backend, and says once on stderr which one it took (and why, when WebGPU is unavailable);
 * `quiet: true` or `KERNELFLOW_QUIET=1` silences that line, and `KERNELFLOW_BACKEND=cpu|webgpu`
 * decides what `'auto'` means. `'webgpu'` without an adapter (or, in Node, without the optional
 * `webgpu` package) is a BackendError. Calling `init` is optional: the first computation without
 * a chosen backend runs `init()` itself. Call `shutdown()` when done so that the process can exit
 * promptly.
 * `float64` says what float64 data does on a backend that computes in float32 only (WebGPU, the
 * cluster): `'error'` (default), `'cpu'` (run those reductions on the CPU backend) or `'downcast'`.
 * `kernelCacheSize` bounds the compiled kernels each backend keeps (default 256); the least
 * recently used are evicted (`stats().kernelsEvicted`).
 * `fuse: false` runs every reduction as its own kernel instead of fusing sibling reductions into
 * one pass (the default; results are the same, `stats().fusedPasses` counts the fused runs).
 * `'cluster'` shards reductions over `kernelflow-worker` processes reached through the NATS
 * `servers` (docs/scaling-out.md); `servers` (and `cluster` options) given with another backend
 * configure the cluster for a per-call `backend: 'cluster'` option. An unreachable server is a
 * BackendError.
 * @returns the backend now in use.
 * @example
 * ```ts
 * import { init, backendName, shutdown } from 'kernelflow';
 * await init({ backend: 'cpu', kernelCacheSize: 64 }); // keep at most 64 compiled kernels
 * console.log(backendName()); // 'cpu'
 * await init({ backend: 'cpu', servers: 'nats://127.0.0.1:4222' }); // CPU, and { backend: 'cluster' } per call
 * await shutdown();
 * ```
 */
export async function init(opts: InitOptions = {}): Promise<BackendName> {
  checkOptions('init', opts, {
    backend: backendOption,
    kernelCacheSize: integerAtLeast(1),
    quiet: isBoolean,
    servers: isServers,
    cluster: isObject,
    float64: oneOf('error', 'cpu', 'downcast'),
    gpuProfile: oneOf('auto', 'cpu', 'gpu'),
    autotune: oneOf(true, false, 'auto'),
    kernelShape: isKernelShape,
    cpuKernels: oneOf(...CPU_KERNELS),
    fuse: isBoolean,
  });
  if (opts.kernelCacheSize !== undefined) setKernelCacheSize(opts.kernelCacheSize);
  if (opts.float64 !== undefined) policy64 = opts.float64;
  if (opts.fuse !== undefined) setFusion(opts.fuse);
  if (opts.gpuProfile !== undefined || opts.autotune !== undefined || opts.kernelShape !== undefined) {
    // A new WebGPU backend with these options (its pipelines are compiled again).
    const { gpuProfile: profile, autotune, kernelShape: pin } = opts;
    gpuOptions = { ...(profile === undefined ? {} : { profile }), ...(autotune === undefined ? {} : { autotune }), ...(pin === undefined ? {} : { pin }) };
    gpu = new GpuBackend(gpuOptions);
  }
  if (opts.cpuKernels !== undefined && opts.cpuKernels !== cpuChoice) {
    // Checked now (a 'wasm' the engine cannot run is an error here, not at the first reduction); the old backend's workers stop.
    const next = new CpuBackend(undefined, opts.cpuKernels);
    await cpu?.dispose();
    cpu = next;
    cpuChoice = opts.cpuKernels;
  }
  let want = opts.backend ?? 'auto';
  const quiet = opts.quiet === true || /^(1|true|yes)$/i.test(env('KERNELFLOW_QUIET'));
  // Only a choice made for the user ('auto', the first time) is announced.
  const announce = want === 'auto' && current === undefined && !quiet;
  const say = (line: string): void => {
    if (announce) notice(line);
  };
  // The cluster backend (src/cluster): configured by `servers` with any backend, so that a
  // per-call `backend: 'cluster'` option can use it; current when `backend: 'cluster'`.
  if (opts.servers !== undefined || opts.cluster !== undefined) {
    const servers = opts.servers ?? cluster?.servers ?? (env('KERNELFLOW_SERVERS') || undefined);
    if (servers === undefined) throw new BackendError("init: the cluster backend needs servers: init({ backend: 'cluster', servers: 'nats://HOST:PORT' })");
    cluster = new ClusterBackend(servers, opts.cluster);
  }
  if (want === 'cluster') {
    await clusterBackend().connection();
    current = 'cluster';
    return current;
  }
  if (want === 'auto') {
    const forced = env('KERNELFLOW_BACKEND');
    if (forced === 'cpu' || forced === 'webgpu') want = forced;
    else if (forced !== '' && forced !== 'auto') throw new BackendError(`KERNELFLOW_BACKEND='${forced}': use auto, webgpu or cpu`);
    if (want === 'cpu') say('kernelflow: using the CPU backend (KERNELFLOW_BACKEND=cpu)');
  }
  if (want === 'cpu') {
    current = 'cpu';
    return current;
  }
  const info = (await hasAdapter()) ? await adapterInfo() : null;
  if (info === null) {
    const why = whyNoAdapter();
    if (want === 'webgpu') throw new BackendError(`init({ backend: 'webgpu' }): ${why}`);
    say(`kernelflow: using the CPU backend (WebGPU unavailable: ${why})`);
    current = 'cpu';
    return current;
  }
  software = info.software;
  say(`kernelflow: using WebGPU (${info.description || 'unknown adapter'})`);
  current = 'webgpu';
  return current;
}

/** One line on stderr in Node; console.warn where there is no process (a browser). */
function notice(line: string): void {
  if (typeof process !== 'undefined' && typeof process.stderr?.write === 'function') process.stderr.write(`${line}\n`);
  else console.warn(line);
}

let choosing: Promise<BackendName> | undefined;
/** The backend in use, chosen by `init()` ('auto') on first use when nobody chose one. */
function chosen(): Promise<BackendName> {
  if (current !== undefined) return Promise.resolve(current);
  choosing ??= init().finally(() => {
    choosing = undefined;
  });
  return choosing;
}

/**
 * The backend in use: the one `init` chose (explicitly, or on the first computation); `'cpu'`
 * before any was chosen.
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

/** @internal The backend chosen so far (by `init`, or by the first computation), if any. */
export function chosenBackend(): BackendName | undefined {
  return current;
}

/** The backend object for a name, after choosing the current one (`init()`, 'auto') when nobody has. */
export async function resolveBackend(name?: BackendChoice): Promise<Backend> {
  if ((name === undefined || name === 'auto') && current === undefined) await chosen();
  return getBackend(name);
}

/**
 * The backend object for a name (default: the current one). Before any backend was chosen, the
 * default is a stand-in whose first `run` chooses one with `init()` ('auto') and then delegates.
 */
export function getBackend(name?: BackendChoice): Backend {
  const n = name === undefined || name === 'auto' ? current : (checkBackend(name, 'backend') as BackendName);
  if (n === undefined) return { name: backendName(), run: async (...args) => getBackend(await chosen()).run(...args) };
  if (n === 'cluster') return clusterBackend();
  if (n === 'webgpu') return (gpu ??= new GpuBackend(gpuOptions));
  return cpuBackend();
}

/** The CPU backend, created with the chosen kernels. */
function cpuBackend(): CpuBackend {
  return (cpu ??= new CpuBackend(undefined, cpuChoice ?? envCpuKernels()));
}

/** `KERNELFLOW_CPU_KERNELS` (auto, wasm or js; '' is auto). */
function envCpuKernels(): CpuKernels {
  const v = env('KERNELFLOW_CPU_KERNELS');
  if (v === '') return 'auto';
  if (!CPU_KERNELS.includes(v as CpuKernels)) throw new BackendError(`KERNELFLOW_CPU_KERNELS='${v}': use auto, wasm or js`);
  return v as CpuKernels;
}

/**
 * Which kernels the CPU backend runs: `'wasm'` (WebAssembly with 128-bit SIMD, compiled at run
 * time, the default where the engine has SIMD) or `'js'` (generated JavaScript: chosen with
 * `init({ cpuKernels: 'js' })`, or where WebAssembly SIMD is unavailable), why, and how many
 * kernels compiled to WASM or fell back to JavaScript.
 * @example
 * ```ts
 * import { init, cpuKernels, shutdown } from 'kernelflow';
 * await init({ backend: 'cpu' });
 * const info = cpuKernels();
 * console.log(info.kernels, info.reason); // 'wasm' 'WebAssembly SIMD available' (Node 20, current browsers)
 * await shutdown();
 * ```
 */
export function cpuKernels(): CpuKernelInfo {
  return cpuBackend().info();
}

/** The configured cluster backend (from `init({ servers })`, else the KERNELFLOW_SERVERS environment variable). */
function clusterBackend(): ClusterBackend {
  if (cluster !== undefined) return cluster;
  const servers = env('KERNELFLOW_SERVERS');
  if (servers === '') {
    throw new BackendError("the cluster backend is not configured: call init({ backend: 'cluster', servers: 'nats://HOST:PORT' }) (or set KERNELFLOW_SERVERS)");
  }
  return (cluster = new ClusterBackend(servers));
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
