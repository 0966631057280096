/// <reference types="@webgpu/types" />
import { BackendError } from '../errors.js';
import { record } from '../stats.js';
import { settle, USAGE } from './encode.js';
import type { GpuContext } from './device.js';

/**
 * Blocks of vectors resident on the device (issue 19: conjugate gradient without moving its
 * vectors): float32 storage buffers [n, cols] row-major, updated by small kernels with one
 * scalar per column (axpy, xpby), and dot products per column read back as per-workgroup partial
 * sums (at most DOT_GROUPS x cols floats) that the host adds in float64. Sizes and scalars
 * travel in a small storage buffer, so nothing recompiles when n or cols change.
 */

/** A block of `cols` vectors of length n on the device. */
export interface GpuVector {
  readonly buffer: GPUBuffer;
}

/** Invocations per workgroup of the vector kernels. */
const WG = 256;
/** Most workgroups of a dot product per column: its partial sums are what is read back. */
export const DOT_GROUPS = 32;
/** Most workgroups of an elementwise kernel (grid-stride loops cover the rest). */
const MAX_GROUPS = 4096;
/** Bytes between parameter blocks of one submission (minStorageBufferOffsetAlignment is at most 256). */
const SLOT = 256;
/** Parameter blocks per submission, so dots of at most this many pairs go in one readback. */
const SLOTS = 8;

const PARAMS = '@group(0) @binding(0) var<storage, read> Q: array<u32>;';

/** The small kernels, by entry point; one module each. Q's first words are sizes, then scalars as f32 bits. */
export const VECTOR_WGSL: Readonly<Record<string, string>> = {
  // Y += a[c] X, Q = [len, cols, a...]
  axpy: `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let len = Q[0]; let cols = Q[1];
  for (var k = g.x; k < len; k += nw.x * ${WG}u) { Y[k] = Y[k] + bitcast<f32>(Q[2u + k % cols]) * X[k]; }
}`,
  // Y = X + b[c] Y, Q = [len, cols, b...]
  xpby: `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let len = Q[0]; let cols = Q[1];
  for (var k = g.x; k < len; k += nw.x * ${WG}u) { Y[k] = X[k] + bitcast<f32>(Q[2u + k % cols]) * Y[k]; }
}`,
  // OUT[(slot cols + c) G + g] = sum over rows i = g WG + l (mod G WG) of A[i, c] B[i, c], Q = [n, cols, G, slot]
  dot: `${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
  let n = Q[0]; let cols = Q[1]; let G = Q[2]; let c = w.y;
  // Compensated sum per invocation: a row's error stays at a few ulps of the sum of |terms|.
  var s = 0.0; var e = 0.0;
  for (var i = w.x * ${WG}u + l; i < n; i += G * ${WG}u) {
    let y = A[i * cols + c] * B[i * cols + c] - e;
    let t = s + y;
    e = (t - s) - y;
    s = t;
  }
  part[l] = s;
  workgroupBarrier();
  for (var h = ${WG / 2}u; h > 0u; h = h >> 1u) {
    if (l < h) { part[l] = part[l] + part[l + h]; }
    workgroupBarrier();
  }
  if (l == 0u) { OUT[(Q[3] * cols + c) * G + w.x] = part[0]; }
}`,
};

/** The pipelines of small kernels, per device and source (compiled once per device, like the reduction pipelines). */
const pipelines = new WeakMap<GPUDevice, Map<string, Promise<GPUComputePipeline>>>();

/** A small kernel's pipeline (layout 'auto': its bindings as the source declares them). */
export function smallPipeline(ctx: GpuContext, source: string, label: string): Promise<GPUComputePipeline> {
  const { device } = ctx;
  let m = pipelines.get(device);
  if (m === undefined) pipelines.set(device, (m = new Map()));
  const hit = m.get(source);
  if (hit !== undefined) {
    record.cacheHit();
    return hit;
  }
  record.compiled();
  const module = device.createShaderModule({ code: source, label });
  const p = settle(ctx, device.createComputePipelineAsync({ layout: 'auto', compute: { module, entryPoint: 'main' } }));
  m.set(source, p);
  p.catch(() => m.delete(source));
  return p;
}

/** Workgroups of an elementwise kernel over `len` values. */
const groupsFor = (len: number): number => Math.max(1, Math.min(MAX_GROUPS, Math.ceil(len / WG)));

/**
 * Vectors of one shape [n, cols] on one device, with the kernels that update them. Every buffer
 * is counted in stats() and destroyed by `free` or `dispose`. Work is submitted in order on the
 * device's queue; only `dots` and `toHost` wait for it (raced with the device's loss: a lost
 * device rejects them with its typed error).
 */
