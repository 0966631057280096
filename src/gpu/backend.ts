/// <reference types="@webgpu/types" />
import { BackendError } from '../errors.js';
import type { KernelPlan } from '../nodes/plan.js';
import { record } from '../stats.js';
import { defaultShape, renderKernelWgsl, UNIFORM_BYTES, type KernelShape, type RenderedWgsl } from './codegen.js';
import { acquireDevice, isDeviceLost, type GpuContext } from './device.js';
import { delay, isNode, observePace, paceFor, type PaceState } from './pace.js';

/** Output arrays of one reduction, one per reduction output (values float32, indices int32). */
export type KernelOutputs = (Float32Array | Int32Array)[];

// WebGPU flag values (fixed by the spec). Written out because in Node the `GPUBufferUsage`
// namespace objects live in the `webgpu` package's `globals`, not on globalThis.
const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
const MAP_READ = 0x1;
const COMPUTE = 0x4;

export interface GpuBackendOptions {
  /** Kernel shape per plan (rows per invocation, workgroup size); default: `defaultShape`. */
  readonly shape?: (plan: KernelPlan) => KernelShape | undefined;
  /** Caps workgroups per dispatch below the device limit (tests use it to exercise chunking). */
  readonly maxWorkgroupsPerDispatch?: number;
  /**
   * Sleep for most of a dispatch's predicted duration before waiting on the device (default: on
   * in Node). dawn.node polls with setImmediate while a promise is pending, and on a CPU driver
   * that spinning thread takes cores from the driver's workers: 1.3-1.6x on lavapipe (DESIGN.md).
   */
  readonly pace?: boolean;
}

interface Pipeline {
  readonly rendered: RenderedWgsl;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** Pacing of waits (see pace.ts), per pipeline. */
  readonly pace: PaceState;
}

const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/**
 * WebGPU backend: one WGSL compute shader per plan structure and kernel shape, cached per device;
 * sizes travel in a uniform, so new M and N reuse the pipeline. One reduction is one dispatch, or
 * one per chunk of rows when M needs more than the device's workgroups per dispatch.
 */
export class GpuBackend {
  readonly name = 'webgpu' as const;
  private readonly cache = new Map<string, Promise<Pipeline>>();
  private cacheGeneration = -1;

  constructor(private readonly opts: GpuBackendOptions = {}) {}

  /** The kernel shape used for a plan. */
  shapeFor(plan: KernelPlan): KernelShape {
    return this.opts.shape?.(plan) ?? defaultShape(plan);
  }

  /** WGSL source of the kernel for a plan (for inspection and tests). */
  source(plan: KernelPlan): string {
    return renderKernelWgsl(plan, this.shapeFor(plan)).source;
  }

