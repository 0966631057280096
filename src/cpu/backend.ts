import type { BatchRun } from '../kernel/batch.js';
import type { KernelPlan } from '../kernel/plan.js';
import { rangedPlan, type KernelRanges } from '../kernel/ranges.js';
import { BackendError, LimitError } from '../errors.js';
import { printFormula } from '../graph/print.js';
import { LruCache } from '../kernel/cache.js';
import { record } from '../stats.js';
import { floatArray } from '../tensor.js';
import { compileWasmKernel, wasmKernelSource, wasmSimdAvailable } from '../wasm/kernel.js';
import { compileKernelJs, rangedByGather, renderKernelJs, wrapBatched, wrapRanged, type CpuKernel } from './codegen.js';
import { WorkerPool } from './pool.js';
import { jsDialect } from './dialect.js';
import { stateWidth } from '../ops/reductions.js';

/** Output arrays of one reduction, one per reduction output (values of the plan's dtype, indices int32). */
export type KernelOutputs = (Float32Array | Float64Array | Int32Array)[];

/** Worker threads exist in Node only: in a browser every kernel runs on the calling thread. */
const isNode = typeof process !== 'undefined' && process.versions?.node !== undefined;

/** Below this many (i, j) pairs a kernel runs on the calling thread: a worker round trip costs more. */
const PARALLEL_PAIRS = 1 << 18;

interface Compiled {
  readonly source: string;
  readonly fn: CpuKernel;
}

/**
 * Which kernels the CPU backend runs (`init({ cpuKernels })`): WebAssembly SIMD where the engine
 * has it (`'auto'`, the default), or one kind explicitly.
 * @example
 * ```ts
 * import { init, type CpuKernels } from 'kernelflow';
 * const kernels: CpuKernels = 'js'; // e.g. to compare with the WASM kernels
 * await init({ backend: 'cpu', cpuKernels: kernels });
 * ```
 */
export type CpuKernels = 'auto' | 'wasm' | 'js';

/**
 * What the CPU backend runs, and why (`cpuKernels()`).
 * @example
 * ```ts
 * import { cpuKernels, type CpuKernelInfo } from 'kernelflow';
 * const info: CpuKernelInfo = cpuKernels();
 * if (info.kernels === 'js') console.log(`CPU backend on JavaScript kernels: ${info.reason}`);
 * ```
 */
export interface CpuKernelInfo {
  readonly kernels: 'wasm' | 'js';
  readonly reason: string;
  /** Kernels compiled to WebAssembly, and those that fell back to JavaScript (code the WASM compiler cannot translate), since the backend started. */
  readonly wasmCompiled: number;
  readonly jsFallbacks: number;
}

/** Resolves a choice: 'auto' takes WASM when this engine validates a SIMD module; 'wasm' without SIMD is an error. */
function resolveKernels(choice: CpuKernels): { kernels: 'wasm' | 'js'; reason: string } {
  if (choice === 'js') return { kernels: 'js', reason: 'JavaScript kernels chosen explicitly' };
  if (wasmSimdAvailable()) return { kernels: 'wasm', reason: choice === 'wasm' ? 'WebAssembly SIMD kernels chosen explicitly' : 'WebAssembly SIMD available' };
  if (choice === 'wasm') throw new BackendError("CPU backend: cpuKernels 'wasm' needs WebAssembly with 128-bit SIMD, which this engine lacks");
  return { kernels: 'js', reason: 'WebAssembly SIMD unavailable in this engine: JavaScript kernels' };
}

/** CPU backend: generated JavaScript per plan key, run on the main thread or over a worker pool. */
export class CpuBackend {
  readonly name = 'cpu' as const;
  /** All batches of a call in one kernel run. */
  readonly batches = true;
  // Bounded: an evicted kernel is also dropped by the workers that compiled it.
  private readonly cache = new LruCache<Compiled>((key) => void this.pool?.then((p) => p.forget(key)));
  private pool: Promise<WorkerPool> | undefined;
  private readonly use: { kernels: 'wasm' | 'js'; reason: string };
  private counts = { wasmCompiled: 0, jsFallbacks: 0 };

  constructor(
    private readonly threads?: number,
    kernels: CpuKernels = 'auto',
  ) {
    this.use = resolveKernels(kernels);
  }

  /** The kernels this backend runs, why, and how many compiled to WASM or fell back. */
  info(): CpuKernelInfo {
    return { ...this.use, ...this.counts };
  }

  /** Source of the kernel for a plan (for inspection and tests). */
  source(plan: KernelPlan): string {
    return this.compiled(plan).source;
  }

  /**
   * What one kernel may hold, for the scheduler's fusion of sibling reductions (issue 17): no
   * binding limit of its own (the arrays a kernel reads and writes are counted as WebGPU binds
   * them, one per category of inputs and one per output, so that a lower limit set for tests
   * applies alike); the floats of reduction state per row (the accumulators in the JavaScript dialect).
   */
  async fusion(): Promise<{ readonly maxBindings: number; bindings(plan: KernelPlan): number; stateWidth(plan: KernelPlan): number }> {
    return {
      maxBindings: Infinity,
      bindings: (plan) => new Set(plan.vars.flatMap((v) => (v === undefined ? [] : [v.cat]))).size + plan.outputs.length,
      stateWidth: (plan) => stateWidth(plan.reduction, jsDialect, plan.f.dim, plan.g?.dim ?? 0, plan.K),
    };
  }

