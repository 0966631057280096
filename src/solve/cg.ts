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

function colNorms(v: Float64Array, cols: number): Float64Array {
  const s = new Float64Array(cols);
  for (let k = 0; k < v.length; k++) s[k % cols]! += v[k]! * v[k]!;
  return s.map(Math.sqrt);
}

function colDots(a: Float64Array, b: Float64Array, cols: number): Float64Array {
  const s = new Float64Array(cols);
  for (let k = 0; k < a.length; k++) s[k % cols]! += a[k]! * b[k]!;
  return s;
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
export async function conjugateGradient(A: BlockOperator, b: Float64Array, cols: number, opts: CgOptions): Promise<CgResult> {
  const n = b.length / cols;
  const x = opts.x0 !== undefined ? Float64Array.from(opts.x0) : new Float64Array(b.length);
  const bNorm = colNorms(b, cols).map((v) => (v === 0 ? 1 : v));
  const r = Float64Array.from(b);
  if (opts.x0 !== undefined) {
    const Ax = await A(x);
    for (let k = 0; k < r.length; k++) r[k]! -= Ax[k]!;
  }
  const residualOf = (): number => Math.max(...colNorms(r, cols).map((v, c) => v / bNorm[c]!));
  let residual = residualOf();
  if (residual <= opts.tol) return { x, iterations: 0, residual, cancelled: false };
  let z = opts.precond?.(r) ?? Float64Array.from(r);
  const p = Float64Array.from(z);
  let rz = colDots(r, z, cols);
  checkCurvature(rz, 0, residual);
  for (let iter = 1; iter <= opts.maxIter; iter++) {
    if (opts.cancelled?.()) return { x, iterations: iter - 1, residual, cancelled: true };
    const Ap = await A(p);
    const pAp = colDots(p, Ap, cols);
    const step = new Float64Array(cols);
    for (let c = 0; c < cols; c++) {
      // A converged column keeps still; a non-positive curvature means A is not positive definite.
      if (rz[c] === 0) continue;
      if (!(pAp[c]! > 0)) {
        throw new SolveError(
          `conjugate gradient broke down at iteration ${iter} (p·Ap = ${pAp[c]} in column ${c}): the operator is not positive definite; residual reached ${residual.toExponential(3)}`,
          iter,
          residual,
        );
      }
      step[c] = rz[c]! / pAp[c]!;
    }
    for (let k = 0; k < x.length; k++) {
      const a = step[k % cols]!;
      x[k]! += a * p[k]!;
      r[k]! -= a * Ap[k]!;
    }
    residual = residualOf();
    opts.onProgress?.({ iter, residual });
    if (!Number.isFinite(residual)) {
      throw new SolveError(`conjugate gradient diverged at iteration ${iter} (residual ${residual})`, iter, residual);
    }
    if (residual <= opts.tol) return { x, iterations: iter, residual, cancelled: false };
    z = opts.precond?.(r) ?? r;
    const rzNew = colDots(r, z, cols);
    checkCurvature(rzNew, iter, residual);
    for (let k = 0; k < p.length; k++) {
      const c = k % cols;
      p[k] = z[k]! + (rz[c] === 0 ? 0 : rzNew[c]! / rz[c]!) * p[k]!;
    }
    rz = rzNew;
  }
  throw new SolveError(
    `conjugate gradient did not converge in ${opts.maxIter} iterations: relative residual ${residual.toExponential(3)} > tol ${opts.tol} (n = ${n})`,
    opts.maxIter,
    residual,
  );
}
