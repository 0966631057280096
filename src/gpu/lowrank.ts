/// <reference types="@webgpu/types" />
import { BackendError } from '../errors.js';
import { record } from '../stats.js';
import { USAGE } from './encode.js';
import { smallPipeline, type GpuVector, type GpuVectors } from './vectors.js';

/**
 * A low-rank factor F [n, k] on the device, for the Nyström preconditioner of a resident solve:
 * `project(r)` = F^T r (k x cols, read back: O(k cols) floats) and `subtract(r, t, alpha, z)`:
 * z = (r - F t) / alpha. F is stored transposed (k rows of n) so both kernels read it in runs of
 * consecutive rows; in blocks of landmarks when it exceeds one storage binding.
 */

const WG = 256;
const MAX_GROUPS = 4096;

const PARAMS = '@group(0) @binding(0) var<storage, read> Q: array<u32>;';

/** T[c k + j0 + j] = sum_i FT[j n + i] R[i cols + c]; Q = [n, cols, k, j0]; workgroups (landmarks of the block, cols). */
const PROJECT = `${PARAMS}
@group(0) @binding(1) var<storage, read> FT: array<f32>;
@group(0) @binding(2) var<storage, read> R: array<f32>;
@group(0) @binding(3) var<storage, read_write> T: array<f32>;
var<workgroup> part: array<f32, ${WG}>;
@compute @workgroup_size(${WG}) fn main(@builtin(workgroup_id) w: vec3u, @builtin(local_invocation_index) l: u32) {
  let n = Q[0]; let cols = Q[1]; let k = Q[2]; let j = w.x; let c = w.y;
  var s = 0.0; var e = 0.0;
  for (var i = l; i < n; i += ${WG}u) {
    let y = FT[j * n + i] * R[i * cols + c] - e;
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
  if (l == 0u) { T[c * k + Q[3] + j] = part[0]; }
}`;

/**
 * Z = (first ? R : Z) - sum_{j < kb} FT[j n + i] T[c k + j0 + j], then times 1/alpha on the last
 * block; Q = [n, cols, k, j0, kb, first, last, 1/alpha bits].
 */
const SUBTRACT = `${PARAMS}
@group(0) @binding(1) var<storage, read> FT: array<f32>;
@group(0) @binding(2) var<storage, read> R: array<f32>;
@group(0) @binding(3) var<storage, read> T: array<f32>;
@group(0) @binding(4) var<storage, read_write> Z: array<f32>;
@compute @workgroup_size(${WG}) fn main(@builtin(global_invocation_id) g: vec3u, @builtin(num_workgroups) nw: vec3u) {
  let n = Q[0]; let cols = Q[1]; let k = Q[2]; let j0 = Q[3]; let kb = Q[4];
  for (var e = g.x; e < n * cols; e += nw.x * ${WG}u) {
    let i = e / cols; let c = e % cols;
    var s = 0.0;
    for (var j = 0u; j < kb; j++) { s = s + FT[j * n + i] * T[c * k + j0 + j]; }
    var z = select(Z[e], R[e], Q[5] == 1u) - s;
    if (Q[6] == 1u) { z = z * bitcast<f32>(Q[7]); }
    Z[e] = z;
  }
}`;

export class GpuLowRank {
  private readonly blocks: { readonly buffer: GPUBuffer; readonly j0: number; readonly kb: number }[] = [];
  private readonly own: GPUBuffer[] = [];
  private bytes = 0;
  private readonly t: GPUBuffer;
  private readonly params: GPUBuffer;

  private constructor(
    private readonly vec: GpuVectors,
    readonly k: number,
    private readonly project: GPUComputePipeline,
    private readonly subtractPipe: GPUComputePipeline,
  ) {
    const { cols } = vec;
    this.t = this.make(Math.max(16, k * cols * 4), USAGE.STORAGE | USAGE.COPY_SRC | USAGE.COPY_DST, 'F^T r');
    this.params = this.make(256 * 64, USAGE.STORAGE | USAGE.COPY_DST, 'low-rank params');
  }

