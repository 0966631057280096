import { executeReduction, type ArgDecl } from '../scheduler/execute.js';
import { resolveBackend, type BackendChoice } from '../scheduler/backends.js';
import { floatArray, promotedDtype, type Dtype, type Tensor, type TensorLike } from '../tensor.js';
import { DimensionError, KernelflowError } from '../errors.js';
import { Cat, mapVars, mkVar, variables, type Formula } from '../graph/formula.js';
import { op } from '../ops/build.js';
import { hostSpace, spaceConjugateGradient, SolveError, type CgResult, type CgSpace } from './cg.js';
import { residentSpace, type DeviceSpace } from './device-space.js';
import { checkFinite, checkInternalSolveOptions, checkX0 } from './options.js';
import { pivotedCholesky, releaseWorkspace, type KernelColumns, type LandmarkRule, type NystromFactor } from './nystrom.js';
import { nystromPreconditioner, type Preconditioner } from './preconditioner.js';
import { record } from '../stats.js';
import { refine } from './refine.js';

/** Most landmarks by default, and the residual-diagonal stop (a fraction of alpha). */
const DEFAULT_RANK = 512;
const DEFAULT_PRECOND_TOL = 0.01;
const DEFAULT_LANDMARKS: LandmarkRule = 'rpcholesky';

/**
 * Options of a solve: ridge, stopping rule, warm start, preconditioner.
 * @example
 * ```ts
 * import { source, Vi, Vj, type SolveOptions } from 'kernelflow';
 * const n = 2000;
 * const x = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
 * const b = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
 * const opts: SolveOptions = { alpha: 0.01, tol: 1e-6, precond: 'nystrom', rank: 256 };
 * const c = Vi(x).sqdist(Vj(x)).mul(-50).exp().solve(b, opts);
 * await c.read();
 * console.log(c.lastIterations, c.lastSolve?.rank); // about 10 iterations with the preconditioner, hundreds without
 * ```
 */
export interface SolveOptions {
  /** Ridge: solves (alpha Id + K) c = b. Default 0; the Nyström preconditioner needs alpha > 0. */
  readonly alpha?: number;
  /** Stops when the relative residual ||b - A c|| / ||b|| of every column is at most tol (default 1e-6). */
  readonly tol?: number;
  /** Iteration bound (default max(1000, 10 n)); a solve that does not converge by then is a SolveError. */
  readonly maxIter?: number;
  /** Initial guess, b's shape. A SolveNode given x0 starts every solve from it (not from its last solution). */
  readonly x0?: TensorLike;
  /**
   * `'nystrom'` (default): a Nyström preconditioner K ≈ F F^T from a pivoted partial Cholesky of
   * the kernel (see `rank`, `landmarks`, `precondTol`), used when alpha > 0 and the kernel is known
   * (LazyTensor.solve, or a kernelSolve formula of the form `K * b` over axis 1); otherwise, and
   * with `'none'`, plain conjugate gradient.
   */
  readonly precond?: 'nystrom' | 'none';
  /**
   * Most landmarks of the Nyström preconditioner (default 512, and at most n/2). Fewer are taken
   * when the kernel is explained before: the search stops once the residual diagonal
   * K_ii - (F F^T)_ii is below `precondTol`·alpha everywhere (about 280 landmarks on a Gaussian of
   * sigma 0.1 in the unit square, whatever n). Setup costs about n·rank² host multiply-adds, each
   * iteration 2·n·rank·Dv more.
   */
  readonly rank?: number;
  /** How landmarks are chosen (default `'rpcholesky'`: pivots drawn in proportion to the residual diagonal); see {@link LandmarkRule}. */
  readonly landmarks?: LandmarkRule;
  /** The landmark search stops when every residual diagonal entry is below precondTol·alpha (default 0.01). */
  readonly precondTol?: number;
  /** Runs the solve's reductions on this backend instead of the one `init` chose. */
  readonly backend?: BackendChoice;
  /**
   * Iterative refinement steps (default 0): after the solve, up to `refine` times, the residual
   * b - A c is computed with float64 kernel values (one n x n reduction on the CPU backend) and,
   * while above `tol`, a float32 correction is solved and added. On WebGPU, float32 kernel values
   * hold c about 3e-4 from a float64 solve at n = 2e4 on the seed problem (sigma 0.1, alpha 0.01),
   * whatever `tol`; one step brings it to about 1e-6, for one CPU reduction (about 2 s at n = 2e4
   * on 2 cores) and a few more iterations (`bench/solve.ts`).
   */
  readonly refine?: number;
  /**
   * Keep the CG vectors on the device (WebGPU): `'auto'` (default) does when the reductions run
   * on WebGPU in float32 and unbatched: each iteration is then the kernel reduction plus small
   * kernels (axpy, dot products, the preconditioner's F^T r and (r - F t)/alpha), and only
   * per-column scalars and the preconditioner's k x cols projection are read back. `true` fails
   * with an OptionError where it cannot apply; `false` keeps float64 vectors on the host.
   */
  readonly resident?: boolean | 'auto';
}

