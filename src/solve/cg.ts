import { KernelflowError } from '../errors.js';

/**
 * Applies the operator to a block of vectors: `out = A v`, both [n, cols] row-major. An operator
 * that computes in lower precision rounds `v` in place to the values it applied (float32 for the
 * kernel reductions), so that the iterate moves along the direction whose image the residual
 * loses: otherwise x and r drift apart by |A| · eps32 · |x| (at n = 2e4 on the seed problem, a
 * true residual of 1.2e-4 behind a recurrence residual of 1e-6, measured).
 */
export type BlockOperator = (v: Float64Array) => Promise<Float64Array>;

export interface CgOptions {
  /** Relative residual ||b - A x|| / ||b|| (per column) at which to stop. */
  readonly tol: number;
  readonly maxIter: number;
  /** Warm start, [n, cols]. */
  readonly x0?: Float64Array;
  /** Preconditioner: z = P^-1 r (symmetric positive definite). */
  readonly precond?: (r: Float64Array) => Float64Array;
  readonly onProgress?: (p: { iter: number; residual: number }) => void;
  /** Checked once per iteration: a cancelled solve stops with `cancelled: true`. */
  readonly cancelled?: () => boolean;
}

export interface CgResult {
  readonly x: Float64Array;
  readonly iterations: number;
  readonly residual: number;
  readonly cancelled: boolean;
}

/**
 * A conjugate-gradient failure: no convergence within `maxIter`, a breakdown (the operator is not
 * positive definite) or divergence. Says the residual reached and the iteration count.
 * @example
 * ```ts
 * import { source, Vi, Vj, SolveError } from 'kernelflow';
 * const n = 300;
 * const x = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
 * const b = source(Float32Array.from({ length: n }, Math.random), [n, 1]);
 * const c = Vi(x).sqdist(Vj(x)).mul(-50).exp().solve(b, { alpha: 1e-4, maxIter: 3, precond: 'none' });
 * try {
 *   await c.read();
 * } catch (e) {
 *   if (e instanceof SolveError) console.log(e.iterations, e.residual); // 3 and the residual reached
 * }
 * ```
 */
export class SolveError extends KernelflowError {
  constructor(
    message: string,
    /** Iterations run before the failure. */
    readonly iterations: number,
    /** The relative residual ||b - A x|| / ||b|| (largest over the columns) when it failed. */
    readonly residual: number,
  ) {
    super('SOLVE', message);
  }
}

/**
 * Where the vectors of a conjugate gradient live and how they are updated (issue 19), so that CG
 * is written once: float64 arrays on the host ({@link hostSpace}) or float32 buffers on the
 * device (solve/device-space.ts). Vectors are blocks [n, cols] of independent columns; scalars
 * are per column, in float64; `dots` is where the host waits for the device.
 */
export interface CgSpace<V> {
  readonly cols: number;
  zeros(): V;
  fromHost(h: Float64Array): V;
  toHost(v: V): Promise<Float64Array>;
  /** dst = src. */
  copy(src: V, dst: V): void;
  /** y += a[c] x. */
  axpy(y: V, a: Float64Array, x: V): void;
  /** y = x + b[c] y. */
  xpby(x: V, b: Float64Array, y: V): void;
  /** x += a[c] p for the solution x, which a space may keep more precisely than its other vectors (default: axpy). */
  readonly accumulate?: (x: V, a: Float64Array, p: V) => void;
  /** Per column dot products of each pair. */
  dots(pairs: readonly (readonly [V, V])[]): Promise<Float64Array[]>;
  /** out = A v (an operator computing in float32 may round v in place, see BlockOperator). */
  apply(v: V, out: V): Promise<void>;
  /** z = P^-1 r (z is never r). */
  readonly precond?: (r: V, z: V) => Promise<void>;
  free(v: V): void;
}

/** The Euclidean norm of each column of a row-major [n, cols] block. */
export function colNorms(v: Float64Array, cols: number): Float64Array {
  const s = new Float64Array(cols);
  for (let k = 0; k < v.length; k++) s[k % cols]! += v[k]! * v[k]!;
  return s.map(Math.sqrt);
}

function colDots(a: Float64Array, b: Float64Array, cols: number): Float64Array {
  const s = new Float64Array(cols);
  for (let k = 0; k < a.length; k++) s[k % cols]! += a[k]! * b[k]!;
  return s;
}

/** The host space: float64 vectors [n, cols], the operator and the preconditioner as host functions. */
export function hostSpace(n: number, cols: number, A: BlockOperator, precond?: (r: Float64Array) => Float64Array): CgSpace<Float64Array> {
  return {
    cols,
    zeros: () => new Float64Array(n * cols),
    fromHost: (h) => Float64Array.from(h),
    toHost: async (v) => v,
    copy: (src, dst) => dst.set(src),
    axpy: (y, a, x) => {
      for (let k = 0; k < y.length; k++) y[k]! += a[k % cols]! * x[k]!;
    },
    xpby: (x, b, y) => {
      for (let k = 0; k < y.length; k++) y[k] = x[k]! + b[k % cols]! * y[k]!;
    },
    dots: async (pairs) => pairs.map(([a, b]) => colDots(a, b, cols)),
    apply: async (v, out) => out.set(await A(v)),
    precond: precond === undefined ? undefined : async (r, z) => z.set(precond(r)),
    free: () => undefined,
  };
}

