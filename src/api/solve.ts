import { Observable, Subject } from 'rxjs';
import { KernelflowError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import { solveKernel, solveLinear, type KernelSolveOptions } from '../solve/kernel-solve.js';
import type { BackendChoice } from './backend.js';
import { Node } from './node.js';
import { parseAliases, parseFormula } from './parse.js';
import { asFloat32, checkTensor, type Tensor, type TensorLike } from './tensor.js';
import { mkVar, mapVars, variables } from '../graph/formula.js';

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

/**
 * c = (alpha Id + K)^-1 b as a node: K is a scalar kernel formula over the same n points (its
 * variable v reads `kernelInputs[v]`), b the last input. It emits once per convergence; when an
 * input changes mid-solve the solve is cancelled and restarts warm from its last iterate (the
 * next solve after a convergence starts from the last solution too). Made by `LazyTensor.solve`;
 * its gradient (through {@link grad}) is an adjoint solve.
 * @example
 * ```ts
 * import { source, Vi, Vj, type SolveNode } from 'kernelflow';
 * const n = 1000;
 * const x = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
 * const b = source(Float32Array.from({ length: n }, Math.random), [n, 1]);
 * const c: SolveNode = Vi(x).sqdist(Vj(x)).mul(-50).exp().solve(b, { alpha: 0.01 });
 * c.progress().subscribe(({ iter, residual }) => console.log(iter, residual));
 * await c.read();
 * b.set(Float32Array.from({ length: n }, Math.random));   // solves again, warm
 * await c.read();
 * ```
 */
export class SolveNode extends Node {
  private readonly progress$ = new Subject<SolveProgress>();
  private warm: Tensor | undefined;
  /** Iterations of the last completed solve. */
  lastIterations = 0;

  /** @internal Made by `LazyTensor.solve`. */
  constructor(
    /** @internal The scalar kernel formula K. */
    readonly kernel: Formula,
    /** The nodes the kernel's variables read (variable v reads `kernelInputs[v]`). */
    readonly kernelInputs: readonly Node[],
    /** The right-hand side b. */
    readonly rhs: Node,
    /** The options the solve was made with. */
    readonly options: SolveOptions,
    /** Width of b's rows (Dv). */
    readonly dim: number,
  ) {
    super([...kernelInputs, rhs]);
    this.wire({ kind: 'computed', label: `solve (alpha ${options.alpha ?? 0})` });
  }

  /**
   * The iterations of every solve this node runs (a hot Observable: subscribe before the solve
   * starts to see all of them). Completes when the node is disposed.
   * @example
   * ```ts
   * import { source, Vi, Vj } from 'kernelflow';
   * const n = 1000;
   * const x = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
   * const c = Vi(x).sqdist(Vj(x)).mul(-50).exp().solve(x, { alpha: 0.01 });
   * c.progress().subscribe(({ iter, residual }) => console.log(iter, residual)); // 1, 2, ... down to tol
   * await c.read();
   * ```
   */
  progress(): Observable<SolveProgress> {
    return this.progress$.asObservable();
  }

  protected async compute(vals: readonly Tensor[], signal?: AbortSignal): Promise<Tensor> {
    const b = vals[vals.length - 1]!;
    const kernelVals = vals.slice(0, -1);
    const warm = this.options.x0 ?? (this.warm !== undefined && this.warm.data.length === b.data.length ? this.warm : undefined);
    const opts: KernelSolveOptions = {
      ...this.options,
      x0: warm,
      cancelled: () => signal?.aborted === true,
      onProgress: (p) => this.progress$.next(p),
    };
    const res = await solveKernel(this.kernel, kernelVals, b, opts);
    // The last iterate, even of a cancelled solve, is the warm start of the next one.
    this.warm = res.c;
    if (res.cancelled) throw new KernelflowError('CANCELLED', 'solve cancelled: an input changed');
    this.lastIterations = res.iterations;
    return { data: res.c.data, shape: [...b.shape] };
  }

  override describe(): string {
    return `solve(${this.kernel.key})`;
  }

  override dispose(): void {
    this.progress$.complete();
    super.dispose();
  }
}

/**
 * KeOps's `KernelSolve`: solves (alpha Id + K) c = b for the alias `varName`, where the formula
 * is a symmetric positive definite reduction linear in `varName`, by conjugate gradient. Returns a
 * function of the aliases' data (in alias order, `varName`'s being b) and optionally, last, per-call
 * {@link SolveOptions} that override `defaults`. `axis` defaults to 0 as in pykeops; `varName`
 * must be indexed by the reduced axis (a `Vj` alias for axis 1).
 * @example
 * ```ts
 * import { kernelSolve } from 'kernelflow';
 * const n = 1000;
 * const x = { data: Float32Array.from({ length: n * 2 }, Math.random), shape: [n, 2] };
 * const b = { data: Float32Array.from({ length: n * 2 }, Math.random), shape: [n, 2] };
 * const g = { data: Float32Array.of(50), shape: [1] };
 * const Kinv = kernelSolve('Exp(-g*SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)', 'g = Pm(1)'], 'b', { axis: 1 });
 * const c = await Kinv(x, x, b, g, { alpha: 0.01 });
 * console.log(c.shape); // [1000, 2]
 * ```
 */
export function kernelSolve(
  formula: string,
  aliases: readonly string[],
  varName: string,
  defaults: { axis?: 0 | 1 } & SolveOptions = {},
): (...args: (TensorLike | SolveOptions)[]) => Promise<Tensor> {
  const parsed = parseAliases(aliases);
  const f = parseFormula(formula, parsed);
  const target = parsed.find((a) => a.name === varName);
  if (target === undefined) throw new KernelflowError('ARGUMENT', `kernelSolve: '${varName}' is not one of the aliases (${parsed.map((a) => a.name).join(', ')})`);
  const axis = defaults.axis ?? 0;
  const wantCat = axis === 1 ? 1 : 0;
  if (target.cat !== wantCat) {
    throw new KernelflowError('ARGUMENT', `kernelSolve: '${varName}' must be indexed by the reduced axis (${axis === 1 ? 'Vj' : 'Vi'}) for axis ${axis}`);
  }
  if (f.dim !== target.dim) throw new KernelflowError('ARGUMENT', `kernelSolve: the formula has dimension ${f.dim} but '${varName}' has ${target.dim}`);
  // A formula K * b with K scalar and free of b exposes K, which enables the Nyström preconditioner.
  const kernel =
    axis === 1 && f.kind === 'op' && f.op === 'Mult' && f.args.some((a) => a.kind === 'var' && a.index === target.index)
      ? (f.args.find((a) => !(a.kind === 'var' && a.index === target.index)) ?? null)
      : null;
  const scalarKernel = kernel !== null && kernel.dim === 1 && !variables(kernel).some((v) => v.index === target.index) ? kernel : null;
  const arity = parsed.reduce((n, a) => Math.max(n, a.index + 1), 0);
  return async (...args) => {
    const last = args[args.length - 1];
    const hasOpts = args.length === arity + 1 && last !== undefined && !('data' in last);
    const callOpts = (hasOpts ? last : {}) as SolveOptions;
    const data = (hasOpts ? args.slice(0, -1) : args) as TensorLike[];
    if (data.length !== arity) throw new KernelflowError('ARGUMENT', `expected ${arity} arguments (${parsed.map((a) => a.name).join(', ')}), got ${data.length}`);
    const vals = data.map((t, i) => {
      const c = checkTensor(t, `'${parsed.find((a) => a.index === i)?.name ?? i}'`);
      return { data: asFloat32(c), shape: [...c.shape] };
    });
    const b = vals[target.index]!;
    const opts = { ...defaults, ...callOpts };
    const res =
      scalarKernel !== null
        ? await solveKernel(mapVars(scalarKernel, (v) => mkVar(v.index, v.dim, v.cat)), vals, b, opts)
        : await solveLinear({ apply: f, p: target.index, axis, kernel: null }, vals, b, opts);
    return { data: res.c.data, shape: [...b.shape] };
  };
}