/**
 * Where a running solve is, as `SolveNode.progress()` and kernelSolve's `onProgress` report it:
 * while the preconditioner is built (`'setup'`, once per block of landmarks), inside a long kernel
 * reduction of an iteration (`'matvec'`, once per dispatch of about 2^30 pairs) and after each
 * iteration (`'iterate'`). `iter` never decreases.
 * @example
 * ```ts
 * import type { SolveProgress } from 'kernelflow';
 * const log = ({ phase, iter, residual }: SolveProgress) => {
 *   if (phase === 'iterate') console.log(`CG ${iter}: ${residual.toExponential(2)}`);
 * };
 * log({ phase: 'iterate', iter: 1, residual: 0.5, fraction: 1, rank: 256, setupMs: 120, elapsedMs: 300 });
 * ```
 */
export interface SolveProgress {
  readonly phase: 'setup' | 'matvec' | 'iterate';
  /** Iterations done (0 during setup). */
  readonly iter: number;
  /** The relative residual after them (largest over the columns of b); NaN before it is known (a warm start's, during setup). */
  readonly residual: number;
  /** Fraction of the phase done: setup, landmarks so far over the most allowed; matvec, the kept rows done; iterate, 1. */
  readonly fraction: number;
  /** Landmarks of the preconditioner so far (0 without one). */
  readonly rank: number;
  /** Milliseconds spent building the preconditioner (so far, during setup). */
  readonly setupMs: number;
  /** Milliseconds since the solve started. */
  readonly elapsedMs: number;
}

/**
 * What a finished solve did: iterations, residual, the preconditioner it built and where the time
 * went (`SolveNode.lastSolve`).
 * @example
 * ```ts
 * import { source, Vi, Vj } from 'kernelflow';
 * const n = 1000;
 * const x = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
 * const c = Vi(x).sqdist(Vj(x)).mul(-50).exp().solve(x, { alpha: 0.01 });
 * await c.read();
 * const { iterations, rank, setupMs, totalMs } = c.lastSolve!;
 * console.log(`${iterations} iterations, ${rank} landmarks, setup ${setupMs} of ${totalMs} ms`);
 * ```
 */
export interface SolveInfo {
  readonly iterations: number;
  /** Relative residual reached (the CG recurrence's, largest over the columns). */
  readonly residual: number;
  /** Landmarks of the Nyström preconditioner (0: none was built). */
  readonly rank: number;
  readonly landmarks: LandmarkRule | 'none';
  /** Largest residual diagonal entry K_ii - (F F^T)_ii the landmarks left (NaN without a preconditioner). */
  readonly residualDiagonal: number;
  /** Kernel columns the landmark search computed (landmarks and rejected candidates), and pivots dropped as float32 noise. */
  readonly candidates: number;
  readonly dropped: number;
  /** Preconditioner setup: all of it, its kernel dispatches, its host arithmetic (ms). */
  readonly setupMs: number;
  readonly setupKernelMs: number;
  readonly setupHostMs: number;
  /**
   * Time in the kernel reductions of the iterations (resident: each with the p·Ap readback it
   * is submitted with), in the preconditioner applications, in all (ms).
   */
  readonly matvecMs: number;
  readonly precondMs: number;
  readonly totalMs: number;
  /** Refinement (option `refine`): corrections made, time in the float64 residuals (ms). */
  readonly refinements: number;
  readonly refineMs: number;
  /** The last float64 relative residual measured by refinement (before its last correction, if one followed); NaN without refinement. */
  readonly float64Residual: number;
  /** Whether the CG vectors stayed on the device (option `resident`). */
  readonly resident: boolean;
  /**
   * Bytes the iterations read back from the device (all CG runs, refinement's corrections
   * included): resident, the per-column scalars, the preconditioner's projections and the
   * solution once; on the host path on WebGPU, the n x cols result of every reduction; 0 on the CPU.
   */
  readonly readbackBytes: number;
}

