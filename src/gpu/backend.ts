import { Cat } from '../graph/formula.js';
/// <reference types="@webgpu/types" />
import { BackendError } from '../errors.js';
import { printFormula } from '../graph/print.js';
import { LruCache } from '../kernel/cache.js';
import type { KernelPlan } from '../kernel/plan.js';
import { rangedPlan, type KernelRanges } from '../kernel/ranges.js';
import { eachBatch, type BatchRun } from '../kernel/batch.js';
import { rangedSchedule } from './ranged.js';
import { stateWidth } from '../ops/reductions.js';
import { record } from '../stats.js';
import {
  MERGE_SHAPE,
  renderKernelWgsl,
  renderMergeWgsl,
  renderPartialWgsl,
  renderRangedWgsl,
  renderBatchedWgsl,
  type Binding,
  type KernelKind,
  type KernelShape,
  type RenderedWgsl,
} from './codegen.js';
import { BufferSet, COMPUTE, encodePasses, errText, schedulePasses, settle, sliceBinding, USAGE, type Pipeline } from './encode.js';
import { bindReduction, boundInputs, unbindable, type BoundReduction } from './bound.js';
import { acquireDevice, isDeviceLost, type GpuContext } from './device.js';
import { wgslDialect } from './dialect.js';
import { float32Input, PACKED_NAME, packLayout, packRows } from './pack.js';
import { batchSchedule, fitsOneDispatch, packBatch, type PackedBatch } from './batch-pack.js';
import { DEFAULT_WORKGROUP_STORAGE, profileFromEnv, pinnedShape, profileShape, shapeCandidates, splitShapeOf, type GpuProfile, type GpuProfileChoice } from './profile.js';
import { autotunes, cornerOf, noteShape, timeCandidates, tuneSize } from './tuner.js';
import { defaultParallelism, MIN_BLOCK, schedule, type Schedule } from './schedule.js';
import { delayUnless, isNode, observePace, paceFor } from './pace.js';

/** Output arrays of one reduction, one per reduction output (values float32, indices int32). */
export type KernelOutputs = (Float32Array | Int32Array)[];


export interface GpuBackendOptions {
  /** Kernel shape per plan (rows per invocation, workgroup size); default: `defaultShape`. */
  readonly shape?: (plan: KernelPlan) => KernelShape | undefined;
  /** Shape of pass 1 of a split reduced axis for M kept rows; default: `defaultSplitShape`. */
  readonly splitShape?: (plan: KernelPlan, M: number) => KernelShape | undefined;
  /** Caps workgroups per dispatch below the device limit (tests use it to exercise chunking). */
  readonly maxWorkgroupsPerDispatch?: number;
  /**
   * Caps the size of one storage binding below the device's maxStorageBufferBindingSize (tests
   * use it to exercise chunking of the kept rows and of the reduced terms without huge arrays).
   */
  readonly maxBindingBytes?: number;
  /**
   * Split of the reduced axis (pass 1: partial states per block, pass 2: merge). 'auto' (default)
   * splits when the kept rows give the device too few invocations and the reduced axis is long;
   * 'off' splits only when a reduced-side input exceeds one binding; a number always splits, with
   * blocks of that many terms (rounded up to the binding alignment).
   */
  readonly split?: 'auto' | 'off' | number;
  /** Invocations the device needs to be busy (default: from the adapter, see `defaultParallelism`). */
  readonly parallelism?: number;
  /**
   * Sleep for most of a dispatch's predicted duration before waiting on the device (default: on
   * in Node). dawn.node polls with setImmediate while a promise is pending, and on a CPU driver
   * that spinning thread takes cores from the driver's workers: 1.3-1.6x on lavapipe (DESIGN.md).
   */
  readonly pace?: boolean;
  /** The kernel profile (profile.ts); `'auto'` (default): KERNELFLOW_GPU_PROFILE, else from the adapter. */
  readonly profile?: GpuProfileChoice;
  /** Time up to 4 shapes on the first large call of each plan structure, keep the fastest (tuner.ts); `'auto'` (default): GPU profile on a GPU. */
  readonly autotune?: boolean | 'auto';
  /** A shape for every plan (its tile clamped to what fits); no profile default, no tuning. */
  readonly pin?: KernelShape;
}


