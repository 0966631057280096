/// <reference types="@webgpu/types" />
import { BackendError } from '../errors.js';
import { record } from '../stats.js';
import { USAGE } from './encode.js';
import { ONE, smallPipeline, type GpuVector, type GpuVectors } from './vectors.js';

/**
 * A low-rank factor F [n, k] on the device, for the Nyström preconditioner of a resident solve:
 * `projectOnto(r)` = F^T r (partial sums over at most 64 chunks of rows, added on the device:
 * k x cols floats read back) and `subtract(r, t, alpha, z)`: z = (r - F t) / alpha. F stays row-major, in
 * blocks of landmarks when it exceeds one storage binding. Neither kernel uses workgroup memory
 * or barriers (costly on a CPU driver: a first version with a barrier tree was 1.2x slower than the host).
 */

const WG = 64;
const MAX_GROUPS = 4096;
/** Rows of F per invocation of F^T r at least, and the invocations it aims for (a CPU driver's lanes, a GPU's few waves). */
const MIN_CHUNK_ROWS = 256;
const TARGET_INVOCATIONS = 4096;

const PARAMS = '@group(0) @binding(0) var<storage, read> Q: array<u32>;';

/**
 * Partial F^T r of one block of landmarks, four landmarks per invocation (vec4: four
 * multiply-adds per load of r): invocation (j4, c, chunk) sums rows [chunk·rpc, +rpc) of the
 * block FB ([n, kb4] vec4s row-major, zero-padded: neighbouring invocations read neighbouring
 * floats) against column c of R, with no workgroup barrier. Each addition's rounding error goes
 * to a second float32 (TwoSum; products are rounded once), since the k x k solve that follows
 * amplifies the error of F^T r by up to the condition of alpha I + F^T F: plain float32 sums gave
 * z 1.5e-6 off the host's at n = 5000 and CG a fifth iteration where the host took 4; with
 * TwoSum, 1.4e-7 and the host's residuals to three digits.
 * Q = [n, cols, kb4, j04, k4, rpc, 1.0 bits]; T[(chunk cols + c) k4 + j04 + j4] (hi), the same + half (lo).
 */
const PROJECT = `${PARAMS}
@group(0) @binding(1) var<storage, read> FB: array<vec4f>;
@group(0) @binding(2) var<storage, read> R: array<f32>;
@group(0) @binding(3) var<storage, read_write> T: array<vec4f>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3u) {
  let n = Q[0]; let cols = Q[1]; let kb4 = Q[2]; let j = g.x; let c = g.y; let rpc = Q[5];
  if (j >= kb4) { return; }
  let i0 = g.z * rpc;
  let i1 = min(n, i0 + rpc);
  // one = 1.0 read from Q: the compiler cannot see through it, so it cannot simplify the error terms away.
  let one = bitcast<f32>(Q[6]);
  var s = vec4f(0.0); var e = vec4f(0.0);
  for (var i = i0; i < i1; i++) {
    let f = FB[i * kb4 + j];
    let r = vec4f(R[i * cols + c]);
    let p = f * r;
    let t = (s + p) * one;
    let bp = (t - s) * one;
    e = e + ((s - (t - bp)) + (p - bp));
    s = t;
  }
  let o = (g.z * cols + c) * Q[4] + Q[3] + j;
  T[o] = s;
  T[o + arrayLength(&T) / 2u] = e;
}`;

/** OUT[o] (hi) and OUT[count + o] (lo) = the double-float sum over g < G of IN[g sg + o] + IN[half + g sg + o]; Q = [count, G, sg, half, 1.0 bits]. */
const SUM2 = `${PARAMS}
@group(0) @binding(1) var<storage, read> IN: array<f32>;
@group(0) @binding(2) var<storage, read_write> OUT: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) id: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let count = Q[0]; let G = Q[1]; let sg = Q[2]; let half = Q[3]; let one = bitcast<f32>(Q[4]);
  for (var o = id.x; o < count; o += nw.x * ${WG}u) {
    var s = 0.0; var e = 0.0;
    for (var g = 0u; g < G; g++) {
      let p = IN[g * sg + o];
      let t = (s + p) * one;
      let bp = (t - s) * one;
      e = e + ((s - (t - bp)) + (p - bp)) + IN[half + g * sg + o];
      s = t;
    }
    OUT[o] = s;
    OUT[count + o] = e;
  }
}`;

/**
 * Z = (first ? R : Z) - FB t (one block of landmarks, vec4s), then times 1/alpha after the last
 * block; neighbouring invocations take neighbouring rows of one column.
 * Q = [n, cols, kb4, j04, k4, first, last, 1/alpha bits, 1.0 bits]; T [cols, k4] vec4s, hi then lo.
 */