/** Solve options plus the hooks a solve node drives: progress reports and cancellation. */
export interface KernelSolveOptions extends SolveOptions {
  readonly onProgress?: (p: SolveProgress) => void;
  readonly cancelled?: () => boolean;
  /** Names of `vals` for messages (`names[p]` is b's), e.g. the aliases or the source labels. */
  readonly names?: readonly string[];
  /**
   * How `vals` are declared (kernelSolve: its aliases and inline Vars), so that the extents of each
   * product come from every argument, read by the formula or not (default: the formula's variables).
   */
  readonly decls?: readonly (ArgDecl | undefined)[];
}

/** Rows `idx` of a row-major [n, d] array. */
function rows(t: Tensor, idx: Int32Array): Tensor {
  const d = t.shape.length === 1 ? 1 : t.shape[t.shape.length - 1]!;
  const out = floatArray(t.data instanceof Float64Array ? 'float64' : 'float32', idx.length * d);
  idx.forEach((r, k) => out.set(t.data.subarray(r * d, (r + 1) * d), k * d));
  return { data: out, shape: [idx.length, d] };
}

/** Candidate landmarks per dispatch of kernel columns (see `kernelColumns`). */
const COLUMN_BLOCK = 32;

/**
 * The kernel's diagonal and blocks of its columns, each one fused reduction:
 * - the diagonal K(x_i, x_i) is an elementwise map (j-variables recast as i-variables);
 * - the columns K[:, S] of a block S of `block` landmarks are `sum_j K(x_i, y_{S_j}) e_j` over the
 *   landmarks' rows only, with e_j the j-th unit vector (a j-variable of dimension `block`):
 *   the same kernel as a CG step with `block` right-hand sides, n x block pairs. A short block is
 *   padded (zero unit vectors), so every block runs the one compiled kernel.
 */
function kernelColumns(K: Formula, vals: readonly (Tensor | undefined)[], n: number, backend: BackendChoice | undefined, block: number): KernelColumns {
  const cats = new Map(variables(K).map((v) => [v.index, v.cat] as const));
  const q = vals.length;
  const cols = op('Mult', [K, mkVar(q, block, Cat.j)]);
  return {
    n,
    async diagonal() {
      const map = mapVars(K, (v) => (v.cat === Cat.j ? mkVar(v.index, v.dim, Cat.i) : v));
      const [out] = await executeReduction(map, { reduction: 'Sum', axis: 1, backend }, vals);
      return Float64Array.from(out!.data);
    },
    async columns(idx) {
      const m = idx.length;
      const padded = new Int32Array(block).fill(idx[0]!);
      padded.set(idx);
      const unit = new Float32Array(block * block);
      for (let e = 0; e < m; e++) unit[e * block + e] = 1;
      const data = vals.map((t, v) => (t === undefined || cats.get(v) !== Cat.j ? t : rows(t, padded)));
      data[q] = { data: unit, shape: [block, block] };
      const [out] = await executeReduction(cols, { reduction: 'Sum', axis: 1, backend }, data);
      // The preconditioner is float32 whatever the solve's precision (it only has to be close).
      const C = out!.data instanceof Float32Array ? out!.data : Float32Array.from(out!.data);
      if (m === block) return C;
      const short = new Float32Array(n * m);
      for (let i = 0; i < n; i++) short.set(C.subarray(i * block, i * block + m), i * m);
      return short;
    },
  };
}