/** What a category's packed buffer holds, for error messages. */
const CAT_WORDS: Readonly<Record<Cat, string>> = { [Cat.i]: 'i-variables', [Cat.j]: 'j-variables', [Cat.param]: 'parameters' };


/**
 * WebGPU backend: one WGSL compute shader per plan structure and kernel shape, cached per device;
 * sizes travel in a uniform, so new M and N reuse the pipeline. One reduction is one dispatch, or
 * one per chunk of rows when M needs more than the device's workgroups per dispatch or a kept-side
 * array more than one storage binding. When the kept rows are too few to keep the device busy
 * and the reduced axis is long, or a reduced-side array exceeds one binding, the reduced axis is
 * split into blocks: pass 1 stores each block's partial state, pass 2 merges them per row and
 * finalizes (two dispatches, plus chunks).
 */
export class GpuBackend {
  readonly name = 'webgpu' as const;
  /** All batches of a call in one dispatch (workgroup rows are batches) when they fit one; else batch by batch. */
  readonly batches = true;
  private readonly cache = new LruCache<Promise<Pipeline>>();
  private cacheGeneration = -1;
  /** The autotuner's winners by plan structure and profile (cleared with the pipelines on a new device). */
  private readonly tuned = new Map<string, Promise<KernelShape>>();

  constructor(private readonly opts: GpuBackendOptions = {}) {
    profileFromEnv(); // a bad value fails here, not at the first dispatch
  }

  /** The profile of a device (`ctx`; without one: a CPU driver) under this backend's options. */
  profileFor(ctx?: Pick<GpuContext, 'software'>): GpuProfile {
    const want = this.opts.profile ?? profileFromEnv();
    if (want !== 'auto') return want;
    return ctx === undefined || ctx.software ? 'cpu' : 'gpu';
  }

  /** The kernel shape used for a plan on a device (without one: a CPU driver's, 16 KiB of workgroup memory), before any tuning. */
  shapeFor(plan: KernelPlan, ctx?: GpuContext): KernelShape {
    const fixed = this.opts.shape?.(plan);
    if (fixed !== undefined) return fixed;
    const limit = ctx?.device.limits.maxComputeWorkgroupStorageSize ?? DEFAULT_WORKGROUP_STORAGE;
    if (this.opts.pin !== undefined) return pinnedShape(this.opts.pin, plan, limit);
    return profileShape(this.profileFor(ctx), plan, limit);
  }

  /** The autotuner's winner for a plan on a device (a pending tuning resolves to it), if this backend tuned one. */
  tunedShape(plan: KernelPlan, ctx: GpuContext): Promise<KernelShape> | undefined {
    return this.tuned.get(`${plan.key}|${this.profileFor(ctx)}`);
  }

  /** The kernel shape of pass 1 of a split of M kept rows for a plan (from the one-pass kernel's shape `full`). */
  splitShapeFor(plan: KernelPlan, M: number, full: KernelShape = this.shapeFor(plan)): KernelShape {
    return this.opts.splitShape?.(plan, M) ?? splitShapeOf(full, M);
  }

  /** WGSL source of a plan's kernel (for inspection and tests): the one-pass kernel, or pass 1 (for M kept rows) / pass 2 of a split. */
  source(plan: KernelPlan, kind: KernelKind = 'full', M = Infinity, full: KernelShape = this.shapeFor(kind === 'ranged' ? rangedPlan(plan) : plan)): string {
    const shape = kind === 'merge' ? MERGE_SHAPE : kind === 'partial' ? this.splitShapeFor(plan, M, full) : full;
    return this.render(plan, kind, shape).source;
  }

  private render(plan: KernelPlan, kind: KernelKind | 'batched', shape: KernelShape): RenderedWgsl {
    if (kind === 'batched') return renderBatchedWgsl(plan, shape);
    if (kind === 'merge') return renderMergeWgsl(plan);
    if (kind === 'partial') return renderPartialWgsl(plan, shape);
    if (kind === 'ranged') return renderRangedWgsl(plan, shape);
    return renderKernelWgsl(plan, shape);
  }

