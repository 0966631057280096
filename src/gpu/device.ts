/// <reference types="@webgpu/types" />
import { BackendError } from '../errors.js';

/**
 * One acquired device and what it was acquired from. `generation` increases with every new
 * device, so caches of device objects (pipelines) know when they are stale.
 */
export interface GpuContext {
  readonly device: GPUDevice;
  readonly adapter: GPUAdapter;
  readonly generation: number;
  /** Resolves with a BackendError when the device is lost or destroyed (never rejects). */
  readonly lost: Promise<BackendError>;
  /** Whether the adapter is a CPU implementation (lavapipe, SwiftShader): its parallelism is the host's cores. */
  readonly software: boolean;
  /** Logical cores of the host (navigator.hardwareConcurrency, or os.availableParallelism() in Node). */
  readonly cores: number;
}

/**
 * The `GPU` object. In Node it comes from the `webgpu` package's `create()`, and this module-level
 * reference is what keeps dawn.node alive: if it were garbage-collected while a device is in use
 * the process crashes (DESIGN.md). `releaseDevice()` drops it so the process can exit.
 */
let gpuRoot: GPU | undefined;
let current: Promise<GpuContext> | undefined;
let live: GpuContext | undefined;
let generation = 0;
const lostErrors = new WeakSet<BackendError>();
/** The errors saying that the 'webgpu' package is not installed (Node). */
const missingPackage = new WeakSet<BackendError>();

/** How to destroy each context's device, reporting its loss at once (see `open`). */
const destroyers = new WeakMap<GpuContext, () => void>();

function lostError(reason: string, message: string): BackendError {
  const e = new BackendError(`WebGPU device lost (${reason}): ${message}; the next call acquires a new device`, { transient: true });
  lostErrors.add(e);
  return e;
}

/** Destroys a context's device; its `lost` promise resolves at once. */
function destroy(ctx: GpuContext): void {
  (destroyers.get(ctx) ?? (() => ctx.device.destroy()))();
}

/** Whether an error is the one a lost (or destroyed) device reported. */
export function isDeviceLost(e: unknown): boolean {
  return e instanceof BackendError && lostErrors.has(e);
}

/** The `GPU` object, created once (concurrent first calls share one `create()`: a second root would be collected while in use). */
let rootPending: Promise<GPU> | undefined;
function gpuObject(): Promise<GPU> {
  if (gpuRoot !== undefined) return Promise.resolve(gpuRoot);
  rootPending ??= loadGpu().finally(() => {
    rootPending = undefined;
  });
  return rootPending;
}

async function loadGpu(): Promise<GPU> {
  const nav = (globalThis as { navigator?: { gpu?: GPU } }).navigator;
  if (nav?.gpu !== undefined) {
    gpuRoot = nav.gpu;
    return gpuRoot;
  }
  if (typeof process === 'undefined' || process.versions?.node === undefined) {
    throw new BackendError('WebGPU is not available: navigator.gpu is undefined in this environment');
  }
  let mod: { create(options: string[]): GPU };
  try {
    // A computed name, so that bundlers targeting the browser leave dawn.node (Node only) alone.
    const dawn = 'webgpu';
    mod = (await import(dawn)) as unknown as { create(options: string[]): GPU };
  } catch (e) {
    if (isMissingPackage(e)) {
      const missing = new BackendError(
        "WebGPU in Node needs the optional peer dependency 'webgpu' (Dawn), which is not installed: " +
          "run 'npm install webgpu', or use the CPU backend (init({ backend: 'cpu' }))",
      );
      missingPackage.add(missing);
      throw missing;
    }
    throw new BackendError(`WebGPU is not available: the 'webgpu' package failed to load (${String(e)})`);
  }
  try {
    gpuRoot = mod.create([]);
  } catch (e) {
    throw new BackendError(`WebGPU is not available: the 'webgpu' package's create() failed (${String(e)})`);
  }
  return gpuRoot;
}

/** Whether an import failed because the 'webgpu' package itself is not installed. */
function isMissingPackage(e: unknown): boolean {
  const code = (e as { code?: unknown } | null)?.code;
  return (code === 'ERR_MODULE_NOT_FOUND' || code === 'MODULE_NOT_FOUND') && /'webgpu'/.test(String((e as Error).message));
}

async function requestAdapter(): Promise<GPUAdapter | null> {
  const gpu = await gpuObject();
  try {
    return await gpu.requestAdapter({ powerPreference: 'high-performance' });
  } catch {
    return null;
  }
}

/** Limits worth raising to what the adapter allows (defaults are small: 8 storage buffers, 128 MiB). */
const RAISED_LIMITS = ['maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage', 'maxComputeWorkgroupsPerDimension'] as const;