/** A linear operator as a fused reduction: `apply` reduced over `axis` is A p, where p is variable `p` of `apply`. */
export interface LinearOperator {
  readonly apply: Formula;
  readonly p: number;
  readonly axis: 0 | 1;
  /** The scalar kernel K when A p = sum_j K_ij p_j (enables the Nyström preconditioner). */
  readonly kernel: Formula | null;
}

/**
 * Solves (alpha Id + K) c = b by conjugate gradient, where K_ij is the scalar formula `K` whose
 * variable v reads `vals[v]` (i- and j-variables over the same n points) and b is [n, Dv].
 * Each CG step is one fused reduction `sum_j K_ij p_j`; the Nyström preconditioner's kernel
 * columns come in blocks of landmarks, one dispatch each.
 */
export function solveKernel(K: Formula, vals: readonly (Tensor | undefined)[], b: TensorLike, opts: KernelSolveOptions = {}): Promise<CgResult & { c: Tensor; info: SolveInfo }> {
  if (K.dim !== 1) throw new DimensionError(`solve: the kernel must be scalar, got dimension ${K.dim}`);
  const Dv = b.shape.length === 1 ? 1 : b.shape[b.shape.length - 1]!;
  const p = vals.length;
  return solveLinear({ apply: op('Mult', [K, mkVar(p, Dv, Cat.j)]), p, axis: 1, kernel: K }, vals, b, opts);
}

/**
 * Solves (alpha Id + A) c = b for a symmetric positive definite operator given as a fused
 * reduction linear in one variable (KeOps KernelSolve): `vals[op.p]` is replaced by each CG direction.
 */