  /** How a call of these sizes would run on a device with these limits (for tests and benchmarks). */
  scheduleFor(
    plan: KernelPlan,
    M: number,
    N: number,
    ctx: Pick<GpuContext, 'software' | 'cores'> & { limits: Pick<GPUSupportedLimits, 'maxStorageBufferBindingSize' | 'minStorageBufferOffsetAlignment' | 'maxComputeWorkgroupsPerDimension'> },
    full: KernelShape = this.shapeFor(plan),
  ): Schedule {
    const layout = packLayout(plan);
    return schedule({
      M,
      N,
      iDims: layout.filter((c) => c.cat === Cat.i).map((c) => c.stride),
      jDims: layout.filter((c) => c.cat === Cat.j).map((c) => c.stride),
      outWidths: plan.outputs.map((o) => o.width),
      stateWidth: stateWidth(plan.reduction, wgslDialect, plan.f.dim, plan.g?.dim ?? 0, plan.K),
      full,
      partial: this.splitShapeFor(plan, M, full),
      merge: MERGE_SHAPE,
      ...this.dispatchLimits(ctx.limits),
      unit: Math.max(1, ctx.limits.minStorageBufferOffsetAlignment / 4),
      parallelism: this.opts.parallelism ?? defaultParallelism(ctx),
      minBlock: MIN_BLOCK,
      split: this.opts.split ?? 'auto',
    });
  }

  /**
   * What one kernel may hold on this device, for the scheduler's fusion of sibling reductions
   * (issue 17): the storage buffers a plan's kernels bind at most (the one-pass kernel binds the
   * packed inputs and every output; pass 1 of a split the inputs and the states; pass 2 the
   * states and the outputs) against the adapter's `maxStorageBuffersPerShaderStage`, and the
   * floats of partial state per row (WGSL's, with the compensation terms of its sums).
   */
  async fusion(): Promise<{ readonly maxBindings: number; bindings(plan: KernelPlan): number; stateWidth(plan: KernelPlan): number }> {
    const { device } = await acquireDevice();
    return {
      maxBindings: device.limits.maxStorageBuffersPerShaderStage,
      bindings: (plan) => {
        const packed = packLayout(plan).length;
        return Math.max(packed + plan.outputs.length, packed + 1, 1 + plan.outputs.length);
      },
      stateWidth: (plan) => stateWidth(plan.reduction, wgslDialect, plan.f.dim, plan.g?.dim ?? 0, plan.K),
    };
  }

  /**
   * Runs a plan: `ins[v]` is the data of variable v; M kept rows, N reduced terms; block-sparse over
   * `ranges` when given; per batch when `batch` is given (one dispatch for all batches when it fits
   * the device's limits, else one run per batch).
   */
  async run(plan: KernelPlan, ins: readonly (Float32Array | Float64Array | undefined)[], M: number, N: number, ranges?: KernelRanges, batch?: BatchRun): Promise<KernelOutputs> {
    if (ranges !== undefined && batch !== undefined) throw new BackendError('block-sparse ranges and batch dimensions cannot be combined in one reduction');
    // executeReduction applies init({ float64 }) before this: a float64 plan here is a bug, never a silent float32 run.
    if (plan.dtype === 'float64') throw new BackendError('the WebGPU backend computes in float32 only: a float64 plan must run on the CPU backend');
    if (ranges !== undefined) plan = rangedPlan(plan);
    const count = batch?.count ?? 1;
    const outs: KernelOutputs = plan.outputs.map((o) => (o.int ? new Int32Array(count * M * o.width) : new Float32Array(count * M * o.width)));
    if (M === 0 || count === 0) return outs;
    const ctx = await acquireDevice();
    if (batch !== undefined && !fitsOneDispatch(plan, M, N, batch, this.shapeFor(plan, ctx), this.dispatchLimits(ctx.device.limits))) {
      // float32 plans only here: the batches come back as float32 values and int32 indices.
      return eachBatch(plan.vars, plan.outputs, ins, M, N, batch, (views) => this.run(plan, views, M, N)) as Promise<KernelOutputs>;
    }

    // Check sizes before allocating anything.
    const vars = plan.vars.flatMap((v) => (v === undefined ? [] : [v]));
    const inputs = new Map<number, Float32Array>();
    for (const v of vars) inputs.set(v.index, float32Input(v, ins[v.index], M, N, batch !== undefined));
    const packed = batch === undefined ? undefined : packBatch(packLayout(plan), inputs, M, N, batch);
    if (batch !== undefined && packed === undefined) {
      // More batch axes than the kernel decodes: one run per batch.
      // float32 plans only here: the batches come back as float32 values and int32 indices.
      return eachBatch(plan.vars, plan.outputs, ins, M, N, batch, (views) => this.run(plan, views, M, N)) as Promise<KernelOutputs>;
    }
    // A block-sparse or batched kernel is never tiled nor tuned: the profile's shape sets its rows.
    const full = ranges === undefined && batch === undefined ? await this.chooseShape(ctx, plan, inputs, M, N) : this.shapeFor(plan, ctx);
    const many = batch === undefined || packed === undefined ? undefined : { batch, packed };
    return (await this.execute(ctx, plan, inputs, M, N, full, this.opts.pace ?? isNode, ranges, many)).outs;
  }

