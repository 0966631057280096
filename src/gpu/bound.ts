/// <reference types="@webgpu/types" />
import { Cat } from '../graph/formula.js';
import { BackendError } from '../errors.js';
import type { KernelPlan } from '../kernel/plan.js';
import type { GpuContext } from './device.js';
import { BufferSet, encodePasses, schedulePasses, sliceBinding, USAGE, type Pipeline } from './encode.js';
import { float32Input, PACKED_NAME, packLayout, packRows } from './pack.js';
import { observePace, paceFor } from './pace.js';
import type { Schedule } from './schedule.js';
import { smallPipeline, type GpuVector, type GpuVectors } from './vectors.js';

/**
 * A reduction bound to the device (issue 19, resident conjugate gradient): its fixed inputs
 * uploaded once, its bind groups built once, and `apply(p, out)` writes the block `p` (a device
 * vector [rows of p's category, cols]) into variable `pVar`'s columns of the packed buffer, runs
 * the plan's dispatches and copies the output into `out` ([M, width]); nothing is read back.
 * Dense, unbatched, unranged float32 plans with one float output.
 */
export interface BoundReduction {
  readonly M: number;
  readonly N: number;
  /** Width of variable pVar and of the output. */
  readonly cols: number;
  readonly ctx: GpuContext;
  /** Records the reduction of `p` into `out` in `vec`'s pending work (run at its next readback, which sleeps through most of it first). */
  apply(p: GpuVector, out: GpuVector, vec: GpuVectors): void;
  dispose(): void;
}

const WG = 256;
const MAX_GROUPS = 4096;

/** DST[r stride + offset + c] = SRC[r dim + c]; Q = [rows, dim, stride, offset]. */
const SCATTER = `@group(0) @binding(0) var<storage, read> Q: array<u32>;
@group(0) @binding(1) var<storage, read> SRC: array<f32>;
@group(0) @binding(2) var<storage, read_write> DST: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let rows = Q[0]; let dim = Q[1];
  for (var e = g.x; e < rows * dim; e += nw.x * ${WG}u) { DST[(e / dim) * Q[2] + Q[3] + e % dim] = SRC[e]; }
}`;

/** Why a plan cannot be bound (undefined: it can). */
export function unbindable(plan: KernelPlan, pVar: number): string | undefined {
  if (plan.dtype !== 'float32') return 'the plan computes in float64';
  if (plan.outputs.length !== 1 || plan.outputs[0]!.int) return 'the reduction has other than one float output';
  const v = plan.vars[pVar];
  if (v === undefined || v.cat === Cat.param) return `variable ${pVar} is not an i- or j-variable of the plan`;
  if (plan.outputs[0]!.width !== v.dim) return `the output's width ${plan.outputs[0]!.width} is not the direction's ${v.dim}`;
  return undefined;
}

/** The data of every variable of a plan but the direction's, as float32, checked against M and N. */
export function boundInputs(plan: KernelPlan, ins: readonly (Float32Array | Float64Array | undefined)[], M: number, N: number, pVar: number): Map<number, Float32Array> {
  const inputs = new Map<number, Float32Array>();
  // Copied: bindReduction packs them after an await (a call owns what it was given when called).
  for (const v of plan.vars) if (v !== undefined && v.index !== pVar) inputs.set(v.index, Float32Array.from(float32Input(v, ins[v.index], M, N)));
  return inputs;
}

export interface BindInput {
  readonly ctx: GpuContext;
  readonly plan: KernelPlan;
  /** Every variable's data (pVar's is not read: it is the direction). */
  readonly inputs: ReadonlyMap<number, Float32Array>;
  readonly M: number;
  readonly N: number;
  readonly pVar: number;
  readonly sched: Schedule;
  readonly pipes: readonly Pipeline[];
  readonly paced: boolean;
}