export class GpuVectors {
  /** Bytes read back from the device so far (dot partial sums, `toHost`, and what `readback` callers add). */
  readBytes = 0;
  private readonly live = new Set<GPUBuffer>();
  private readonly bytes: number;
  private readonly own: GPUBuffer[] = [];
  private ownBytes = 0;
  private readonly params: GPUBuffer;
  private readonly partials: GPUBuffer;
  private readonly staging: GPUBuffer;
  /** Error scopes of submissions not yet checked (checked at the next wait). */
  private scopes: Promise<GPUError | null>[] = [];
  private disposed = false;

  private constructor(
    readonly ctx: GpuContext,
    readonly n: number,
    readonly cols: number,
    private readonly pipes: Readonly<Record<string, GPUComputePipeline>>,
  ) {
    this.bytes = Math.max(4, n * cols * 4);
    const limit = Math.min(ctx.device.limits.maxStorageBufferBindingSize, ctx.device.limits.maxBufferSize);
    if (this.bytes > limit) throw new BackendError(`WebGPU: a resident vector block [${n}, ${cols}] needs ${this.bytes} bytes, more than one storage binding (${limit})`);
    this.params = this.make(SLOT * SLOTS, USAGE.STORAGE | USAGE.COPY_DST, 'vector params');
    const partialBytes = SLOTS * cols * DOT_GROUPS * 4;
    this.partials = this.make(partialBytes, USAGE.STORAGE | USAGE.COPY_SRC, 'dot partials');
    this.staging = this.make(Math.max(partialBytes, 8), USAGE.MAP_READ | USAGE.COPY_DST, 'dot readback');
  }

  /** Vectors [n, cols] on the context's device (compiles the kernels on first use per device). */
  static async create(ctx: GpuContext, n: number, cols: number): Promise<GpuVectors> {
    const names = Object.keys(VECTOR_WGSL);
    const list = await Promise.all(names.map((k) => smallPipeline(ctx, VECTOR_WGSL[k]!, `vector ${k}`)));
    return new GpuVectors(ctx, n, cols, Object.fromEntries(names.map((k, i) => [k, list[i]!])));
  }

  private make(size: number, usage: number, label: string): GPUBuffer {
    const b = this.ctx.device.createBuffer({ size, usage, label });
    this.own.push(b);
    this.ownBytes += size;
    record.alloc(size);
    return b;
  }

  /** A new block of zeros. */
  zeros(): GpuVector {
    if (this.disposed) throw new BackendError('WebGPU: resident vectors used after dispose');
    const buffer = this.ctx.device.createBuffer({ size: this.bytes, usage: USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST, label: 'vector' });
    this.live.add(buffer);
    record.alloc(this.bytes);
    return { buffer };
  }

  /** A new block holding `h` (rounded to float32). */
  fromHost(h: Float64Array | Float32Array): GpuVector {
    if (h.length !== this.n * this.cols) throw new BackendError(`WebGPU: ${h.length} values for a vector block [${this.n}, ${this.cols}]`);
    const v = this.zeros();
    this.write(v, h);
    return v;
  }

  /** Overwrites a block with `h` (rounded to float32). */
  write(v: GpuVector, h: Float64Array | Float32Array): void {
    const f = h instanceof Float32Array ? h : Float32Array.from(h);
    if (f.length > 0) this.ctx.device.queue.writeBuffer(v.buffer, 0, f.buffer, f.byteOffset, f.byteLength);
  }

  /** The block's values, widened to float64. */
  async toHost(v: GpuVector): Promise<Float64Array> {
    const out = await this.readback([[v.buffer, 0, this.n * this.cols * 4]]);
    return Float64Array.from(out[0]!);
  }

  free(v: GpuVector): void {
    if (this.live.delete(v.buffer)) {
      v.buffer.destroy();
      record.free(this.bytes);
    }
  }