const SUBTRACT = `${PARAMS}
@group(0) @binding(1) var<storage, read> FB: array<vec4f>;
@group(0) @binding(2) var<storage, read> R: array<f32>;
@group(0) @binding(3) var<storage, read> T: array<vec4f>;
@group(0) @binding(4) var<storage, read_write> Z: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let n = Q[0]; let cols = Q[1]; let kb4 = Q[2]; let j04 = Q[3]; let k4 = Q[4];
  for (var e = g.x; e < n * cols; e += nw.x * ${WG}u) {
    let c = e / n; let i = e % n;
    // t as a float32 pair (hi + lo: float64's digits that matter), products fused, the sum compensated.
    var s = 0.0; var e = 0.0;
    let lo = cols * k4;
    let one = bitcast<f32>(Q[8]);
    for (var j = 0u; j < kb4; j++) {
      let f = FB[i * kb4 + j];
      let h = T[c * k4 + j04 + j];
      let l = T[lo + c * k4 + j04 + j];
      let y = fma(f.x, h.x, fma(f.y, h.y, fma(f.z, h.z, fma(f.w, h.w, dot(f, l))))) - e;
      let u = (s + y) * one;
      e = ((u - s) * one) - y;
      s = u;
    }
    let o = i * cols + c;
    var z = select(Z[o], R[o], Q[5] == 1u) - s;
    if (Q[6] == 1u) { z = z * bitcast<f32>(Q[7]); }
    Z[o] = z;
  }
}`;

export class GpuLowRank {
  /** Blocks of landmarks: columns [j0, j0 + kb) of F, stored [n, kb4 vec4s] zero-padded (j0 a multiple of 4). */
  private readonly blocks: { readonly buffer: GPUBuffer; readonly j0: number; readonly kb: number; readonly kb4: number }[] = [];
  /** vec4s per row of t: ceil(k / 4). */
  private readonly k4: number;
  private readonly own: GPUBuffer[] = [];
  private bytes = 0;
  /** Partial sums of F^T r (chunks x cols x k) and the host's t (cols x k). */
  private readonly partial: GPUBuffer;
  private readonly projected: GPUBuffer;
  private readonly t: GPUBuffer;
  private readonly params: GPUBuffer;
  /** Row chunks of F^T r and rows per chunk. */
  private readonly chunks: number;
  private readonly rpc: number;

  private constructor(
    private readonly vec: GpuVectors,
    readonly k: number,
    private readonly project: GPUComputePipeline,
    private readonly subtractPipe: GPUComputePipeline,
    private readonly sum2: GPUComputePipeline,
  ) {
    const { cols, n } = vec;
    this.k4 = Math.ceil(k / 4);
    this.chunks = Math.max(1, Math.min(Math.ceil(TARGET_INVOCATIONS / Math.max(1, k * cols)), Math.floor(n / MIN_CHUNK_ROWS), 64));
    this.rpc = Math.ceil(n / this.chunks);
    // Hi and lo halves.
    this.partial = this.make(Math.max(32, 2 * this.chunks * this.k4 * cols * 16), USAGE.STORAGE, 'F^T r partials');
    this.projected = this.make(Math.max(32, 2 * this.k4 * cols * 16), USAGE.STORAGE | USAGE.COPY_SRC, 'F^T r');
    this.t = this.make(Math.max(16, 2 * this.k4 * cols * 16), USAGE.STORAGE | USAGE.COPY_DST, 't');
    this.params = this.make(256 * 64, USAGE.STORAGE | USAGE.COPY_DST, 'low-rank params');
    vec.reserveReadback(2 * this.k4 * cols * 16 + 32);
  }