export async function solveLinear(
  lin: LinearOperator,
  vals: readonly (Tensor | undefined)[],
  b: TensorLike,
  opts: KernelSolveOptions = {},
): Promise<CgResult & { c: Tensor; info: SolveInfo }> {
  checkInternalSolveOptions(opts);
  const start = performance.now();
  const alpha = opts.alpha ?? 0;
  const n = b.shape[0]!;
  const Dv = b.shape.length === 1 ? 1 : b.shape[b.shape.length - 1]!;
  if (b.data.length !== n * Dv) throw new DimensionError(`solve: b has ${b.data.length} values for shape [${b.shape.join(', ')}]`);
  const K = lin.apply;
  const decls = opts.decls === undefined ? undefined : [...opts.decls];
  if (decls !== undefined) decls[lin.p] = { dim: Dv, cat: lin.axis === 1 ? Cat.j : Cat.i };
  for (const v of variables(K)) {
    const t = vals[v.index];
    if (v.index !== lin.p && v.cat !== Cat.param && t !== undefined && t.shape[0] !== n) {
      throw new DimensionError(`solve: variable ${v.key} has ${t.shape[0]} rows but b has ${n}; the operator must be square (n × n)`);
    }
  }
  if (opts.x0 !== undefined) checkX0(opts.x0, b);
  // Non-finite data is named as such, not found iterations later as "not positive definite".
  const nameOf = (v: number): string => opts.names?.[v] ?? (v === lin.p ? 'b' : `variable ${v}`);
  checkFinite(b, nameOf(lin.p));
  vals.forEach((t, v) => {
    if (t !== undefined && v !== lin.p) checkFinite(t, nameOf(v));
  });
  if (opts.x0 !== undefined) checkFinite(opts.x0, 'x0');

  const report = opts.onProgress;
  let iter = 0;
  let residual = opts.x0 === undefined ? 1 : NaN;
  let rank = 0;
  let setupMs = 0;
  const emit = (phase: SolveProgress['phase'], fraction: number): void =>
    report?.({ phase, iter, residual, fraction, rank, setupMs, elapsedMs: performance.now() - start });

  let matvecMs = 0;
  let hostReadback = 0;
  // float64 data solves in float64 (on the CPU backend): the directions are then applied unrounded.
  const dtype: Dtype = promotedDtype([...vals, b]);
  // The host path's reductions on WebGPU read their n x cols result back (SolveInfo.readbackBytes).
  const onDevice = dtype === 'float32' && (await resolveBackend(opts.backend)).name === 'webgpu';
  const A = async (v: Float64Array): Promise<Float64Array> => {
    const t0 = performance.now();
    const args = [...vals];
    const v32 = dtype === 'float64' ? Float64Array.from(v) : Float32Array.from(v);
    v.set(v32); // the direction actually applied (see BlockOperator)
    args[lin.p] = { data: v32, shape: [n, Dv] };
    const onProgress = report === undefined ? undefined : (f: number) => f < 1 && emit('matvec', f);
    const [Kv] = await executeReduction(lin.apply, { reduction: 'Sum', axis: lin.axis, backend: opts.backend, onProgress }, args, { names: opts.names, decls });
    const kv = Kv!.data;
    if (onDevice) hostReadback += kv.length * 4;
    const out = new Float64Array(v.length);
    for (let k = 0; k < v.length; k++) out[k] = kv[k]! + alpha * v[k]!;
    matvecMs += performance.now() - t0;
    return out;
  };

  let precond: Preconditioner | undefined;
  let factor: NystromFactor | undefined;
  let device: DeviceSpace | undefined;
  // CG workspace (x, r, z, p, A p and its float64 copy, float32 upload), counted like backend
  // buffers; refinement holds the solution besides (and a residual while the correction runs).
  const cgBytes = (6 * 8 + 4 + ((opts.refine ?? 0) > 0 ? 2 * 8 : 0)) * n * Dv;
  record.alloc(cgBytes);
  try {
    const cap = Math.min(opts.rank ?? DEFAULT_RANK, Math.floor(n / 2));
    const kernel = lin.kernel;
    const rule = opts.landmarks ?? DEFAULT_LANDMARKS;
    if ((opts.precond ?? 'nystrom') === 'nystrom' && kernel !== null && lin.axis === 1 && alpha > 0 && cap >= 1) {
      emit('setup', 0);
      try {
        factor = await pivotedCholesky(kernelColumns(kernel, vals, n, opts.backend, COLUMN_BLOCK), {
          rule,
          maxRank: cap,
          stop: (opts.precondTol ?? DEFAULT_PRECOND_TOL) * alpha,
          block: COLUMN_BLOCK,
          cancelled: opts.cancelled,
          onRound: (k) => {
            rank = k;
            setupMs = performance.now() - start;
            emit('setup', k / cap);
          },
        });
        rank = factor.rank;
        precond = nystromPreconditioner(factor, alpha);
      } catch (e) {
        if (!(e instanceof KernelflowError && e.code === 'SOLVE')) throw e;
        // Before the first iteration: the residual is that of the initial guess.
        const r0 = opts.x0 === undefined ? 1 : relativeResidual(b, await A(Float64Array.from(opts.x0.data)), Dv);
        throw new SolveError(`${e.message}: the kernel is not positive definite (found before the first iteration; relative residual ${r0.toExponential(3)})`, 0, r0);
      }
      setupMs = performance.now() - start;
      emit('setup', 1);
    }
    let precondMs = 0;
    const P = precond;
    const timedPrecond =
      P === undefined
        ? undefined
        : (r: Float64Array): Float64Array => {
            const t0 = performance.now();
            const z = P(r);
            precondMs += performance.now() - t0;
            return z;
          };
    const tol = opts.tol ?? 1e-6;
    const maxIter = opts.maxIter ?? Math.max(1000, 10 * n);
    const bData = Float64Array.from(b.data);
    device = await residentSpace({ ...lin, vals, n, Dv, alpha, dtype, resident: opts.resident ?? 'auto', backend: opts.backend, info: { names: opts.names, decls }, lowRank: precond?.lowRank });
    const host = hostSpace(n, Dv, A, timedPrecond);
    const space: CgSpace<unknown> = (device ?? host) as CgSpace<unknown>;
    const first = await spaceConjugateGradient(space, bData, {
      tol,
      maxIter,
      x0: opts.x0 === undefined ? undefined : Float64Array.from(opts.x0.data),
      onProgress: (p) => {
        iter = p.iter;
        residual = p.residual;
        emit('iterate', 1);
      },
      cancelled: opts.cancelled,
    });
    let refineMs = 0;
    const refined =
      (opts.refine ?? 0) === 0 || first.cancelled
        ? undefined
        : await refine(first.x, bData, Dv, {
            steps: opts.refine!,
            tol,
            cancelled: opts.cancelled,
            residual: async (x) => {
              const t0 = performance.now();
              const r = await float64Residual(lin, vals, bData, x, alpha, n, Dv, { names: opts.names, decls });
              refineMs += performance.now() - t0;
              return r;
            },
            correct: (r, innerTol, scale) => {
              // Iterations count on from the first solve; residuals are rescaled to b's.
              const offset = iter;
              return spaceConjugateGradient(space, r, {
                tol: innerTol,
                maxIter: Math.max(1, maxIter - iter),
                onProgress: (p) => {
                  iter = offset + p.iter;
                  residual = p.residual * scale;
                  emit('iterate', 1);
                },
                cancelled: opts.cancelled,
              });
            },
          });
    const res: CgResult =
      refined === undefined
        ? first
        : { x: first.x, iterations: first.iterations + refined.iterations, residual: refined.residual, cancelled: refined.cancelled };
    const info: SolveInfo = {
      iterations: res.iterations,
      residual: res.residual,
      rank,
      landmarks: factor === undefined ? 'none' : rule,
      residualDiagonal: factor?.maxResidual ?? NaN,
      candidates: factor?.columnsComputed ?? 0,
      dropped: factor?.dropped ?? 0,
      setupMs,
      setupKernelMs: factor?.kernelMs ?? 0,
      setupHostMs: setupMs - (factor?.kernelMs ?? 0),
      matvecMs: matvecMs + (device?.matvecMs ?? 0),
      precondMs: precondMs + (device?.precondMs ?? 0),
      totalMs: performance.now() - start,
      refinements: refined?.steps ?? 0,
      refineMs,
      float64Residual: refined?.checked ?? NaN,
      resident: device !== undefined,
      readbackBytes: device?.readBytes ?? hostReadback,
    };
    return { ...res, c: { data: dtype === 'float64' ? Float64Array.from(res.x) : Float32Array.from(res.x), shape: [n, Dv] }, info };
  } finally {
    device?.dispose();
    record.free(cgBytes);
    if (factor !== undefined) releaseWorkspace(factor);
    if (precond !== undefined) releaseWorkspace(precond);
  }
}