  /**
   * Uploads F ([n, k] row-major float32, n = the vectors' n) transposed, in blocks of landmarks
   * that each fit one storage binding (or `bindBytes`, less: tests use it to exercise the blocks).
   */
  static async create(vec: GpuVectors, F: Float32Array, k: number, bindBytes = Infinity): Promise<GpuLowRank> {
    const { ctx, n } = vec;
    if (F.length !== n * k) throw new BackendError(`internal: a factor of ${F.length} values for [${n}, ${k}]`);
    const [project, subtract] = await Promise.all([smallPipeline(ctx, PROJECT, 'F^T r'), smallPipeline(ctx, SUBTRACT, '(r - F t) / alpha')]);
    const lr = new GpuLowRank(vec, k, project, subtract);
    try {
      const limits = ctx.device.limits;
      const perBlock = Math.max(1, Math.floor(Math.min(limits.maxStorageBufferBindingSize, limits.maxBufferSize, bindBytes) / Math.max(4, n * 4)));
      if (Math.ceil(k / perBlock) > 64) throw new BackendError(`WebGPU: a Nyström factor [${n}, ${k}] needs more than 64 storage bindings`);
      for (let j0 = 0; j0 < k; j0 += perBlock) {
        const kb = Math.min(perBlock, k - j0);
        const ft = new Float32Array(kb * n);
        for (let i = 0; i < n; i++) for (let j = 0; j < kb; j++) ft[j * n + i] = F[i * k + j0 + j]!;
        const buffer = lr.make(Math.max(4, ft.byteLength), USAGE.STORAGE | USAGE.COPY_DST, `F^T block ${j0}`);
        if (ft.length > 0) ctx.device.queue.writeBuffer(buffer, 0, ft);
        lr.blocks.push({ buffer, j0, kb });
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
      entries: [{ binding: 0, resource: { buffer: this.params, offset: slot * 256, size: 32 } }, ...buffers.map((buffer, b) => ({ binding: b + 1, resource: { buffer } }))],
    });
  }

  /** F^T r, [cols, k] (t[c k + j]), in float64: the only readback of a preconditioner application. */
  async projectOnto(r: GpuVector): Promise<Float64Array> {
    const { n, cols } = this.vec;
    const { k } = this;
    if (k * cols === 0) return new Float64Array(0);
    const q = new Uint32Array(64 * this.blocks.length);
    this.blocks.forEach((b, s) => q.set([n, cols, k, b.j0], s * 64));
    this.vec.ctx.device.queue.writeBuffer(this.params, 0, q);
    const groups = this.blocks.map((b, s) => [this.group(this.project, s, [b.buffer, r.buffer, this.t]), b.kb] as const);
    this.vec.submit((enc) => groups.forEach(([g, kb]) => this.vec.dispatch(enc, this.project, g, [kb, cols])));
    const [t] = await this.vec.readback([[this.t, 0, k * cols * 4]]);
    return Float64Array.from(t!);
  }

  /** z = (r - F t) / alpha, with t [cols, k] from the host (uploaded: O(k cols) floats). */
  subtract(r: GpuVector, t: Float64Array, alpha: number, z: GpuVector): void {
    const { n, cols } = this.vec;
    const { k } = this;
    if (t.length > 0) this.vec.ctx.device.queue.writeBuffer(this.t, 0, Float32Array.from(t));
    const q = new Uint32Array(64 * this.blocks.length);
    const inv = new Float32Array([1 / alpha]);
    const invBits = new Uint32Array(inv.buffer)[0]!;
    const last = this.blocks.length - 1;
    this.blocks.forEach((b, s) => q.set([n, cols, k, b.j0, b.kb, s === 0 ? 1 : 0, s === last ? 1 : 0, invBits], s * 64));
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