  /**
   * Binds a reduction to the device for many applications to a direction (a resident solve, see
   * bound.ts): variable `pVar`'s data is replaced at each `apply` by a device vector. Uses the
   * schedule and pipelines a `run` of these sizes would.
   */
  async bind(plan: KernelPlan, ins: readonly (Float32Array | Float64Array | undefined)[], M: number, N: number, pVar: number): Promise<BoundReduction> {
    const why = unbindable(plan, pVar);
    if (why !== undefined) throw new BackendError(`WebGPU: cannot bind this reduction: ${why}`);
    const inputs = boundInputs(plan, ins, M, N, pVar);
    const ctx = await acquireDevice();
    const full = await this.chooseShape(ctx, plan, inputs, M, N);
    const sched = this.scheduleFor(plan, M, N, { ...ctx, limits: ctx.device.limits }, full);
    const pipes =
      sched.split === null
        ? [await this.pipeline(ctx, plan, 'full', full)]
        : await Promise.all([this.pipeline(ctx, plan, 'partial', this.splitShapeFor(plan, M, full)), this.pipeline(ctx, plan, 'merge', MERGE_SHAPE)]);
    return bindReduction({ ctx, plan, inputs, M, N, pVar, sched, pipes, paced: this.opts.pace ?? isNode });
  }

  /**
   * The one-pass kernel's shape for a call: the `shape` option, the pinned shape, the autotuner's
   * winner for the plan structure (tuned now when this call is the first one large enough), or
   * the profile's default. Recorded for `kernelShapes()`.
   */
  private async chooseShape(ctx: GpuContext, plan: KernelPlan, inputs: ReadonlyMap<number, Float32Array>, M: number, N: number): Promise<KernelShape> {
    if (this.opts.shape !== undefined) return this.shapeFor(plan, ctx);
    this.checkGeneration(ctx);
    const profile = this.profileFor(ctx);
    const key = `${plan.key}|${profile}`;
    const done = this.tuned.get(key);
    if (done !== undefined) return done;
    const kernel = `${plan.reduction.name} of ${printFormula(plan.f, 120)}`;
    const base = this.shapeFor(plan, ctx);
    const tunes = this.opts.pin === undefined && autotunes(this.opts.autotune ?? 'auto', profile, ctx.software);
    const size = tunes ? tuneSize(M, N, ctx.software) : null;
    if (size === null) {
      noteShape(ctx.generation, key, { kernel, profile, shape: base, chosenBy: this.opts.pin === undefined ? 'profile' : 'pinned' });
      // Without tuning the shape is final for the structure; a call too small to tune leaves it to a later one.
      if (!tunes) this.tuned.set(key, Promise.resolve(base));
      return base;
    }
    const [m, n] = size;
    const corner = cornerOf(plan, inputs, m, n);
    const limit = ctx.device.limits.maxComputeWorkgroupStorageSize;
    const tuning = timeCandidates(shapeCandidates(profile, plan, limit), async (s) => (await this.execute(ctx, plan, corner, m, n, s, false)).ms).then((ranked) => {
      noteShape(ctx.generation, key, { kernel, profile, shape: ranked[0]!.shape, chosenBy: 'tuned', candidates: ranked, tunedOn: [m, n] });
      return ranked[0]!.shape;
    });
    this.tuned.set(key, tuning);
    // A tuning that fails (the device was lost) is forgotten: the next call tunes again.
    tuning.catch(() => {
      if (this.tuned.get(key) === tuning) this.tuned.delete(key);
    });
    return tuning;
  }