async function open(): Promise<GpuContext> {
  const adapter = await requestAdapter();
  if (adapter === null) {
    throw new BackendError('WebGPU: no adapter found (no GPU, or no Vulkan driver: install lavapipe, see .ci/install-lavapipe.sh)');
  }
  const requiredLimits: Record<string, number> = {};
  for (const name of RAISED_LIMITS) requiredLimits[name] = adapter.limits[name];
  let device: GPUDevice;
  try {
    // Timestamps time each kernel for pacing (pace.ts); optional.
    const requiredFeatures: GPUFeatureName[] = adapter.features.has('timestamp-query') ? ['timestamp-query'] : [];
    device = await adapter.requestDevice({ requiredLimits, requiredFeatures });
  } catch (e) {
    throw new BackendError(`WebGPU: requestDevice failed: ${String(e)}`);
  }
  // A device destroyed here (releaseDevice, a test) is lost at once: Dawn reports the loss only
  // after the work already submitted has run, which on a CPU driver can take seconds.
  let lostNow: (e: BackendError) => void = () => undefined;
  const destroyed = new Promise<BackendError>((res) => (lostNow = res));
  const ctx: GpuContext = {
    device,
    adapter,
    software: isSoftware(adapter),
    cores: await hostCores(),
    generation: ++generation,
    lost: Promise.race([device.lost.then((info) => lostError(info.reason ?? 'unknown', info.message || 'no message')), destroyed]).then((e) => {
      if (live?.device === device) {
        live = undefined;
        current = undefined;
      }
      return e;
    }),
  };
  destroyers.set(ctx, () => {
    lostNow(lostError('destroyed', 'the device was destroyed'));
    // Blocks until the submitted work has run (lavapipe cannot preempt it); the pending calls settle right after.
    device.destroy();
  });
  live = ctx;
  return ctx;
}

/** The current device, acquired on first use (and again after a loss). */
export function acquireDevice(): Promise<GpuContext> {
  if (current === undefined) {
    const p = open();
    current = p;
    p.catch(() => {
      if (current === p) current = undefined;
    });
  }
  return current;
}

/** Why the last `hasAdapter()` said no: the load error, or that no adapter was found. */
let noAdapterReason = 'no WebGPU adapter';

/** Whether a WebGPU adapter exists here (acquires nothing but the `GPU` object; call releaseDevice() to let the process exit). */
export async function hasAdapter(): Promise<boolean> {
  if (live !== undefined) return true;
  try {
    if ((await requestAdapter()) !== null) return true;
    noAdapterReason = 'no WebGPU adapter (no GPU, or no Vulkan driver: install lavapipe, see .ci/install-lavapipe.sh)';
  } catch (e) {
    noAdapterReason = missingPackage.has(e as BackendError)
      ? "the optional 'webgpu' package is not installed (npm install webgpu)"
      : e instanceof Error
        ? e.message
        : String(e);
  }
  return false;
}

/** Why the last `hasAdapter()` call answered false (the 'webgpu' package is missing, no adapter, ...). */
export function whyNoAdapter(): string {
  return noAdapterReason;
}

/**
 * Destroys the device and drops every reference to the WebGPU implementation so that the Node
 * process can exit. Pending calls fail with a BackendError; a later call acquires a new device.
 */
export async function releaseDevice(): Promise<void> {
  const pending = current;
  current = undefined;
  live = undefined;
  if (pending !== undefined) {
    try {
      const ctx = await pending;
      destroy(ctx);
      await settledWithin(ctx.lost, 2000);
    } catch {
      // acquisition failed: nothing to destroy
    }
  }
  gpuRoot = undefined;
}

/** For tests: destroys the device as a loss would (the next call re-acquires). */
export async function loseDeviceForTesting(): Promise<void> {
  const ctx = live;
  if (ctx === undefined) return;
  destroy(ctx);
  await settledWithin(ctx.lost, 2000);
}

/** Waits for `p`, at most `ms` milliseconds, without a timer left behind to keep the process alive. */
async function settledWithin(p: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([p, new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
  clearTimeout(timer);
}

function describe(adapter: GPUAdapter): string {
  const info = (adapter as GPUAdapter & { info?: GPUAdapterInfo }).info;
  return [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s !== undefined && s !== '').join(' ');
}

/** A CPU implementation: the adapter says it is a fallback adapter, or its name says so. */
const isSoftware = (adapter: GPUAdapter): boolean => {
  const a = adapter as GPUAdapter & { info?: { isFallbackAdapter?: boolean }; isFallbackAdapter?: boolean };
  return a.info?.isFallbackAdapter === true || a.isFallbackAdapter === true || /llvmpipe|lavapipe|swiftshader|software|cpu/i.test(describe(adapter));
};

async function hostCores(): Promise<number> {
  const nav = (globalThis as { navigator?: { hardwareConcurrency?: number } }).navigator;
  if (typeof nav?.hardwareConcurrency === 'number' && nav.hardwareConcurrency > 0) return nav.hardwareConcurrency;
  try {
    const os = (await import('node:os')) as { availableParallelism?: () => number; cpus(): unknown[] };
    return os.availableParallelism?.() ?? os.cpus().length;
  } catch {
    return 4;
  }
}

/** What the adapter says about itself; `software` is true for CPU implementations such as lavapipe. */
export async function adapterInfo(): Promise<{ description: string; software: boolean } | null> {
  const adapter = live?.adapter ?? (await requestAdapter());
  if (adapter === null) return null;
  return { description: describe(adapter), software: isSoftware(adapter) };
}
