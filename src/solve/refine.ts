import { colNorms, type CgResult } from './cg.js';

/**
 * Mixed-precision iterative refinement (issue 19). A float32 operator K~ = K + E, with E the
 * rounding of each kernel value (about 1e-7 relative, random from pair to pair), solves a nearby
 * system: the error (alpha I + K~)^-1 E c is amplified by 1/alpha, so at n = 2e4 on the seed
 * problem the WebGPU solution is 3.2e-4 from the float64 one whatever the CG tolerance (measured;
 * a dense float64 solve with K perturbed by 1e-7 random relative noise is 1.1e-4 off at n = 5000).
 * Refinement removes it: r = b - A x with A's kernel values in float64 (one O(n^2) reduction on
 * the CPU backend), then a float32 CG on A d = r, x += d. Each step multiplies the error by about
 * the float32 solve's own relative error, so one step brings 3e-4 to the float64 residual's floor.
 */
export interface RefineOptions {
  /** Most corrections. */
  readonly steps: number;
  /** The float64 relative residual (largest over the columns) at which no correction is needed. */
  readonly tol: number;
  /** b - A x with A evaluated in float64; may round x in place to the values it applied (float32). */
  readonly residual: (x: Float64Array) => Promise<Float64Array>;
  /** Solves A d = r in float32 to relative residual `tol` (the solve's CG, preconditioner included); `scale` is |r| / |b|. */
  readonly correct: (r: Float64Array, tol: number, scale: number) => Promise<CgResult>;
  readonly cancelled?: () => boolean;
}

export interface RefineResult {
  /** Corrections made. */
  readonly steps: number;
  /** The last float64 relative residual measured (before the last correction, if one followed it). */
  readonly checked: number;
  /** The relative residual now: `checked` when no correction followed it, else the correction's estimate. */
  readonly residual: number;
  readonly iterations: number;
  readonly cancelled: boolean;
}

/** The loosest tolerance of a correction: one that gains less than a digit is not worth its float64 residual. */
const MAX_INNER_TOL = 0.1;

/**
 * Refines x (in place) against b, [n, cols] row-major: up to `steps` rounds of a float64 residual
 * and, while it is above `tol`, a float32 correction solved to the tolerance that brings the
 * residual to `tol` (tol·|b|/|r|, at most 0.1).
 */
export async function refine(x: Float64Array, b: Float64Array, cols: number, opts: RefineOptions): Promise<RefineResult> {
  const bNorm = colNorms(b, cols).map((v) => (v === 0 ? 1 : v));
  let steps = 0;
  let iterations = 0;
  let checked = NaN;
  let residual = NaN;
  while (steps < opts.steps) {
    if (opts.cancelled?.() === true) return { steps, checked, residual, iterations, cancelled: true };
    const r = await opts.residual(x);
    const rNorm = colNorms(r, cols);
    checked = Math.max(...Array.from(rNorm, (v, c) => v / bNorm[c]!));
    residual = checked;
    if (!(checked > opts.tol)) break;
    const inner = Math.min(MAX_INNER_TOL, ...Array.from(rNorm, (v, c) => (v === 0 ? Infinity : (opts.tol * bNorm[c]!) / v)));
    const d = await opts.correct(r, inner, checked);
    for (let k = 0; k < x.length; k++) x[k]! += d.x[k]!;
    iterations += d.iterations;
    steps++;
    residual = d.residual * checked;
    if (d.cancelled) return { steps, checked, residual, iterations, cancelled: true };
  }
  return { steps, checked, residual, iterations, cancelled: false };
}