  copy(src: GpuVector, dst: GpuVector): void {
    this.submit((enc) => enc.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, this.n * this.cols * 4));
  }

  /** y += a[c] x, column by column. */
  axpy(y: GpuVector, a: Float64Array, x: GpuVector): void {
    this.elementwise('axpy', a, x, y);
  }

  /** y = x + b[c] y, column by column. */
  xpby(x: GpuVector, b: Float64Array, y: GpuVector): void {
    this.elementwise('xpby', b, x, y);
  }

  private elementwise(kernel: 'axpy' | 'xpby', s: Float64Array, x: GpuVector, y: GpuVector): void {
    const len = this.n * this.cols;
    if (len === 0) return;
    const q = new Uint32Array(2 + this.cols);
    q[0] = len;
    q[1] = this.cols;
    new Float32Array(q.buffer, 8).set(s);
    this.ctx.device.queue.writeBuffer(this.params, 0, q);
    const pipe = this.pipes[kernel]!;
    const group = this.ctx.device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [this.paramBinding(0, q.byteLength), { binding: 1, resource: { buffer: x.buffer } }, { binding: 2, resource: { buffer: y.buffer } }],
    });
    this.submit((enc) => this.dispatch(enc, pipe, group, groupsFor(len)));
  }

  /** Dot products per column of each pair, in float64 (partial sums of float32 products read back and added on the host). */
  async dots(pairs: readonly (readonly [GpuVector, GpuVector])[]): Promise<Float64Array[]> {
    if (pairs.length > SLOTS) throw new BackendError(`internal: at most ${SLOTS} dot products per readback`);
    const { n, cols } = this;
    if (n === 0 || cols === 0) return pairs.map(() => new Float64Array(cols));
    const G = Math.min(DOT_GROUPS, Math.ceil(n / WG));
    const q = new Uint32Array((SLOT / 4) * pairs.length);
    pairs.forEach((_, s) => q.set([n, cols, G, s], (s * SLOT) / 4));
    this.ctx.device.queue.writeBuffer(this.params, 0, q);
    const pipe = this.pipes.dot!;
    const groups = pairs.map(([a, b], s) =>
      this.ctx.device.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: [
          this.paramBinding(s * SLOT, 16),
          { binding: 1, resource: { buffer: a.buffer } },
          { binding: 2, resource: { buffer: b.buffer } },
          { binding: 3, resource: { buffer: this.partials } },
        ],
      }),
    );
    this.submit((enc) => groups.forEach((g) => this.dispatch(enc, pipe, g, [G, cols])));
    const [parts] = await this.readback([[this.partials, 0, pairs.length * cols * G * 4]]);
    return pairs.map((_, s) => {
      const out = new Float64Array(cols);
      for (let c = 0; c < cols; c++) for (let g = 0; g < G; g++) out[c]! += parts![(s * cols + c) * G + g]!;
      return out;
    });
  }

  /** The params buffer bound from `offset` (a slot of the last write). */
  paramBinding(offset: number, size: number): GPUBindGroupEntry {
    return { binding: 0, resource: { buffer: this.params, offset, size: Math.max(size, 16) } };
  }

  /** Records one dispatch of a small kernel. */
  dispatch(enc: GPUCommandEncoder, pipe: GPUComputePipeline, group: GPUBindGroup, groups: number | readonly [number, number]): void {
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, group);
    if (typeof groups === 'number') pass.dispatchWorkgroups(groups);
    else pass.dispatchWorkgroups(groups[0], groups[1]);
    pass.end();
    record.dispatch();
  }

  /** Encodes and submits work, its validation and memory errors checked at the next wait. */
  submit(encode: (enc: GPUCommandEncoder) => void): void {
    const { device } = this.ctx;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    try {
      const enc = device.createCommandEncoder();
      encode(enc);
      device.queue.submit([enc.finish()]);
    } finally {
      for (let k = 0; k < 2; k++) this.scopes.push(device.popErrorScope().catch(() => null));
    }
  }

  /** Waits for the work submitted so far (raced with the device's loss), failing on its errors. */
  async wait(extra?: Promise<unknown>): Promise<void> {
    const scopes = this.scopes;
    this.scopes = [];
    await settle(
      this.ctx,
      Promise.all([Promise.all(scopes), extra ?? this.ctx.device.queue.onSubmittedWorkDone()]).then(([errs]) => {
        const e = errs.find((x) => x !== null);
        if (e !== undefined && e !== null) throw new BackendError(`WebGPU: a resident solve's kernel failed: ${e.message}`);
      }),
    );
  }

  /** Copies byte ranges [buffer, offset, bytes] to the host (one mapping), counted in `readBytes`. */
  async readback(ranges: readonly (readonly [GPUBuffer, number, number])[]): Promise<Float32Array[]> {
    const total = ranges.reduce((s, [, , b]) => s + b, 0);
    const mapBytes = Math.max(8, Math.ceil(total / 8) * 8);
    const small = mapBytes <= this.staging.size;
    const staging = small ? this.staging : this.ctx.device.createBuffer({ size: mapBytes, usage: USAGE.MAP_READ | USAGE.COPY_DST, label: 'readback' });
    if (!small) record.alloc(mapBytes);
    try {
      let at = 0;
      this.submit((enc) => {
        for (const [buf, off, bytes] of ranges) {
          if (bytes > 0) enc.copyBufferToBuffer(buf, off, staging, at, bytes);
          at += bytes;
        }
      });
      await this.wait(staging.mapAsync(USAGE.MAP_READ, 0, mapBytes));
      this.readBytes += total;
      const mapped = staging.getMappedRange(0, mapBytes);
      at = 0;
      const out = ranges.map(([, , bytes]) => {
        const v = new Float32Array(mapped.slice(at, at + bytes));
        at += bytes;
        return v;
      });
      staging.unmap();
      return out;
    } finally {
      if (!small) {
        staging.destroy();
        record.free(mapBytes);
      }
    }
  }

  /** Frees every vector and the kernels' buffers. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    for (const b of this.live) b.destroy();
    record.free(this.live.size * this.bytes);
    this.live.clear();
    for (const b of this.own) b.destroy();
    record.free(this.ownBytes);
  }
}
