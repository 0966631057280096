/// <reference types="@webgpu/types" />
import { BackendError } from '../errors.js';
import { record } from '../stats.js';
import { settle, USAGE } from './encode.js';
import { delayUnless } from './pace.js';
import type { GpuContext } from './device.js';

/**
 * Blocks of vectors resident on the device (issue 19: conjugate gradient without moving its
 * vectors): float32 storage buffers [n, cols] row-major, updated by small kernels with one
 * scalar per column (axpy, xpby), and dot products per column: partial sums (DOT_GROUPS per
 * column, no workgroup barrier) added by a second small pass, so one float per column and pair
 * is read back. Sizes and scalars travel in small storage buffers, so nothing recompiles when n
 * or cols change.
 */

/** A block of `cols` vectors of length n on the device. */
export interface GpuVector {
  readonly buffer: GPUBuffer;
  /** The rounding errors `accumulate` kept (the value is buffer + lo), made by its first call. */
  lo?: GPUBuffer;
}

/** Invocations per workgroup of the vector kernels. */
const WG = 256;
/** Most partial sums of a dot product per column (one per invocation), added by the `sum` pass. */
export const DOT_GROUPS = 256;
/** Invocations per workgroup of the dot product. */
const DOT_WG = 64;
/** Fewest rows per partial sum. */
const DOT_MIN_ROWS = 64;
/** Most workgroups of an elementwise kernel (grid-stride loops cover the rest). */
const MAX_GROUPS = 4096;
/** Bytes between parameter blocks of one submission (minStorageBufferOffsetAlignment is at most 256). */
const SLOT = 256;
/** Parameter blocks per submission, so dots of at most this many pairs go in one readback. */
const SLOTS = 8;
/** Most columns of a resident block: an elementwise kernel's sizes and scalars fit one parameter block. */
export const MAX_COLS = SLOT / 4 - 3;
/** Parameter blocks of the elementwise kernels recorded before one submission (more: it is submitted). */
const RING_SLOTS = 32;

