import { executeReduction, type ArgDecl } from '../scheduler/execute.js';
import type { BackendChoice } from '../scheduler/backends.js';
import type { Tensor, TensorLike } from '../tensor.js';
import { DimensionError, KernelflowError } from '../errors.js';
import { Cat, mapVars, mkVar, variables, type Formula } from '../graph/formula.js';
import { op } from '../ops/build.js';
import { conjugateGradient, SolveError, type CgResult } from './cg.js';
import { checkFinite, checkInternalSolveOptions, checkX0 } from './options.js';
import { nystromPreconditioner, pickLandmarks } from './nystrom.js';

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
 * console.log(c.lastIterations); // about 10 with the preconditioner, hundreds without
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
   * `'nystrom'` (default): a Nyström (Falkon-style) preconditioner from `rank` landmarks, used when
   * alpha > 0 and n > 2·rank and the kernel is known (LazyTensor.solve, or a kernelSolve formula
   * of the form `K * b` over axis 1); otherwise, and with `'none'`, plain conjugate gradient.
   */
  readonly precond?: 'nystrom' | 'none';
  /** Landmarks of the Nyström preconditioner (default 256). */
  readonly rank?: number;
  /** Runs the solve's reductions on this backend instead of the one `init` chose. */
  readonly backend?: BackendChoice;
}

/**
 * One step of a running solve, as `SolveNode.progress()` emits it.
 * @example
 * ```ts
 * import type { SolveProgress } from 'kernelflow';
 * const log = ({ iter, residual }: SolveProgress) => console.log(`CG ${iter}: ${residual.toExponential(2)}`);
 * log({ iter: 1, residual: 0.5 });
 * ```
 */
export interface SolveProgress {
  /** The iteration just done (1, 2, ...). */
  readonly iter: number;
  /** The relative residual after it (largest over the columns of b). */
  readonly residual: number;
}

/** Solve options plus the hooks a solve node drives: progress reports and cancellation. */
export interface KernelSolveOptions extends SolveOptions {
  readonly onProgress?: (p: { iter: number; residual: number }) => void;
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
  const out = new Float32Array(idx.length * d);
  idx.forEach((r, k) => out.set(t.data.subarray(r * d, (r + 1) * d), k * d));
  return { data: out, shape: [idx.length, d] };
}

/**
 * The dense block K[iRows, jRows] (float64, row-major) in one dispatch: every pair becomes a row of
 * an elementwise map (j-variables recast as i-variables over the pair list), so nothing but the
 * block itself is allocated. `null` rows mean all n.
 */
async function denseBlock(
  K: Formula,
  vals: readonly (Tensor | undefined)[],
  iRows: Int32Array | null,
  jRows: Int32Array,
  n: number,
  backend: BackendChoice | undefined,
): Promise<Float64Array> {
  const I = iRows ?? Int32Array.from({ length: n }, (_, k) => k);
  const ni = I.length;
  const nj = jRows.length;
  const pairsOf = (which: 'i' | 'j'): Int32Array => {
    const out = new Int32Array(ni * nj);
    for (let a = 0; a < ni; a++) for (let b = 0; b < nj; b++) out[a * nj + b] = which === 'i' ? I[a]! : jRows[b]!;
    return out;
  };
  const cats = new Map(variables(K).map((v) => [v.index, v.cat] as const));
  const map = mapVars(K, (v) => (v.cat === Cat.j ? mkVar(v.index, v.dim, Cat.i) : v));
  const iPairs = pairsOf('i');
  const jPairs = pairsOf('j');
  const data = vals.map((t, v) => (t === undefined || cats.get(v) === 2 ? t : rows(t, cats.get(v) === 1 ? jPairs : iPairs)));
  const [out] = await executeReduction(map, { reduction: 'Sum', axis: 1, backend }, data);
  return Float64Array.from(out!.data);
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
 * Each CG step is one fused reduction `sum_j K_ij p_j`; the Nyström preconditioner is built from
 * two dense landmark blocks, one dispatch each.
 */
export function solveKernel(K: Formula, vals: readonly (Tensor | undefined)[], b: TensorLike, opts: KernelSolveOptions = {}): Promise<CgResult & { c: Tensor }> {
  if (K.dim !== 1) throw new DimensionError(`solve: the kernel must be scalar, got dimension ${K.dim}`);
  const Dv = b.shape.length === 1 ? 1 : b.shape[b.shape.length - 1]!;
  const p = vals.length;
  return solveLinear({ apply: op('Mult', [K, mkVar(p, Dv, Cat.j)]), p, axis: 1, kernel: K }, vals, b, opts);
}

/**
 * Solves (alpha Id + A) c = b for a symmetric positive definite operator given as a fused
 * reduction linear in one variable (KeOps KernelSolve): `vals[op.p]` is replaced by each CG direction.
 */
export async function solveLinear(lin: LinearOperator, vals: readonly (Tensor | undefined)[], b: TensorLike, opts: KernelSolveOptions = {}): Promise<CgResult & { c: Tensor }> {
  checkInternalSolveOptions(opts);
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
  const A = async (v: Float64Array): Promise<Float64Array> => {
    const args = [...vals];
    args[lin.p] = { data: Float32Array.from(v), shape: [n, Dv] };
    const [Kv] = await executeReduction(lin.apply, { reduction: 'Sum', axis: lin.axis, backend: opts.backend }, args, { names: opts.names, decls });
    const out = new Float64Array(v.length);
    for (let k = 0; k < v.length; k++) out[k] = Kv!.data[k]! + alpha * v[k]!;
    return out;
  };
  let precond: ((r: Float64Array) => Float64Array) | undefined;
  const m = Math.min(opts.rank ?? 256, n);
  const kernel = lin.kernel;
  if ((opts.precond ?? 'nystrom') === 'nystrom' && kernel !== null && lin.axis === 1 && alpha > 0 && n > 2 * m) {
    const land = pickLandmarks(n, m);
    const Knm = await denseBlock(kernel, vals, null, land, n, opts.backend);
    const Kmm = await denseBlock(kernel, vals, land, land, n, opts.backend);
    try {
      precond = nystromPreconditioner(Knm, Kmm, n, m, alpha);
    } catch (e) {
      if (!(e instanceof KernelflowError && e.code === 'SOLVE')) throw e;
      // Before the first iteration: the residual is that of the initial guess.
      const r0 = opts.x0 === undefined ? 1 : relativeResidual(b, await A(Float64Array.from(opts.x0.data)), Dv);
      throw new SolveError(`${e.message}: the kernel is not positive definite (found before the first iteration; relative residual ${r0.toExponential(3)})`, 0, r0);
    }
  }
  const res = await conjugateGradient(A, Float64Array.from(b.data), Dv, {
    tol: opts.tol ?? 1e-6,
    maxIter: opts.maxIter ?? Math.max(1000, 10 * n),
    x0: opts.x0 === undefined ? undefined : Float64Array.from(opts.x0.data),
    precond,
    onProgress: opts.onProgress,
    cancelled: opts.cancelled,
  });
  return { ...res, c: { data: Float32Array.from(res.x), shape: [n, Dv] } };
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