  /** Workgroups per dispatch and bytes per binding on a device under this backend's options. */
  private dispatchLimits(limits: Pick<GPUSupportedLimits, 'maxComputeWorkgroupsPerDimension' | 'maxStorageBufferBindingSize'>): { maxGroups: number; bindBytes: number } {
    return {
      maxGroups: Math.min(limits.maxComputeWorkgroupsPerDimension, this.opts.maxWorkgroupsPerDispatch ?? Infinity),
      bindBytes: Math.min(limits.maxStorageBufferBindingSize, this.opts.maxBindingBytes ?? Infinity),
    };
  }

  /** Clears the device-bound caches when the device changed. */
  private checkGeneration(ctx: GpuContext): void {
    if (ctx.generation !== this.cacheGeneration) {
      this.cache.clear();
      this.tuned.clear();
      this.cacheGeneration = ctx.generation;
    }
  }

  /** Runs a plan with a one-pass kernel shape; also returns its milliseconds (device time when the device has timestamps, else wall time). */
  private async execute(
    ctx: GpuContext,
    plan: KernelPlan,
    inputs: ReadonlyMap<number, Float32Array>,
    M: number,
    N: number,
    full: KernelShape,
    paced: boolean,
    ranges?: KernelRanges,
    many?: { batch: BatchRun; packed: PackedBatch },
  ): Promise<{ outs: KernelOutputs; ms: number }> {
    const rowsOut = (many?.batch.count ?? 1) * M;
    const outs: KernelOutputs = plan.outputs.map((o) => (o.int ? new Int32Array(rowsOut * o.width) : new Float32Array(rowsOut * o.width)));
    const { device } = ctx;
    const limits = device.limits;
    const layout = packLayout(plan);
    const ranged =
      ranges === undefined
        ? undefined
        : rangedSchedule(ranges, {
            M,
            N,
            iStride: layout.find((c) => c.cat === Cat.i)?.stride ?? 0,
            jStride: layout.find((c) => c.cat === Cat.j)?.stride ?? 0,
            outWidths: plan.outputs.map((o) => o.width),
            shape: full,
            ...this.dispatchLimits(limits),
          });
    const sched = ranged?.schedule ?? (many === undefined ? this.scheduleFor(plan, M, N, { ...ctx, limits }, full) : batchSchedule(M, N, many.batch, many.packed.uniform, full));
    const split = sched.split;
    const pipes =
      split === null
        ? [await this.pipeline(ctx, plan, ranged !== undefined ? 'ranged' : many !== undefined ? 'batched' : 'full', full)]
        : await Promise.all([this.pipeline(ctx, plan, 'partial', this.splitShapeFor(plan, M, full)), this.pipeline(ctx, plan, 'merge', MERGE_SHAPE)]);
    const W = pipes[0]!.rendered.stateWidth;

    const bytesOf = (n: number): number => Math.max(4, n * 4);
    const tooBig = (what: string, bytes: number): void => {
      if (bytes > limits.maxBufferSize) throw new BackendError(`WebGPU: ${what} needs ${bytes} bytes, more than maxBufferSize (${limits.maxBufferSize})`);
    };
    const rowsOf = (cat: Cat): number => (cat === Cat.i ? M : cat === Cat.j ? N : 1);
    for (const c of layout) tooBig(`the ${CAT_WORDS[c.cat]} (${c.stride} floats per row)`, bytesOf(many?.packed.data.get(c.cat)?.length ?? rowsOf(c.cat) * c.stride));
    const stateBytes = split === null ? 0 : bytesOf(M * split.B * W);
    tooBig('the partial states', stateBytes);
    const outOffsets: number[] = [];
    let stagingBytes = 0;
    for (const o of plan.outputs) {
      outOffsets.push(stagingBytes);
      stagingBytes += Math.ceil(bytesOf(rowsOut * o.width) / 8) * 8; // getMappedRange offsets are multiples of 8
    }
    const timed = device.features.has('timestamp-query');
    const tsOffset = stagingBytes;
    if (timed) stagingBytes += 16;
    tooBig('the readback buffer', stagingBytes);

    const buffers = new BufferSet(device);
    const querySets: GPUQuerySet[] = [];
    const make = (size: number, usage: number, label: string): GPUBuffer => buffers.make(size, usage, label);
    // Error scopes are a per-device stack: everything between push and pop below is synchronous,
    // so concurrent calls cannot interleave their scopes.
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let popped = false;
    try {
      // One buffer per category, its variables interleaved row by row (pack.ts).
      const packedBufs = new Map<Cat, GPUBuffer>();
      for (const c of layout) {
        const data = many?.packed.data.get(c.cat) ?? packRows(c, inputs, rowsOf(c.cat));
        const buf = make(bytesOf(data.length), USAGE.STORAGE | USAGE.COPY_DST, PACKED_NAME[c.cat]);
        if (data.length > 0) device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
        packedBufs.set(c.cat, buf);
      }
      const outBufs = plan.outputs.map((o, k) => make(bytesOf(rowsOut * o.width), USAGE.STORAGE | USAGE.COPY_SRC, `O${k}`));
      const stateBuf = split === null ? undefined : make(stateBytes, USAGE.STORAGE, 'partial states');
      const staging = make(Math.max(8, stagingBytes), USAGE.MAP_READ | USAGE.COPY_DST, 'readback');
      const rangesBuf = ranged === undefined ? undefined : make(Math.max(4, ranged.table.byteLength), USAGE.STORAGE | USAGE.COPY_DST, 'RG');
      if (ranged !== undefined && ranged.table.length > 0) device.queue.writeBuffer(rangesBuf!, 0, ranged.table);

      // A batched dispatch reads each buffer at its batches' rows: it binds them whole.
      const whole = (b: Binding): GPUBufferBinding => ({ buffer: b.kind === 'out' ? outBufs[b.index]! : b.kind === 'packed' ? packedBufs.get(b.cat)! : b.kind === 'ranges' ? rangesBuf! : stateBuf! });
      const resource = many !== undefined ? whole : sliceBinding(plan, layout, W, split, { packed: packedBufs, outs: outBufs, state: stateBuf, ranges: rangesBuf });
      const encoder = device.createCommandEncoder();
      // Timestamps of the passes (when the device has them) time the kernels themselves, for pacing.
      const querySet = timed ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
      if (querySet !== undefined) querySets.push(querySet);
      encodePasses(encoder, schedulePasses(device, sched, pipes, buffers, resource), querySet);
      if (querySet !== undefined) {
        const resolved = make(16, USAGE.QUERY_RESOLVE | USAGE.COPY_SRC, 'timestamps');
        encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
        encoder.copyBufferToBuffer(resolved, 0, staging, tsOffset, 16);
      }
      plan.outputs.forEach((o, k) => encoder.copyBufferToBuffer(outBufs[k]!, 0, staging, outOffsets[k]!, rowsOut * o.width * 4));
      const t0 = performance.now();
      device.queue.submit([encoder.finish()]);
      const validation = device.popErrorScope();
      const oom = device.popErrorScope();
      popped = true;
      const pace = pipes[0]!.pace;
      const pairs = ranges?.pairs ?? rowsOut * Math.max(1, N);
      const sleep = paced ? paceFor(pace, pairs) : 0;
      if (sleep > 0) await delayUnless(sleep, ctx.lost); // a loss ends the nap: the call fails at once
      await settle(ctx, Promise.all([validation, oom, staging.mapAsync(USAGE.MAP_READ)]).then(([v, o]) => {
        const err = v ?? o;
        if (err !== null) throw new BackendError(`WebGPU: ${plan.reduction.name} kernel failed: ${err.message}`);
      }));
      const total = performance.now() - t0;
      const mapped = staging.getMappedRange();
      let deviceMs: number | undefined;
      if (timed) {
        const [begin, end] = new BigUint64Array(mapped, tsOffset, 2);
        deviceMs = end! > begin! ? Number(end! - begin!) / 1e6 : undefined;
      }
      observePace(pace, pairs, sleep, total, deviceMs);
      outs.forEach((out, o) => {
        // A view of the mapped range, copied once into the result (no intermediate copy).
        const view = out instanceof Int32Array ? new Int32Array(mapped, outOffsets[o]!, out.length) : new Float32Array(mapped, outOffsets[o]!, out.length);
        out.set(view);
      });
      staging.unmap();
      return { outs, ms: deviceMs ?? total };
    } finally {
      if (!popped) {
        // Encoding threw before the scopes were popped: pop them so the stack stays balanced.
        device.popErrorScope().catch(() => undefined);
        device.popErrorScope().catch(() => undefined);
      }
      buffers.release();
      for (const q of querySets) q.destroy();
    }
  }