/** The bits of 1.0f: kernels multiply by it so that the compiler (which may reassociate floats) keeps compensation terms. */
export const ONE = 0x3f800000;

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
  // Y += a[c] X with Y's rounding errors added to YL (TwoSum), Q = [len, cols, 1.0 bits, a...]
  axpyc: `${PARAMS}
@group(0) @binding(1) var<storage, read> X: array<f32>;
@group(0) @binding(2) var<storage, read_write> Y: array<f32>;
@group(0) @binding(3) var<storage, read_write> YL: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let len = Q[0]; let cols = Q[1]; let one = bitcast<f32>(Q[2]);
  for (var k = g.x; k < len; k += nw.x * ${WG}u) {
    let p = bitcast<f32>(Q[3u + k % cols]) * X[k];
    let s = Y[k];
    let t = (s + p) * one;
    let bp = (t - s) * one;
    YL[k] = YL[k] + ((s - (t - bp)) + (p - bp));
    Y[k] = t;
  }
}`,
  // OUT[(slot cols + c) G + g] = sum over rows i = g (mod G) of A[i, c] B[i, c]; invocation (g, c), no barrier
  // (barriers are costly on a CPU driver); Q = [n, cols, G, slot, 1.0 bits].
  dot: `${PARAMS}
@group(0) @binding(1) var<storage, read> A: array<f32>;
@group(0) @binding(2) var<storage, read> B: array<f32>;
@group(0) @binding(3) var<storage, read_write> OUT: array<f32>;
@compute @workgroup_size(${DOT_WG}) fn main(@builtin(global_invocation_id) id: vec3u) {
  let n = Q[0]; let cols = Q[1]; let G = Q[2]; let g = id.x; let c = id.y;
  if (g >= G) { return; }
  // Compensated sum per invocation; one = 1.0 from Q, so the compiler cannot simplify the compensation away.
  let one = bitcast<f32>(Q[4]);
  var s = 0.0; var e = 0.0;
  for (var i = g; i < n; i += G) {
    let y = A[i * cols + c] * B[i * cols + c] - e;
    let t = (s + y) * one;
    e = ((t - s) * one) - y;
    s = t;
  }
  OUT[(Q[3] * cols + c) * G + g] = s;
}`,
  // OUT[o] = sum over g < G of IN[g sg + o so], o < count (compensated); Q = [count, G, sg, so, 1.0 bits].
  sum: `${PARAMS}
@group(0) @binding(1) var<storage, read> IN: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;
@compute @workgroup_size(${DOT_WG}) fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let count = Q[0]; let G = Q[1]; let sg = Q[2]; let so = Q[3]; let one = bitcast<f32>(Q[4]);
  for (var o = id.x; o < count; o += nw.x * ${DOT_WG}u) {
    var s = 0.0; var e = 0.0;
    for (var g = 0u; g < G; g++) {
      let y = IN[g * sg + o * so] - e;
      let t = (s + y) * one;
      e = ((t - s) * one) - y;
      s = t;
    }
    OUT[o] = s;
  }
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

/** Recorded work expected to take long: how long to sleep before polling, where its timestamps go, whom to tell its time. */
interface Expected {
  readonly sleep: number;
  /** Two resolved u64 timestamps (begin, end of its passes), read back with the next readback; absent without timestamp queries. */
  readonly timestamps?: GPUBuffer;
  readonly observe: (ms: number, deviceMs: number | undefined) => void;
}

/** Workgroups of an elementwise kernel over `len` values. */
const groupsFor = (len: number): number => Math.max(1, Math.min(MAX_GROUPS, Math.ceil(len / WG)));

/**
 * Vectors of one shape [n, cols] on one device, with the kernels that update them. Every buffer
 * is counted in stats() and destroyed by `free` or `dispose`. Elementwise updates, copies and
 * what callers `record` go into one command buffer (each with its own parameter block), submitted
 * at the next readback: one submission and one wait per `dots`, raced with the device's loss (a
 * lost device rejects with its typed error).
 */
export class GpuVectors {
  /** Bytes read back from the device so far (dot partial sums, `toHost`, and what `readback` callers add). */
  readBytes = 0;
  private readonly live = new Set<GPUBuffer>();
  private readonly bytes: number;
  private readonly own: GPUBuffer[] = [];
  private ownBytes = 0;
  private readonly params: GPUBuffer;
  /** Parameter blocks of recorded elementwise kernels, and the next free one. */
  private readonly ring: GPUBuffer;
  private ringAt = 0;
  /** Work recorded and not yet submitted. */
  private pending: GPUCommandEncoder | undefined;
  /** Recorded work expected to take long (a bound reduction): sleep through it before polling (pace.ts), then report the time. */
  private expected: Expected | undefined;
  private readonly partials: GPUBuffer;
  private readonly sums: GPUBuffer;
  private staging: GPUBuffer;
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
    if (cols > MAX_COLS) throw new BackendError(`WebGPU: a resident vector block of ${cols} columns (at most ${MAX_COLS})`);
    this.params = this.make(SLOT * SLOTS, USAGE.STORAGE | USAGE.COPY_DST, 'vector params');
    this.ring = this.make(SLOT * RING_SLOTS, USAGE.STORAGE | USAGE.COPY_DST, 'update params');
    this.partials = this.make(SLOTS * cols * DOT_GROUPS * 4, USAGE.STORAGE, 'dot partials');
    this.sums = this.make(Math.max(16, SLOTS * cols * 4), USAGE.STORAGE | USAGE.COPY_SRC, 'dot sums');
    this.staging = this.make(SLOTS * cols * 4 + 32, USAGE.MAP_READ | USAGE.COPY_DST, 'dot readback'); // + timestamps
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

  /** The block's values, widened to float64 (plus what `accumulate` kept). */
  async toHost(v: GpuVector): Promise<Float64Array> {
    const bytes = this.n * this.cols * 4;
    const [hi, lo] = await this.readback(v.lo === undefined ? [[v.buffer, 0, bytes]] : [[v.buffer, 0, bytes], [v.lo, 0, bytes]]);
    const out = Float64Array.from(hi!);
    if (lo !== undefined) for (let k = 0; k < out.length; k++) out[k]! += lo[k]!;
    return out;
  }

  free(v: GpuVector): void {
    for (const b of [v.buffer, v.lo]) {
      if (b !== undefined && this.live.delete(b)) {
        b.destroy();
        record.free(this.bytes);
      }
    }
  }

  /** dst = src (the float32 values: what `accumulate` kept in src stays behind). */
  copy(src: GpuVector, dst: GpuVector): void {
    this.record((enc) => enc.copyBufferToBuffer(src.buffer, 0, dst.buffer, 0, this.n * this.cols * 4));
  }

  /** y += a[c] x, column by column. */
  axpy(y: GpuVector, a: Float64Array, x: GpuVector): void {
    this.elementwise('axpy', a, x, y);
  }

  /**
   * y += a[c] x keeping y's rounding errors in a second buffer (TwoSum), so that y sums many
   * updates to about float64's precision: the solution of a resident CG (host CG keeps it in float64).
   */
  accumulate(y: GpuVector, a: Float64Array, x: GpuVector): void {
    y.lo ??= this.zeros().buffer;
    this.elementwise('axpyc', a, x, y);
  }

  /** y = x + b[c] y, column by column. */
  xpby(x: GpuVector, b: Float64Array, y: GpuVector): void {
    this.elementwise('xpby', b, x, y);
  }

  private elementwise(kernel: 'axpy' | 'xpby' | 'axpyc', s: Float64Array, x: GpuVector, y: GpuVector): void {
    const len = this.n * this.cols;
    if (len === 0) return;
    // axpyc reads 1.0 before its scalars (see ONE).
    const head = kernel === 'axpyc' ? 3 : 2;
    const q = new Uint32Array(head + this.cols);
    q[0] = len;
    q[1] = this.cols;
    if (kernel === 'axpyc') q[2] = ONE;
    new Float32Array(q.buffer, head * 4).set(s);
    // A block of its own until the recorded work is submitted (writes to the queue precede it).
    if (this.ringAt === RING_SLOTS) this.flush();
    const at = this.ringAt++ * SLOT;
    this.ctx.device.queue.writeBuffer(this.ring, at, q);
    const pipe = this.pipes[kernel]!;
    const group = this.ctx.device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: this.ring, offset: at, size: Math.max(16, q.byteLength) } },
        { binding: 1, resource: { buffer: x.buffer } },
        { binding: 2, resource: { buffer: y.buffer } },
        ...(kernel === 'axpyc' ? [{ binding: 3, resource: { buffer: y.lo! } }] : []),
      ],
    });
    this.record((enc) => this.dispatch(enc, pipe, group, groupsFor(len)));
  }

  /** Dot products per column of each pair: compensated partial sums of float32 products, added on the device; one float per column and pair read back. */
  async dots(pairs: readonly (readonly [GpuVector, GpuVector])[]): Promise<Float64Array[]> {
    if (pairs.length > SLOTS - 1) throw new BackendError(`internal: at most ${SLOTS - 1} dot products per readback`);
    const { n, cols } = this;
    if (n === 0 || cols === 0) return pairs.map(() => new Float64Array(cols));
    const G = Math.max(1, Math.min(DOT_GROUPS, Math.floor(n / DOT_MIN_ROWS)));
    const q = new Uint32Array((SLOT / 4) * (pairs.length + 1));
    pairs.forEach((_, s) => q.set([n, cols, G, s, ONE], (s * SLOT) / 4));
    const sumSlot = pairs.length * SLOT;
    q.set([pairs.length * cols, G, 1, G, ONE], sumSlot / 4);
    this.ctx.device.queue.writeBuffer(this.params, 0, q);
    const pipe = this.pipes.dot!;
    const groups = pairs.map(([a, b], s) =>
      this.ctx.device.createBindGroup({
        layout: pipe.getBindGroupLayout(0),
        entries: [
          this.paramBinding(s * SLOT, 20),
          { binding: 1, resource: { buffer: a.buffer } },
          { binding: 2, resource: { buffer: b.buffer } },
          { binding: 3, resource: { buffer: this.partials } },
        ],
      }),
    );
    const sum = this.sumGroup(this.params, sumSlot, this.partials, this.sums);
    // Recorded: the readback below submits it (nothing rewrites `params` before).
    this.record((enc) => {
      groups.forEach((g) => this.dispatch(enc, pipe, g, [Math.ceil(G / DOT_WG), cols]));
      this.dispatchSum(enc, sum, pairs.length * cols);
    });
    const [sums] = await this.readback([[this.sums, 0, pairs.length * cols * 4]]);
    return pairs.map((_, s) => Float64Array.from(sums!.subarray(s * cols, (s + 1) * cols)));
  }

  /**
   * A bind group of the `sum` kernel: OUT[o] = sum over g < G of IN[g sg + o so] for o < count,
   * its Q = [count, G, sg, so, ONE] at `offset` of `params` (written by the caller).
   */
  sumGroup(params: GPUBuffer, offset: number, input: GPUBuffer, output: GPUBuffer): GPUBindGroup {
    return this.ctx.device.createBindGroup({
      layout: this.pipes.sum!.getBindGroupLayout(0),
      entries: [
        { binding: 0, resource: { buffer: params, offset, size: 20 } },
        { binding: 1, resource: { buffer: input } },
        { binding: 2, resource: { buffer: output } },
      ],
    });
  }

  /** Records the `sum` kernel over `count` outputs. */
  dispatchSum(enc: GPUCommandEncoder, group: GPUBindGroup, count: number): void {
    this.dispatch(enc, this.pipes.sum!, group, Math.max(1, Math.min(MAX_GROUPS, Math.ceil(count / DOT_WG))));
  }

  /** The params buffer bound from `offset` (a slot of the last write). */
  paramBinding(offset: number, size: number): GPUBindGroupEntry {
    return { binding: 0, resource: { buffer: this.params, offset, size: Math.max(size, 16) } };
  }

  /** Records one dispatch of a small kernel. */
  dispatch(enc: GPUCommandEncoder, pipe: GPUComputePipeline, group: GPUBindGroup, groups: number | readonly [number, number] | readonly [number, number, number]): void {
    const pass = enc.beginComputePass();
    pass.setPipeline(pipe);
    pass.setBindGroup(0, group);
    if (typeof groups === 'number') pass.dispatchWorkgroups(groups);
    else pass.dispatchWorkgroups(groups[0], groups[1], groups[2] ?? 1);
    pass.end();
    record.dispatch();
  }

  /**
   * Records work into the pending command buffer (submitted with the next `submit`, `flush` or
   * readback). Parameters it reads must not be rewritten before then: the elementwise kernels
   * take blocks of their own; a caller with one parameter buffer submits instead.
   */
  record(encode: (enc: GPUCommandEncoder) => void): void {
    if (this.disposed) throw new BackendError('WebGPU: resident vectors used after dispose');
    encode((this.pending ??= this.ctx.device.createCommandEncoder()));
  }

  /** Records work and submits it with everything recorded before. */
  submit(encode: (enc: GPUCommandEncoder) => void): void {
    this.record(encode);
    this.flush();
  }

  /** Submits the recorded work, its validation and memory errors checked at the next wait. */
  flush(): void {
    const enc = this.pending;
    if (enc === undefined) return;
    this.pending = undefined;
    this.ringAt = 0;
    const { device } = this.ctx;
    device.pushErrorScope('out-of-memory');
    device.pushErrorScope('validation');
    try {
      device.queue.submit([enc.finish()]);
    } finally {
      for (let k = 0; k < 2; k++) this.scopes.push(device.popErrorScope().catch(() => null));
    }
  }

  /**
   * Says that the work recorded so far takes about `sleep` ms more than the rest: the next
   * readback sleeps that long before polling, then reports the wall time and the device time
   * between the two `timestamps` (read back with it: 16 bytes) to `observe`.
   */
  expect(sleep: number, observe: (ms: number, deviceMs: number | undefined) => void, timestamps?: GPUBuffer): void {
    this.expected = { sleep, observe, timestamps };
  }

  /** Submits the recorded work and waits for it (raced with the device's loss), failing on its errors. */
  async wait(extra?: Promise<unknown>): Promise<void> {
    this.flush();
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

  /** Makes the reused readback buffer at least `bytes` long (larger readbacks take a buffer of their own). */
  reserveReadback(bytes: number): void {
    const size = Math.max(8, Math.ceil(bytes / 8) * 8);
    const old = this.staging;
    if (size <= old.size) return;
    this.staging = this.make(size, USAGE.MAP_READ | USAGE.COPY_DST, 'readback');
    this.own.splice(this.own.indexOf(old), 1);
    this.ownBytes -= old.size;
    record.free(old.size);
    old.destroy();
  }

  /** Copies byte ranges [buffer, offset, bytes] to the host (one mapping), counted in `readBytes`. */
  async readback(asked: readonly (readonly [GPUBuffer, number, number])[]): Promise<Float32Array[]> {
    const expected = this.expected;
    this.expected = undefined;
    const ranges = expected?.timestamps === undefined ? asked : [...asked, [expected.timestamps, 0, 16] as const];
    const total = ranges.reduce((s, [, , b]) => s + b, 0);
    const mapBytes = Math.max(8, Math.ceil(total / 8) * 8);
    const small = mapBytes <= this.staging.size;
    const staging = small ? this.staging : this.ctx.device.createBuffer({ size: mapBytes, usage: USAGE.MAP_READ | USAGE.COPY_DST, label: 'readback' });
    if (!small) record.alloc(mapBytes);
    try {
      let at = 0;
      // Timestamps go at a multiple of 8 bytes.
      const offsets = ranges.map(([, , bytes], k) => {
        if (k === asked.length) at = Math.ceil(at / 8) * 8;
        const o = at;
        at += bytes;
        return o;
      });
      this.record((enc) => ranges.forEach(([buf, off, bytes], k) => bytes > 0 && enc.copyBufferToBuffer(buf, off, staging, offsets[k]!, bytes)));
      this.flush(); // the copies are submitted before the map is requested
      const t0 = performance.now();
      // Sleep through most of a long reduction before asking for the map: a pending WebGPU promise
      // makes dawn.node poll with setImmediate, which takes cores from a CPU driver (pace.ts). A loss ends the nap.
      if (expected !== undefined && expected.sleep > 0) await delayUnless(expected.sleep, this.ctx.lost);
      await this.wait(staging.mapAsync(USAGE.MAP_READ, 0, mapBytes));
      this.readBytes += total;
      const mapped = staging.getMappedRange(0, mapBytes);
      const out = asked.map(([, , bytes], k) => new Float32Array(mapped.slice(offsets[k]!, offsets[k]! + bytes)));
      let deviceMs: number | undefined;
      if (expected?.timestamps !== undefined) {
        const [begin, end] = new BigUint64Array(mapped.slice(offsets[asked.length]!, offsets[asked.length]! + 16));
        deviceMs = end! > begin! ? Number(end! - begin!) / 1e6 : undefined;
      }
      staging.unmap();
      expected?.observe(performance.now() - t0, deviceMs);
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