  /**
   * Runs a plan: `ins[v]` is the data of variable v; M kept rows, N reduced terms; block-sparse over
   * `ranges` when given; per batch when `batch` is given (then all batches are one kernel run, rows
   * of every batch split over the workers).
   */
  async run(plan: KernelPlan, given: readonly (Float32Array | Float64Array | undefined)[], M: number, N: number, ranges?: KernelRanges, batch?: BatchRun): Promise<KernelOutputs> {
    if (ranges !== undefined && batch !== undefined) throw new BackendError('block-sparse ranges and batch dimensions cannot be combined in one reduction');
    // A ranged kernel reads the segments and j-ranges after the variables (codegen.ts).
    if (ranges !== undefined) plan = rangedPlan(plan);
    const ins: readonly (Float32Array | Float64Array | Int32Array | undefined)[] =
      ranges === undefined ? given : [...Array.from({ length: plan.vars.length }, (_, v) => given[v]), ranges.seg, ranges.red];
    const k = this.compiled(plan, batch !== undefined);
    record.dispatch();
    const workers = this.threads ?? undefined;
    const rows = M * (batch?.count ?? 1);
    const parallel = isNode && (ranges?.pairs ?? rows * N) >= PARALLEL_PAIRS && rows >= 2 && workers !== 1;
    if (!parallel) {
      const outs = plan.outputs.map((o) => (o.int ? new Int32Array(rows * o.width) : floatArray(plan.dtype, rows * o.width)));
      // Generated code only indexes its inputs, so a Float64Array (the literal parameters) reads as well.
      try {
        k.fn(N, 0, rows, ins, outs, batch?.offsets, M);
      } catch (e) {
        throw stackLimit(e, plan);
      }
      return outs;
    }
    const pool = await (this.pool ??= WorkerPool.create(workers));
    let bytes = 0;
    const share = (a: Float32Array | Float64Array | Int32Array | undefined): Float32Array | Float64Array | Int32Array | undefined => {
      if (a === undefined) return undefined;
      const buf = new SharedArrayBuffer(a.byteLength);
      const s = a instanceof Float64Array ? new Float64Array(buf) : a instanceof Int32Array ? new Int32Array(buf) : new Float32Array(buf);
      s.set(a);
      bytes += a.byteLength;
      return s;
    };
    const sins = ins.map(share);
    const f64 = plan.dtype === 'float64';
    const souts = plan.outputs.map((o) => {
      const size = o.int || !f64 ? 4 : 8;
      bytes += rows * o.width * size;
      const buf = new SharedArrayBuffer(rows * o.width * size);
      return o.int ? new Int32Array(buf) : f64 ? new Float64Array(buf) : new Float32Array(buf);
    });
    record.alloc(bytes);
    try {
      // Several chunks per worker so an uneven split still keeps every core busy.
      const chunk = Math.max(1, Math.ceil(rows / (pool.size * 8)));
      const key = batch === undefined ? plan.key : `${plan.key}|batched`;
      await pool.run({ key, source: k.source, N, ins: sins, outs: souts, ...(batch === undefined ? {} : { batchOffsets: batch.offsets, batchRows: M }) }, rows, chunk).catch((e: unknown) => {
        throw stackLimit(e, plan);
      });
      // Copies out of shared memory, each of its own type.
      return souts.map((s) => s.slice());
    } finally {
      record.free(bytes);
    }
  }

  /** The compiled kernel of a plan, plain or batched (a variant of its own, keyed by structure: batch sizes are run-time data). */
  private compiled(plan: KernelPlan, batched = false): Compiled {
    const key = batched ? `${plan.key}|batched` : plan.key;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      record.cacheHit();
      return hit;
    }
    const c = this.build(plan, batched);
    this.cache.set(key, c);
    record.compiled();
    return c;
  }

  /** A WASM kernel where WASM is in use, the plan is float32 and it compiles and instantiates (within the engine's limits), else a JavaScript kernel. */
  private build(plan: KernelPlan, batched: boolean): Compiled {
    // WASM kernels compute in f32x4: float64 plans always run on the JavaScript kernels, which compute in float64.
    // Batched and block-sparse plans wrap the plain WASM kernel: per batch segment, or per row segment over its gathered j-ranges.
    if (this.use.kernels === 'wasm' && plan.dtype === 'float32' && (plan.ranged !== true || rangedByGather(plan))) {
      try {
        const plain = wasmKernelSource(compileWasmKernel(plan));
        const source = batched ? wrapBatched(plan, plain) : plan.ranged === true ? wrapRanged(plan, plain) : plain;
        const c = { source, fn: compileKernelJs(source) };
        this.counts.wasmCompiled++;
        return c;
      } catch {
        // Counted (cpuKernels().jsFallbacks) and served by the JavaScript kernel, which prints the same code.
        this.counts.jsFallbacks++;
      }
    }
    const source = renderKernelJs(plan, undefined, batched);
    return { source, fn: compileKernelJs(source) };
  }

  /** Stops the worker threads. */
  async dispose(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await (await pool)?.close();
  }
}

/** A generated kernel whose locals overflow the JavaScript engine's stack is a LimitError, not a RangeError. */
function stackLimit(e: unknown, plan: KernelPlan): unknown {
  const msg = e instanceof Error ? e.message : String(e);
  if (!msg.includes('Maximum call stack size exceeded')) return e;
  return new LimitError(
    'kernelSize',
    `the CPU kernel for ${plan.reduction.name} of ${printFormula(plan.f, 200)} has more temporaries than the JavaScript engine's stack holds; use fewer nodes or smaller vector dimensions`,
  );
}