  /** The cached pipeline of one of a plan's kernels on this device, compiled on a miss (counted in stats()). Keyed by structure, never by sizes. */
  private pipeline(ctx: GpuContext, plan: KernelPlan, kind: KernelKind | 'batched', shape: KernelShape): Promise<Pipeline> {
    this.checkGeneration(ctx);
    const key = `${plan.key}|${kind}|wg=${shape.workgroupSize}|rows=${shape.rowsPerThread}|tile=${shape.tileRows ?? 0}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      record.cacheHit();
      return hit;
    }
    record.compiled();
    const p = this.build(ctx, plan, kind, shape);
    this.cache.set(key, p);
    p.catch(() => {
      if (this.cache.get(key) === p) this.cache.delete(key);
    });
    return p;
  }

  private async build(ctx: GpuContext, plan: KernelPlan, kind: KernelKind | 'batched', shape: KernelShape): Promise<Pipeline> {
    const { device } = ctx;
    const rendered = this.render(plan, kind, shape);
    const storage = rendered.bindings.length;
    if (storage > device.limits.maxStorageBuffersPerShaderStage) {
      throw new BackendError(
        `WebGPU: ${plan.reduction.name} of ${printFormula(plan.f, 500)} needs ${storage} storage buffers, the device allows ${device.limits.maxStorageBuffersPerShaderStage}`,
      );
    }
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: rendered.source, label: `${kind} ${plan.reduction.name} of ${printFormula(plan.f, 160)}` });
    const layout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
        ...rendered.bindings.map((b, k) => ({
          binding: k + 1,
          visibility: COMPUTE,
          buffer: { type: b.kind === 'packed' || b.kind === 'ranges' || (b.kind === 'state' && !b.write) ? ('read-only-storage' as const) : ('storage' as const) },
        })),
      ],
    });
    const pipelineLayout = device.createPipelineLayout({ bindGroupLayouts: [layout] });
    const created = device.createComputePipelineAsync({ layout: pipelineLayout, compute: { module, entryPoint: 'main' } });
    const scope = device.popErrorScope();
    const outcome = await settle(
      ctx,
      Promise.all([created, scope]).then(([pipeline, err]) => {
        if (err !== null) throw new Error(err.message);
        return pipeline;
      }),
    ).catch(async (e: unknown) => {
      if (isDeviceLost(e)) throw e;
      const info = await module.getCompilationInfo().catch(() => undefined);
      const msgs = info?.messages.filter((m) => m.type === 'error').map((m) => `  ${m.lineNum}:${m.linePos} ${m.message}`) ?? [];
      throw new BackendError(
        `WebGPU: the ${kind === 'full' ? '' : `${kind} `}kernel for ${plan.reduction.name} of ${printFormula(plan.f, 500)} did not compile: ${errText(e).slice(0, 2000)}\n${msgs.slice(0, 20).join('\n')}\n(the WGSL source is the error's \`source\`)`,
        { source: rendered.source },
      );
    });
    return { rendered, pipeline: outcome, layout, pace: {} };
  }
}