/** Uploads a plan's inputs and builds its dispatches once (see BoundReduction). */
export async function bindReduction(b: BindInput): Promise<BoundReduction> {
  const { ctx, plan, M, N, pVar, sched, pipes } = b;
  const why = unbindable(plan, pVar);
  if (why !== undefined) throw new BackendError(`WebGPU: cannot bind this reduction: ${why}`);
  const { device } = ctx;
  const layout = packLayout(plan);
  const v = plan.vars[pVar]!;
  const cat = layout.find((c) => c.cat === v.cat)!;
  const offset = cat.vars.find((x) => x.index === pVar)!.offset;
  const pRows = v.cat === Cat.i ? M : N;
  const rowsOf = (c: Cat): number => (c === Cat.i ? M : c === Cat.j ? N : 1);
  const width = plan.outputs[0]!.width;
  const scatter = cat.vars.length === 1 ? undefined : await smallPipeline(ctx, SCATTER, 'scatter direction');
  const buffers = new BufferSet(device);
  const bytesOf = (n: number): number => Math.max(4, n * 4);
  try {
    const inputs = new Map(b.inputs);
    inputs.set(pVar, new Float32Array(pRows * v.dim));
    const packed = new Map<Cat, GPUBuffer>();
    for (const c of layout) {
      const data = packRows(c, inputs, rowsOf(c.cat));
      const buf = buffers.make(bytesOf(data.length), USAGE.STORAGE | USAGE.COPY_DST, PACKED_NAME[c.cat]);
      if (data.length > 0) device.queue.writeBuffer(buf, 0, data.buffer, data.byteOffset, data.byteLength);
      packed.set(c.cat, buf);
    }
    const out = buffers.make(bytesOf(M * width), USAGE.STORAGE | USAGE.COPY_SRC, 'O0');
    const W = pipes[0]!.rendered.stateWidth;
    const state = sched.split === null ? undefined : buffers.make(bytesOf(M * sched.split.B * W), USAGE.STORAGE, 'partial states');
    const passes = schedulePasses(device, sched, pipes, buffers, sliceBinding(plan, layout, W, sched.split, { packed, outs: [out], state, ranges: undefined }));
    const target = packed.get(v.cat)!;
    const q = buffers.make(16, USAGE.STORAGE | USAGE.COPY_DST, 'scatter params');
    device.queue.writeBuffer(q, 0, new Uint32Array([pRows, v.dim, cat.stride, offset]));
    const pace = pipes[0]!.pace;
    // Timestamps of the passes (when the device has them) time the reduction itself, for pacing, as in execute.
    const querySet = device.features.has('timestamp-query') ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
    const stamps = querySet === undefined ? undefined : buffers.make(16, USAGE.QUERY_RESOLVE | USAGE.COPY_SRC, 'timestamps');
    const pairs = M * Math.max(1, N);
    return {
      M,
      N,
      cols: v.dim,
      ctx,
      apply(p, o, vec) {
        const scatterGroup =
          scatter === undefined
            ? undefined
            : device.createBindGroup({
                layout: scatter.getBindGroupLayout(0),
                entries: [
                  { binding: 0, resource: { buffer: q } },
                  { binding: 1, resource: { buffer: p.buffer } },
                  { binding: 2, resource: { buffer: target } },
                ],
              });
        vec.record((enc) => {
          // A lone variable's packed buffer is the direction itself: a copy; else its columns of each row.
          if (scatterGroup === undefined) enc.copyBufferToBuffer(p.buffer, 0, target, 0, pRows * v.dim * 4);
          else vec.dispatch(enc, scatter!, scatterGroup, Math.max(1, Math.min(MAX_GROUPS, Math.ceil((pRows * v.dim) / WG))));
          encodePasses(enc, passes, querySet);
          if (querySet !== undefined) enc.resolveQuerySet(querySet, 0, 2, stamps!, 0);
          if (M * width > 0) enc.copyBufferToBuffer(out, 0, o.buffer, 0, M * width * 4);
        });
        // The next wait sleeps through most of the predicted work before polling (pace.ts: polling takes cores from a CPU driver).
        const sleep = b.paced ? paceFor(pace, pairs) : 0;
        vec.expect(sleep, (ms, deviceMs) => observePace(pace, pairs, sleep, ms, deviceMs), stamps);
      },
      dispose: () => {
        buffers.release();
        querySet?.destroy();
      },
    };
  } catch (e) {
    buffers.release();
    throw e;
  }
}