/** max over columns of ||b - Ax|| / ||b||. */
function relativeResidual(b: TensorLike, Ax: Float64Array, cols: number): number {
  const num = new Float64Array(cols);
  const den = new Float64Array(cols);
  for (let k = 0; k < Ax.length; k++) {
    num[k % cols]! += (b.data[k]! - Ax[k]!) ** 2;
    den[k % cols]! += b.data[k]! ** 2;
  }
  return Math.max(...Array.from(num, (v, c) => Math.sqrt(v) / (den[c]! === 0 ? 1 : Math.sqrt(den[c]!))));
}

/**
 * b - (alpha I + A) x with A's kernel values in float64: the operator's reduction on the CPU
 * backend (generated JavaScript computes in float64; inputs and outputs are float32). x is
 * rounded in place to the float32 values applied, so the residual is exactly that of x.
 */
async function float64Residual(
  lin: LinearOperator,
  vals: readonly (Tensor | undefined)[],
  b: Float64Array,
  x: Float64Array,
  alpha: number,
  n: number,
  Dv: number,
  info: { names?: readonly string[]; decls?: (ArgDecl | undefined)[] },
): Promise<Float64Array> {
  // Float64 data: the CPU backend runs a float64 plan (exact exp, float64 sums and output), whatever kernels it uses for float32.
  const args = vals.map((v) => (v === undefined ? undefined : { data: Float64Array.from(v.data), shape: [...v.shape] }));
  args[lin.p] = { data: Float64Array.from(x), shape: [n, Dv] };
  const [Ax] = await executeReduction(lin.apply, { reduction: 'Sum', axis: lin.axis, backend: 'cpu' }, args, info);
  const r = new Float64Array(b.length);
  for (let k = 0; k < r.length; k++) r[k] = b[k]! - Ax!.data[k]! - alpha * x[k]!;
  return r;
}