/** r·z must be positive where r is not zero: otherwise the preconditioner (or the operator it approximates) is not positive definite. */
function checkCurvature(rz: Float64Array, iter: number, residual: number): void {
  rz.forEach((v, c) => {
    if (!(v >= 0)) {
      throw new SolveError(
        `conjugate gradient broke down at iteration ${iter} (r·z = ${v} in column ${c}): the preconditioner is not positive definite, so neither is the kernel it approximates; residual reached ${residual.toExponential(3)}`,
        iter,
        residual,
      );
    }
  });
}

/**
 * Preconditioned conjugate gradient on several right-hand sides at once: the columns are
 * independent systems sharing each operator application (one fused reduction per step).
 * Vectors are float64 on the host; the operator may compute in float32.
 */
export function conjugateGradient(A: BlockOperator, b: Float64Array, cols: number, opts: CgOptions): Promise<CgResult> {
  const { precond, ...rest } = opts;
  return spaceConjugateGradient(hostSpace(b.length / cols, cols, A, precond), b, rest);
}

/**
 * Conjugate gradient in a vector space (host or device): b and the warm start come from the
 * host, the solution goes back to it; per iteration the space applies the operator and the
 * preconditioner and reads back per-column dot products. Every vector it made is freed.
 */
export async function spaceConjugateGradient<V>(S: CgSpace<V>, b: Float64Array, opts: Omit<CgOptions, 'precond'>): Promise<CgResult> {
  const cols = S.cols;
  const n = b.length / cols;
  const made: V[] = [];
  const keep = (v: V): V => (made.push(v), v);
  try {
    const x = keep(opts.x0 !== undefined ? S.fromHost(opts.x0) : S.zeros());
    const bNorm = colNorms(b, cols).map((v) => (v === 0 ? 1 : v));
    const r = keep(S.fromHost(b));
    const Ap = keep(S.zeros());
    if (opts.x0 !== undefined) {
      await S.apply(x, Ap);
      S.axpy(r, new Float64Array(cols).fill(-1), Ap);
    }
    const residualOf = (rr: Float64Array): number => Math.max(...Array.from(rr, (v, c) => Math.sqrt(v) / bNorm[c]!));
    // Without a warm start r is b: its norms come from the host's float64 b (no readback).
    let [rr] = opts.x0 === undefined ? [colDots(b, b, cols)] : await S.dots([[r, r]]);
    let residual = residualOf(rr!);
    const done = async (iterations: number, cancelled: boolean): Promise<CgResult> => ({ x: await S.toHost(x), iterations, residual, cancelled });
    if (residual <= opts.tol) return await done(0, false);
    // Without a preconditioner z is r itself, and r·z is r·r.
    const z = S.precond === undefined ? r : keep(S.zeros());
    const zOf = async (): Promise<Float64Array> => {
      if (S.precond === undefined) return rr!;
      await S.precond(r, z);
      return (await S.dots([[r, z]]))[0]!;
    };
    let rz = await zOf();
    const p = keep(S.zeros());
    S.copy(z, p);
    checkCurvature(rz, 0, residual);
    for (let iter = 1; iter <= opts.maxIter; iter++) {
      if (opts.cancelled?.()) return await done(iter - 1, true);
      await S.apply(p, Ap);
      const [pAp] = await S.dots([[p, Ap]]);
      const step = new Float64Array(cols);
      for (let c = 0; c < cols; c++) {
        // A converged column keeps still; a non-positive curvature means A is not positive definite.
        if (rz[c] === 0) continue;
        if (!(pAp![c]! > 0)) {
          throw new SolveError(
            `conjugate gradient broke down at iteration ${iter} (p·Ap = ${pAp![c]} in column ${c}): the operator is not positive definite; residual reached ${residual.toExponential(3)}`,
            iter,
            residual,
          );
        }
        step[c] = rz[c]! / pAp![c]!;
      }
      if (S.accumulate !== undefined) S.accumulate(x, step, p);
      else S.axpy(x, step, p);
      S.axpy(r, step.map((a) => -a), Ap);
      [rr] = await S.dots([[r, r]]);
      residual = residualOf(rr!);
      opts.onProgress?.({ iter, residual });
      if (!Number.isFinite(residual)) {
        throw new SolveError(`conjugate gradient diverged at iteration ${iter} (residual ${residual})`, iter, residual);
      }
      if (residual <= opts.tol) return await done(iter, false);
      const rzNew = await zOf();
      checkCurvature(rzNew, iter, residual);
      S.xpby(z, Float64Array.from(rzNew, (v, c) => (rz[c] === 0 ? 0 : v / rz[c]!)), p);
      rz = rzNew;
    }
    throw new SolveError(
      `conjugate gradient did not converge in ${opts.maxIter} iterations: relative residual ${residual.toExponential(3)} > tol ${opts.tol} (n = ${n})`,
      opts.maxIter,
      residual,
    );
  } finally {
    for (const v of made) S.free(v);
  }
}
