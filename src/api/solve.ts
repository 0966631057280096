import { Observable, Subject } from 'rxjs';
import { KernelflowError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import { solveKernel, solveLinear, type KernelSolveOptions } from '../solve/kernel-solve.js';
import type { BackendChoice } from './backend.js';
import { Node } from './node.js';
import { parseAliases, parseFormula } from './parse.js';
import { asFloat32, checkTensor, type Tensor, type TensorLike } from './tensor.js';
import { mkVar, mapVars, variables } from '../graph/formula.js';

/** Options of a solve (API.md): ridge, stopping rule, warm start, preconditioner. */
export interface SolveOptions {
  readonly alpha?: number;
  readonly tol?: number;
  readonly maxIter?: number;
  readonly x0?: TensorLike;
  readonly precond?: 'nystrom' | 'none';
  /** Landmarks of the Nyström preconditioner (default 256). */
  readonly rank?: number;
  readonly backend?: BackendChoice;
}

/** One step of a running solve. */
export interface SolveProgress {
  readonly iter: number;
  readonly residual: number;
}

/**
 * c = (alpha Id + K)^-1 b as a node: K is a scalar kernel formula over the same n points (its
 * variable v reads `kernelInputs[v]`), b the last input. It emits once per convergence; when an
 * input changes mid-solve the solve is cancelled and restarts warm from its last iterate.
 */
export class SolveNode extends Node {
  private readonly progress$ = new Subject<SolveProgress>();
  private warm: Tensor | undefined;
  /** Iterations of the last completed solve. */
  lastIterations = 0;

  constructor(
    readonly kernel: Formula,
    readonly kernelInputs: readonly Node[],
    readonly rhs: Node,
    readonly options: SolveOptions,
    /** Width of b's rows (Dv). */
    readonly dim: number,
  ) {
    super([...kernelInputs, rhs]);
    this.wire({ kind: 'computed', label: `solve (alpha ${options.alpha ?? 0})` });
  }

  /**
   * The iterations of every solve this node runs.
   * @example
   * ```ts
   * const c = K.solve(b, { alpha: 0.01 });
   * c.progress().subscribe(({ iter, residual }) => console.log(iter, residual));
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
 * is a symmetric positive definite reduction linear in `varName`.
 * @example
 * ```ts
 * const Kinv = kernelSolve('Exp(-g*SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)', 'g = Pm(1)'], 'b', { axis: 1 });
 * const c = await Kinv(x, x, b, g, { alpha: 0.01 });
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
