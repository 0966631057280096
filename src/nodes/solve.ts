import { Observable, Subject } from 'rxjs';
import { DimensionError, KernelflowError } from '../errors.js';
import { Cat, mkVar, type Formula } from '../graph/formula.js';
import { printFormula } from '../graph/print.js';
import { op } from '../ops/build.js';
import { solveKernel, type KernelSolveOptions, type SolveInfo, type SolveOptions, type SolveProgress } from '../solve/kernel-solve.js';
import { checkSolveOptions } from '../solve/options.js';
import type { BackendChoice } from '../scheduler/backends.js';
import { type FloatArray, type Tensor } from '../tensor.js';
import { sumCotangents } from './cotangent.js';
import { Node, type BackwardContext, type Cotangent } from './node.js';
import { reductionNodes } from './reduction.js';
import { chosenBackend } from '../scheduler/backends.js';

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
export class SolveNode extends Node<Tensor<FloatArray>> {
  private readonly progress$ = new Subject<SolveProgress>();
  private warm: Tensor | undefined;
  /** Iterations of the last completed solve. */
  lastIterations = 0;
  /** What the last completed solve did: iterations, residual, landmarks, setup and iteration times. */
  lastSolve: SolveInfo | undefined;

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
    private readonly width: number,
  ) {
    checkSolveOptions('solve', options);
    super([...kernelInputs, rhs]);
    this.wire({ kind: 'computed', label: `solve (alpha ${options.alpha ?? 0})` });
  }

  /**
   * The progress of every solve this node runs (a hot Observable: subscribe before the solve
   * starts to see all of it): the preconditioner's setup, long kernel reductions and each
   * iteration (see {@link SolveProgress}). Completes when the node is disposed.
   * @example
   * ```ts
   * import { source, Vi, Vj } from 'kernelflow';
   * const n = 1000;
   * const x = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
   * const c = Vi(x).sqdist(Vj(x)).mul(-50).exp().solve(x, { alpha: 0.01 });
   * c.progress().subscribe(({ phase, iter, residual }) => phase === 'iterate' && console.log(iter, residual)); // 1, 2, ... down to tol
   * await c.read();
   * ```
   */
  progress(): Observable<SolveProgress> {
    return this.progress$.asObservable();
  }

  protected async compute(vals: readonly Tensor[], signal?: AbortSignal): Promise<Tensor<FloatArray>> {
    const b = vals[vals.length - 1]!;
    const kernelVals = vals.slice(0, -1);
    const withBatch = vals.findIndex((v) => v.shape.length > 2);
    if (withBatch >= 0) {
      const who = withBatch === vals.length - 1 ? 'b' : this.kernelInputs[withBatch]!.describe();
      throw new DimensionError(`solve: ${who} has batch dimensions (shape [${vals[withBatch]!.shape.join(', ')}]); LazyTensor.solve takes none: use kernelSolve, which solves each batch`);
    }
    const warm = this.options.x0 ?? (this.warm !== undefined && this.warm.data.length === b.data.length ? this.warm : undefined);
    const opts: KernelSolveOptions = {
      ...this.options,
      x0: warm,
      cancelled: () => signal?.aborted === true,
      onProgress: (p) => this.progress$.next(p),
      names: [...this.kernelInputs, this.rhs].map((n) => n.describe()),
    };
    const res = await solveKernel(this.kernel, kernelVals, b, opts);
    // The last iterate, even of a cancelled solve, is the warm start of the next one.
    this.warm = res.c;
    if (res.cancelled) throw new KernelflowError('CANCELLED', 'solve cancelled: an input changed');
    this.lastIterations = res.iterations;
    this.lastSolve = res.info;
    return { data: res.c.data as FloatArray, shape: [...b.shape] };
  }

  override describe(): string {
    return `solve(${printFormula(this.kernel, 500)})`;
  }

  override staticShape(): readonly number[] | undefined {
    return this.rhs.staticShape();
  }

  protected override details(): string {
    return ` ${this.warm?.data instanceof Float64Array ? 'float64' : 'float32'} on ${this.options.backend ?? chosenBackend() ?? 'auto'}`;
  }

  override get dim(): number {
    return this.width;
  }

  override gradBackend(): BackendChoice | undefined {
    return this.options.backend;
  }

  override gradInputs(): readonly Node[] {
    return [...this.kernelInputs, this.rhs];
  }

  /**
   * A solve's gradient is a solve (KeOps KernelSolveAutograd, JAX custom_linear_solve): with
   * c = (alpha Id + K)^-1 b and K symmetric, the adjoint a = (alpha Id + K)^-1 g gives d/db = a and,
   * for the variables inside K, the gradient of -<a, K c> with c held fixed.
   */
  override backward(terms: readonly Cotangent[], ctx: BackwardContext): void {
    const backend = this.options.backend;
    const g = sumCotangents(terms, this, backend);
    const a = new SolveNode(this.kernel, this.kernelInputs, g, { ...this.options, x0: undefined }, this.dim);
    if (ctx.reaches(this.rhs)) ctx.push(this.rhs, { node: a, dim: this.dim });
    if (!this.kernelInputs.some((n) => ctx.reaches(n))) return;
    const p = this.kernelInputs.length;
    const [Kc] = reductionNodes(op('Mult', [this.kernel, mkVar(p, this.dim, Cat.j)]), [...this.kernelInputs, this], { reduction: 'Sum', axis: 1 }, backend);
    const [minusA] = reductionNodes(op('Minus', [mkVar(0, this.dim, Cat.i)]), [a], { reduction: 'Sum', axis: 1 }, backend);
    Kc!.backward([{ node: minusA!, dim: this.dim }], { reaches: (m) => m !== this && ctx.reaches(m), push: ctx.push });
  }

  override dispose(): void {
    this.progress$.complete();
    super.dispose();
  }
}