  /** Runs a plan: `ins[v]` is the data of variable v; M kept rows, N reduced terms. */
  async run(plan: KernelPlan, ins: readonly (Float32Array | undefined)[], M: number, N: number): Promise<KernelOutputs> {
    const outs: KernelOutputs = plan.outputs.map((o) => (o.int ? new Int32Array(M * o.width) : new Float32Array(M * o.width)));
    if (M === 0) return outs;
    const ctx = await acquireDevice();
    const pipe = await this.pipeline(ctx, plan);
    const { device } = ctx;
    const limits = device.limits;
    const shape = pipe.rendered.shape;

    // Check sizes before allocating anything.
    const inputs = pipe.rendered.bindings.map((b) => {
      if (b.kind === 'out') return undefined;
      const v = plan.vars[b.index]!;
      const need = (v.cat === 0 ? M : v.cat === 1 ? N : 1) * v.dim;
      const data = ins[b.index];
      if (data === undefined || data.length < need) {
        throw new BackendError(`WebGPU: variable ${b.index} (${v.key}) needs ${need} values, got ${data?.length ?? 'none'}`);
      }
      return data.length === need ? data : data.subarray(0, need);
    });
    const bytesOf = (n: number): number => Math.max(4, n * 4);
    const tooBig = (what: string, bytes: number, limit: number, name: string): void => {
      if (bytes > limit) {
        throw new BackendError(
          `WebGPU: ${what} needs ${bytes} bytes, more than ${name} (${limit}); splitting a binding across buffers is not implemented yet (use the CPU backend for this size)`,
        );
      }
    };
    pipe.rendered.bindings.forEach((b, k) => {
      const bytes = b.kind === 'var' ? bytesOf(inputs[k]!.length) : bytesOf(M * plan.outputs[b.index]!.width);
      tooBig(b.kind === 'var' ? `variable ${b.index}` : `output ${b.index}`, bytes, limits.maxStorageBufferBindingSize, 'maxStorageBufferBindingSize');
    });
    const outOffsets: number[] = [];
    let stagingBytes = 0;
    for (const o of plan.outputs) {
      outOffsets.push(stagingBytes);
      stagingBytes += Math.ceil(bytesOf(M * o.width) / 8) * 8; // getMappedRange offsets are multiples of 8
    }
    const timed = device.features.has('timestamp-query');
    const tsOffset = stagingBytes;
    if (timed) stagingBytes += 16;
    tooBig('the readback buffer', stagingBytes, limits.maxBufferSize, 'maxBufferSize');

    const rowsPerGroup = shape.rowsPerThread * shape.workgroupSize;
    const maxGroups = Math.min(limits.maxComputeWorkgroupsPerDimension, this.opts.maxWorkgroupsPerDispatch ?? Infinity);
    const rowsPerChunk = maxGroups * rowsPerGroup;
    const chunks = Math.ceil(M / rowsPerChunk);

    const buffers: GPUBuffer[] = [];
    const querySets: GPUQuerySet[] = [];
    let bytes = 0;
    const make = (size: number, usage: number, label: string): GPUBuffer => {
      const b = device.createBuffer({ size, usage, label });
      buffers.push(b);
      bytes += size;
      record.alloc(size);
      return b;
    };
    // Error scopes are a per-device stack: everything between push and pop below is synchronous,
    // so concurrent calls cannot interleave their scopes.
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    let popped = false;
    try {
      const bound = pipe.rendered.bindings.map((b, k) => {
        if (b.kind === 'out') return make(bytesOf(M * plan.outputs[b.index]!.width), USAGE.STORAGE | USAGE.COPY_SRC, `O${b.index}`);
        const data = inputs[k]!;
        const buf = make(bytesOf(data.length), USAGE.STORAGE | USAGE.COPY_DST, `V${b.index}`);
        if (data.length > 0) device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
        return buf;
      });
      const staging = make(Math.max(8, stagingBytes), USAGE.MAP_READ | USAGE.COPY_DST, 'readback');
      const encoder = device.createCommandEncoder();
      // Timestamps of the pass (when the device has them) time the kernel itself, for pacing.
      const querySet = timed ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
      const pass = encoder.beginComputePass(
        querySet === undefined ? {} : { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } },
      );
      pass.setPipeline(pipe.pipeline);
      for (let c = 0; c < chunks; c++) {
        const row0 = c * rowsPerChunk;
        const rows = Math.min(rowsPerChunk, M - row0);
        const uniform = make(UNIFORM_BYTES, USAGE.UNIFORM | USAGE.COPY_DST, `P${c}`);
        device.queue.writeBuffer(uniform, 0, new Uint32Array([M, N, row0, 0]));
        const group = device.createBindGroup({
          layout: pipe.layout,
          entries: [uniform, ...bound].map((buffer, binding) => ({ binding, resource: { buffer } })),
        });
        pass.setBindGroup(0, group);
        pass.dispatchWorkgroups(Math.ceil(rows / rowsPerGroup));
        record.dispatch();
      }
      pass.end();
      if (querySet !== undefined) {
        const resolved = make(16, USAGE.QUERY_RESOLVE | USAGE.COPY_SRC, 'timestamps');
        encoder.resolveQuerySet(querySet, 0, 2, resolved, 0);
        encoder.copyBufferToBuffer(resolved, 0, staging, tsOffset, 16);
        querySets.push(querySet);
      }
      pipe.rendered.bindings.forEach((b, k) => {
        if (b.kind === 'out') encoder.copyBufferToBuffer(bound[k]!, 0, staging, outOffsets[b.index]!, M * plan.outputs[b.index]!.width * 4);
      });
      const t0 = performance.now();
      device.queue.submit([encoder.finish()]);
      const validation = device.popErrorScope();
      const oom = device.popErrorScope();
      popped = true;
      const pairs = M * Math.max(1, N);
      const sleep = (this.opts.pace ?? isNode) ? paceFor(pipe.pace, pairs) : 0;
      if (sleep > 0) await delay(sleep);
      await settle(ctx, Promise.all([validation, oom, staging.mapAsync(MAP_READ)]).then(([v, o]) => {
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
      observePace(pipe.pace, pairs, sleep, total, deviceMs);
      outs.forEach((out, o) => {
        // A view of the mapped range, copied once into the result (no intermediate copy).
        const view = out instanceof Int32Array ? new Int32Array(mapped, outOffsets[o]!, out.length) : new Float32Array(mapped, outOffsets[o]!, out.length);
        out.set(view);
      });
      staging.unmap();
      return outs;
    } finally {
      if (!popped) {
        // Encoding threw before the scopes were popped: pop them so the stack stays balanced.
        device.popErrorScope().catch(() => undefined);
        device.popErrorScope().catch(() => undefined);
      }
      for (const b of buffers) b.destroy();
      for (const q of querySets) q.destroy();
      record.free(bytes);
    }
  }

  /** The cached pipeline for a plan on this device, compiled on a miss (counted in stats()). */
  private pipeline(ctx: GpuContext, plan: KernelPlan): Promise<Pipeline> {
    if (ctx.generation !== this.cacheGeneration) {
      this.cache.clear();
      this.cacheGeneration = ctx.generation;
    }
    const shape = this.shapeFor(plan);
    const key = `${plan.key}|wg=${shape.workgroupSize}|rows=${shape.rowsPerThread}`;
    const hit = this.cache.get(key);
    if (hit !== undefined) {
      record.cacheHit();
      return hit;
    }
    record.compiled();
    const p = this.build(ctx, plan, shape);
    this.cache.set(key, p);
    p.catch(() => {
      if (this.cache.get(key) === p) this.cache.delete(key);
    });
    return p;
  }

  private async build(ctx: GpuContext, plan: KernelPlan, shape: KernelShape): Promise<Pipeline> {
    const { device } = ctx;
    const rendered = renderKernelWgsl(plan, shape);
    const storage = rendered.bindings.length;
    if (storage > device.limits.maxStorageBuffersPerShaderStage) {
      throw new BackendError(
        `WebGPU: ${plan.reduction.name} of ${plan.f.key} needs ${storage} storage buffers, the device allows ${device.limits.maxStorageBuffersPerShaderStage}`,
      );
    }
    device.pushErrorScope('validation');
    const module = device.createShaderModule({ code: rendered.source, label: plan.key.slice(0, 200) });
    const layout = device.createBindGroupLayout({
      entries: [
        { binding: 0, visibility: COMPUTE, buffer: { type: 'uniform' } },
        ...rendered.bindings.map((b, k) => ({
          binding: k + 1,
          visibility: COMPUTE,
          buffer: { type: b.kind === 'var' ? ('read-only-storage' as const) : ('storage' as const) },
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
        `WebGPU: the kernel for ${plan.reduction.name} of ${plan.f.key} did not compile: ${errText(e)}\n${msgs.join('\n')}\n--- WGSL ---\n${rendered.source}`,
      );
    });
    return { rendered, pipeline: outcome, layout, pace: {} };
  }
}

/**
 * Awaits device work, but fails with the device-lost error as soon as the device is lost
 * (a lost device may never settle its pending promises). Other failures become BackendErrors.
 */
async function settle<T>(ctx: GpuContext, work: Promise<T>): Promise<T> {
  type Outcome = { ok: true; value: T } | { ok: false; error: unknown };
  const done: Promise<Outcome> = work.then(
    (value) => ({ ok: true, value }),
    (error: unknown) => ({ ok: false, error }),
  );
  const lost: Promise<Outcome> = ctx.lost.then((error) => ({ ok: false, error }));
  const r = await Promise.race([done, lost]);
  if (r.ok) return r.value;
  if (r.error instanceof BackendError) throw r.error;
  // Work that failed because the device went away reports the loss, not the symptom.
  const lostNow = await Promise.race([ctx.lost, Promise.resolve(undefined)]);
  throw lostNow ?? new BackendError(`WebGPU: ${errText(r.error)}`);
}
