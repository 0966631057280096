/// <reference types="@webgpu/types" />
import { BackendError } from '../errors.js';
import { record } from '../stats.js';
import { Cat } from '../graph/formula.js';
import type { KernelPlan } from '../kernel/plan.js';
import type { Binding, RenderedWgsl } from './codegen.js';
import type { PackedCategory } from './pack.js';
import type { GpuContext } from './device.js';
import type { PaceState } from './pace.js';
import type { Dispatch, Schedule } from './schedule.js';

/**
 * The pieces of a reduction's run that `GpuBackend.execute` (one call: upload, dispatch, read
 * back) and a bound reduction (bound.ts: inputs uploaded once, many dispatches, no readback)
 * share: buffer flags, the uniform block of a schedule, its bind groups and compute passes, and
 * `settle` (device work raced with the device's loss).
 */

// WebGPU flag values (fixed by the spec). Written out because in Node the `GPUBufferUsage`
// namespace objects live in the `webgpu` package's `globals`, not on globalThis.
export const USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, UNIFORM: 0x40, STORAGE: 0x80, QUERY_RESOLVE: 0x200 } as const;
export const COMPUTE = 0x4;

/** A compiled kernel of a plan, cached per device. */
export interface Pipeline {
  readonly rendered: RenderedWgsl;
  readonly pipeline: GPUComputePipeline;
  readonly layout: GPUBindGroupLayout;
  /** Pacing of waits (see pace.ts), per pipeline. */
  readonly pace: PaceState;
}

export const errText = (e: unknown): string => (e instanceof Error ? e.message : String(e));

/** Creates buffers and counts them in stats() until `release` (which destroys them). */
export class BufferSet {
  private readonly list: GPUBuffer[] = [];
  private bytes = 0;
  constructor(private readonly device: GPUDevice) {}
  make(size: number, usage: number, label: string): GPUBuffer {
    const b = this.device.createBuffer({ size, usage, label });
    this.list.push(b);
    this.bytes += size;
    record.alloc(size);
    return b;
  }
  release(): void {
    for (const b of this.list) b.destroy();
    record.free(this.bytes);
    this.list.length = 0;
    this.bytes = 0;
  }
}

/** The buffers a plan's kernels bind (outputs by index, packed inputs by category). */
export interface PlanBuffers {
  readonly packed: ReadonlyMap<Cat, GPUBuffer>;
  readonly outs: readonly GPUBuffer[];
  readonly state: GPUBuffer | undefined;
  readonly ranges: GPUBuffer | undefined;
}

/** The bound range of binding `b` for dispatch `d`: the slices of the kept rows and reduced terms it covers (W: floats of state per row and block). */
export function sliceBinding(plan: KernelPlan, layout: readonly PackedCategory[], W: number, split: Schedule['split'], bufs: PlanBuffers): (b: Binding, d: Dispatch) => GPUBufferBinding {
  const range = (buffer: GPUBuffer, first: number, count: number, per: number): GPUBufferBinding =>
    count * per === 0 ? { buffer } : { buffer, offset: first * per * 4, size: count * per * 4 };
  return (b, d) => {
    const [rb, re] = d.rows;
    if (b.kind === 'out') return range(bufs.outs[b.index]!, rb, re - rb, plan.outputs[b.index]!.width);
    if (b.kind === 'state') return range(bufs.state!, rb, re - rb, split!.B * W);
    if (b.kind === 'ranges') return { buffer: bufs.ranges! };
    const buffer = bufs.packed.get(b.cat)!;
    const stride = layout.find((c) => c.cat === b.cat)!.stride;
    if (b.cat === Cat.i) return range(buffer, rb, re - rb, stride);
    if (b.cat === Cat.j) return range(buffer, d.terms[0], d.terms[1] - d.terms[0], stride);
    return { buffer };
  };
}

/** One compute pass: a pipeline and its dispatches, each with its bind group. */
export interface EncodedPass {
  readonly pipe: Pipeline;
  readonly dispatches: readonly { readonly group: GPUBindGroup; readonly groups: number | readonly [number, number] }[];
}

/**
 * The passes of a schedule (the one pass, or pass 1 and pass 2 of a split), with every
 * dispatch's uniform in one buffer at the device's uniform offset alignment, and bind groups
 * whose storage bindings `resource` gives.
 */
export function schedulePasses(
  device: GPUDevice,
  sched: Schedule,
  pipes: readonly Pipeline[],
  buffers: BufferSet,
  resource: (b: Binding, d: Dispatch) => GPUBufferBinding,
): EncodedPass[] {
  const all = [...sched.pass1.map((d) => [pipes[0]!, d] as const), ...sched.pass2.map((d) => [pipes[1]!, d] as const)];
  const align = device.limits.minUniformBufferOffsetAlignment;
  const stride = Math.ceil(Math.max(...all.map(([p]) => p.rendered.uniformBytes)) / align) * align;
  const uniformBuf = buffers.make(stride * all.length, USAGE.UNIFORM | USAGE.COPY_DST, 'P');
  const words = new Uint32Array((stride / 4) * all.length);
  all.forEach(([, d], k) => words.set(d.uniform, (k * stride) / 4));
  device.queue.writeBuffer(uniformBuf, 0, words);
  let slot = 0;
  const passes = sched.split === null ? [sched.pass1] : [sched.pass1, sched.pass2];
  return passes.map((dispatches, p) => {
    const pipe = pipes[p]!;
    return {
      pipe,
      dispatches: dispatches.map((d) => ({
        groups: d.groups,
        group: device.createBindGroup({
          layout: pipe.layout,
          entries: [
            { binding: 0, resource: { buffer: uniformBuf, offset: slot++ * stride, size: pipe.rendered.uniformBytes } },
            ...pipe.rendered.bindings.map((b, k) => ({ binding: k + 1, resource: resource(b, d) })),
          ],
        }),
      })),
    };
  });
}

/** Records passes into an encoder; with a query set, timestamps at the start of the first pass and the end of the last. */
export function encodePasses(encoder: GPUCommandEncoder, passes: readonly EncodedPass[], querySet?: GPUQuerySet): void {
  passes.forEach(({ pipe, dispatches }, p) => {
    const writes: GPUComputePassTimestampWrites | undefined =
      querySet === undefined
        ? undefined
        : {
            querySet,
            ...(p === 0 ? { beginningOfPassWriteIndex: 0 } : {}),
            ...(p === passes.length - 1 ? { endOfPassWriteIndex: 1 } : {}),
          };
    const pass = encoder.beginComputePass(writes === undefined ? {} : { timestampWrites: writes });
    pass.setPipeline(pipe.pipeline);
    for (const d of dispatches) {
      pass.setBindGroup(0, d.group);
      if (typeof d.groups === 'number') pass.dispatchWorkgroups(d.groups);
      else pass.dispatchWorkgroups(d.groups[0], d.groups[1]);
      record.dispatch();
    }
    pass.end();
  });
}

/**
 * Awaits device work, but fails with the device-lost error as soon as the device is lost
 * (a lost device may never settle its pending promises). Other failures become BackendErrors.
 */
export async function settle<T>(ctx: GpuContext, work: Promise<T>): Promise<T> {
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