  /**
   * Uploads F ([n, k] row-major float32, n = the vectors' n), in blocks of landmarks
   * that each fit one storage binding (or `bindBytes`, less: tests use it to exercise the blocks).
   */
  static async create(vec: GpuVectors, F: Float32Array, k: number, bindBytes = Infinity): Promise<GpuLowRank> {
    const { ctx, n } = vec;
    if (F.length !== n * k) throw new BackendError(`internal: a factor of ${F.length} values for [${n}, ${k}]`);
    const [project, subtract, sum2] = await Promise.all([smallPipeline(ctx, PROJECT, 'F^T r'), smallPipeline(ctx, SUBTRACT, '(r - F t) / alpha'), smallPipeline(ctx, SUM2, 'double-float sum')]);
    const lr = new GpuLowRank(vec, k, project, subtract, sum2);
    try {
      const limits = ctx.device.limits;
      const perBlock = Math.max(4, Math.floor(Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, bindBytes) / Math.max(16, n * 16)) * 4);
      if (Math.ceil(k / perBlock) > 63) throw new BackendError(`WebGPU: a Nyström factor [${n}, ${k}] needs more than 63 storage bindings`);
      for (let j0 = 0; j0 < k; j0 += perBlock) {
        const kb = Math.min(perBlock, k - j0);
        const kb4 = Math.ceil(kb / 4);
        // The block's columns of F, [n, 4 kb4] row-major, zero-padded (F itself when that is it).
        const fb = kb === k && kb4 * 4 === k ? F : new Float32Array(kb4 * 4 * n);
        if (fb !== F) for (let i = 0; i < n; i++) fb.set(F.subarray(i * k + j0, i * k + j0 + kb), i * kb4 * 4);
        const buffer = lr.make(Math.max(16, fb.byteLength), USAGE.STORAGE | USAGE.COPY_DST, `F block ${j0}`);
        if (fb.length > 0) ctx.device.queue.writeBuffer(buffer, 0, fb.buffer, fb.byteOffset, fb.byteLength);
        lr.blocks.push({ buffer, j0, kb, kb4 });
      }
    } catch (e) {
      lr.dispose();
      throw e;
    }
    return lr;
  }

  private make(size: number, usage: number, label: string): GPUBuffer {
    const b = this.vec.ctx.device.createBuffer({ size, usage, label });
    this.own.push(b);
    this.bytes += size;
    record.alloc(size);
    return b;
  }

  private group(pipe: GPUComputePipeline, slot: number, buffers: readonly GPUBuffer[]): GPUBindGroup {
    return this.vec.ctx.device.createBindGroup({
      layout: pipe.getBindGroupLayout(0),
      entries: [{ binding: 0, resource: { buffer: this.params, offset: slot * 256, size: 48 } }, ...buffers.map((buffer, b) => ({ binding: b + 1, resource: { buffer } }))],
    });
  }

  /** F^T r, [cols, k] (t[c k + j]), in float64: the only readback of a preconditioner application. */
  async projectOnto(r: GpuVector): Promise<Float64Array> {
    const { n, cols } = this.vec;
    const { k } = this;
    if (k * cols === 0) return new Float64Array(0);
    const q = new Uint32Array(64 * (this.blocks.length + 1));
    const { k4 } = this;
    this.blocks.forEach((b, s) => q.set([n, cols, b.kb4, b.j0 / 4, k4, this.rpc, ONE], s * 64));
    // Then the chunks' partial sums added on the device: [cols, 4 k4] floats come back.
    const kp = 4 * k4;
    const sumSlot = this.blocks.length;
    q.set([cols * kp, this.chunks, cols * kp, this.chunks * cols * kp, ONE], sumSlot * 64);
    this.vec.ctx.device.queue.writeBuffer(this.params, 0, q);
    const groups = this.blocks.map((b, s) => [this.group(this.project, s, [b.buffer, r.buffer, this.partial]), b.kb4] as const);
    const sum = this.group(this.sum2, sumSlot, [this.partial, this.projected]);
    this.vec.record((enc) => {
      groups.forEach(([g, kb4]) => this.vec.dispatch(enc, this.project, g, [Math.ceil(kb4 / WG), cols, this.chunks]));
      this.vec.dispatch(enc, this.sum2, sum, Math.max(1, Math.min(MAX_GROUPS, Math.ceil((cols * kp) / WG))));
    });
    const [tp] = await this.vec.readback([[this.projected, 0, 2 * cols * kp * 4]]);
    const t = new Float64Array(k * cols);
    for (let c = 0; c < cols; c++) for (let j = 0; j < k; j++) t[c * k + j] = tp![c * kp + j]! + tp![cols * kp + c * kp + j]!;
    return t;
  }

  /** z = (r - F t) / alpha, with t [cols, k] from the host (uploaded: O(k cols) floats). */
  subtract(r: GpuVector, t: Float64Array, alpha: number, z: GpuVector): void {
    const { n, cols } = this.vec;
    const { k } = this;
    const { k4 } = this;
    // t uploaded as hi + lo float32 pairs: [hi: cols x 4 k4 | lo: the same].
    const tp = new Float32Array(2 * cols * k4 * 4);
    const loAt = cols * k4 * 4;
    for (let c = 0; c < cols; c++)
      for (let j = 0; j < k; j++) {
        const v = t[c * k + j]!;
        const hi = Math.fround(v);
        tp[c * k4 * 4 + j] = hi;
        tp[loAt + c * k4 * 4 + j] = v - hi;
      }
    if (tp.length > 0) this.vec.ctx.device.queue.writeBuffer(this.t, 0, tp);
    const q = new Uint32Array(64 * this.blocks.length);
    const inv = new Float32Array([1 / alpha]);
    const invBits = new Uint32Array(inv.buffer)[0]!;
    const last = this.blocks.length - 1;
    this.blocks.forEach((b, s) => q.set([n, cols, b.kb4, b.j0 / 4, k4, s === 0 ? 1 : 0, s === last ? 1 : 0, invBits, ONE], s * 64));
    this.vec.ctx.device.queue.writeBuffer(this.params, 0, q);
    const groups = this.blocks.map((b, s) => this.group(this.subtractPipe, s, [b.buffer, r.buffer, this.t, z.buffer]));
    const g = Math.max(1, Math.min(MAX_GROUPS, Math.ceil((n * cols) / WG)));
    this.vec.submit((enc) => groups.forEach((group) => this.vec.dispatch(enc, this.subtractPipe, group, g)));
  }

  dispose(): void {
    for (const b of this.own) b.destroy();
    this.own.length = 0;
    record.free(this.bytes);
    this.bytes = 0;
  }
}
