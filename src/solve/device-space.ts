import { OptionError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import type { BoundReduction } from '../gpu/bound.js';
import type { BackendChoice } from '../scheduler/backends.js';
import { bindReduction, type Binding } from '../scheduler/bind.js';
import type { ReductionArguments } from '../scheduler/execute.js';
import type { Dtype, Tensor } from '../tensor.js';
import { GpuLowRank } from '../gpu/lowrank.js';
import { GpuVectors, MAX_COLS, type GpuVector } from '../gpu/vectors.js';
import type { CgSpace } from './cg.js';
import type { LowRankSolve } from './preconditioner.js';

/** A device space and what it measured: bytes read back, milliseconds in the operator and the preconditioner. */
export interface DeviceSpace extends CgSpace<GpuVector> {
  readonly readBytes: number;
  readonly matvecMs: number;
  readonly precondMs: number;
  dispose(): void;
}

/**
 * The CG space of a resident solve (issue 19): vectors are float32 buffers on the bound
 * reduction's device; A v = K v + alpha v is the bound reduction plus an axpy; the Nyström
 * preconditioner applies F^T r and (r - F t)/alpha on the device and solves the k x k system on
 * the host (its t read back and uploaded: O(k cols) floats). Per iteration only per-column
 * scalars and t cross to the host. Owns `bound`: `dispose` releases it with the vectors.
 */
export async function deviceSpace(bound: BoundReduction, alpha: number, lowRank?: LowRankSolve): Promise<DeviceSpace> {
  const { cols } = bound;
  let vec: GpuVectors | undefined;
  let lr: GpuLowRank | undefined;
  try {
    vec = await GpuVectors.create(bound.ctx, bound.M, cols);
    lr = lowRank === undefined ? undefined : await GpuLowRank.create(vec, lowRank.F, lowRank.k);
  } catch (e) {
    vec?.dispose();
    bound.dispose();
    throw e;
  }
  const V = vec;
  const alphas = new Float64Array(cols).fill(alpha);
  let matvecMs = 0;
  let precondMs = 0;
  let applied: number | undefined;
  const P = lr;
  return {
    cols,
    get readBytes() {
      return V.readBytes;
    },
    get matvecMs() {
      return matvecMs;
    },
    get precondMs() {
      return precondMs;
    },
    zeros: () => V.zeros(),
    fromHost: (h) => V.fromHost(h),
    toHost: (v) => V.toHost(v),
    copy: (src, dst) => V.copy(src, dst),
    axpy: (y, a, x) => V.axpy(y, a, x),
    xpby: (x, b, y) => V.xpby(x, b, y),
    accumulate: (x, a, p) => V.accumulate(x, a, p),
    dots: async (pairs) => {
      const out = await V.dots(pairs);
      // An operator application runs with the readback that follows it (its p·Ap): timed together.
      if (applied !== undefined) matvecMs += performance.now() - applied;
      applied = undefined;
      return out;
    },
    apply: async (v, out) => {
      applied = performance.now();
      bound.apply(v, out, V);
      if (alpha !== 0) V.axpy(out, alphas, v);
    },
    precond:
      P === undefined || lowRank === undefined
        ? undefined
        : async (r, z) => {
            const t0 = performance.now();
            const t = await P.projectOnto(r);
            lowRank.solve(t, cols);
            P.subtract(r, t, lowRank.alpha, z);
            precondMs += performance.now() - t0;
          },
    free: (v) => V.free(v),
    dispose: () => {
      lr?.dispose();
      V.dispose();
      bound.dispose();
    },
  };
}

/** What `residentSpace` needs of a solve: its operator (a reduction linear in variable p) and options. */
export interface ResidentRequest {
  readonly apply: Formula;
  readonly p: number;
  readonly axis: 0 | 1;
  readonly vals: readonly (Tensor | undefined)[];
  readonly n: number;
  readonly Dv: number;
  readonly alpha: number;
  readonly dtype: Dtype;
  readonly resident: boolean | 'auto';
  readonly backend?: BackendChoice;
  readonly info: ReductionArguments;
  readonly lowRank?: LowRankSolve;
}

/**
 * The device space of a solve when it runs resident: `resident` 'auto' when the reductions run on
 * WebGPU and the operator binds (float32, unbatched), `true` or an OptionError saying why not,
 * `false` never (undefined: the host space).
 */
export async function residentSpace(q: ResidentRequest): Promise<DeviceSpace | undefined> {
  if (q.resident === false) return undefined;
  let binding: Binding;
  if (q.dtype === 'float64') binding = { why: 'the data is float64 (solved in float64 on the CPU backend)' };
  else if (q.Dv > MAX_COLS) binding = { why: `b has ${q.Dv} columns, more than the ${MAX_COLS} a resident solve takes` };
  else {
    const args = [...q.vals];
    args[q.p] = { data: new Float32Array(q.n * q.Dv), shape: [q.n, q.Dv] };
    binding = await bindReduction(q.apply, { reduction: 'Sum', axis: q.axis, backend: q.backend }, args, q.info, q.p);
  }
  if (binding.bound === undefined) {
    if (q.resident === true) throw new OptionError(`solve: resident: true cannot apply: ${binding.why}`, 'resident');
    return undefined;
  }
  return deviceSpace(binding.bound, q.alpha, q.lowRank);
}
