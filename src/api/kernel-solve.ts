import { DimensionError, KernelflowError } from '../errors.js';
import { Cat, variables } from '../graph/formula.js';
import { solveKernel, solveLinear, type SolveOptions, type SolveProgress } from '../solve/kernel-solve.js';
import { checkSolveOptions, SOLVE_OPTIONS } from '../solve/options.js';
import { axisOf, checkOptions, isAxis, isFunction } from '../options.js';
import { asFloat32, checkTensor, type FloatArray, type Tensor, type TensorLike } from '../tensor.js';
import { parseAliases, parseWithArguments } from './parse.js';
import { argumentNames, checkArgumentCount } from './arguments.js';
import { batchDims, batchRun, broadcastBatch } from '../kernel/batch.js';

/**
 * Options of the functions `kernelSolve` makes (given to `kernelSolve` as defaults, or last to
 * each call): the solve's options and a progress callback, called while the preconditioner is
 * built, inside long kernel reductions and after every iteration.
 * @example
 * ```ts
 * import { kernelSolve, type KernelSolveCallOptions } from 'kernelflow';
 * const opts: KernelSolveCallOptions = {
 *   alpha: 0.01,
 *   onProgress: ({ phase, iter, residual }) => phase === 'iterate' && console.log(`CG ${iter}: ${residual.toExponential(2)}`),
 * };
 * const Kinv = kernelSolve('Exp(-g*SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(1)', 'g = Pm(1)'], 'b', { axis: 1, ...opts });
 * ```
 */
export interface KernelSolveCallOptions extends SolveOptions {
  readonly onProgress?: (p: SolveProgress) => void;
}

/** The per-call options: those of a solve and the progress callback. */
const CALL_OPTIONS = { ...SOLVE_OPTIONS, onProgress: isFunction };

/**
 * KeOps's `KernelSolve`: solves (alpha Id + K) c = b for the alias `varName`, where the formula
 * is a symmetric positive definite reduction linear in `varName`, by conjugate gradient. Returns a
 * function of the aliases' data (in alias order, `varName`'s being b) and optionally, last, per-call
 * {@link KernelSolveCallOptions} that override `defaults` (with the aliases written as an array
 * literal, the function's type has one data parameter per alias, and more for inline Vars). `axis`
 * defaults to 0 as in pykeops; `varName` must be indexed by the reduced axis (a `Vj` alias for
 * axis 1). `onProgress` reports the solve as it runs (a long one: the preconditioner's landmarks,
 * then every iteration).
 * @example
 * ```ts
 * import { kernelSolve } from 'kernelflow';
 * const n = 1000;
 * const x = { data: Float32Array.from({ length: n * 2 }, Math.random), shape: [n, 2] };
 * const b = { data: Float32Array.from({ length: n * 2 }, Math.random), shape: [n, 2] };
 * const g = { data: Float32Array.of(50), shape: [1] };
 * const Kinv = kernelSolve('Exp(-g*SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)', 'g = Pm(1)'], 'b', { axis: 1 });
 * const c = await Kinv(x, x, b, g, { alpha: 0.01, onProgress: ({ iter, residual }) => console.log(iter, residual) });
 * console.log(c.shape); // [1000, 2]
 * ```
 */
export function kernelSolve<const A extends readonly string[]>(
  formula: string,
  aliases: A,
  varName: string,
  defaults: { axis?: 0 | 1; dim?: 0 | 1 } & KernelSolveCallOptions = {},
): {
  (...args: { -readonly [K in keyof A]: TensorLike }): Promise<Tensor<FloatArray>>;
  (...args: [...{ -readonly [K in keyof A]: TensorLike }, KernelSolveCallOptions]): Promise<Tensor<FloatArray>>;
  // Inline Vars past the aliases are further arguments (pykeops counts them too).
  (...args: [...{ -readonly [K in keyof A]: TensorLike }, ...(TensorLike | KernelSolveCallOptions)[]]): Promise<Tensor<FloatArray>>;
} {
  checkOptions('kernelSolve', defaults, { axis: isAxis, dim: isAxis, ...CALL_OPTIONS });
  const { axis: _axis, dim: _dim, ...solveDefaults } = defaults;
  const parsed = parseAliases(aliases);
  const {
    formulas: [parsedF],
    args: decls,
  } = parseWithArguments([formula], parsed);
  const f = parsedF!;
  const target = parsed.find((a) => a.name === varName);
  if (target === undefined) throw new KernelflowError('ARGUMENT', `kernelSolve: '${varName}' is not one of the aliases (${parsed.map((a) => a.name).join(', ')})`);
  const axis = axisOf('kernelSolve', defaults, 0);
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
  const arity = decls.length;
  const argNames = argumentNames(decls);
  const tIndex = target.index;
  const call = async (...args: (TensorLike | SolveOptions)[]): Promise<Tensor<FloatArray>> => {
    const last = args[args.length - 1];
    const hasOpts = args.length === arity + 1 && last !== undefined && !('data' in last);
    const callOpts = (hasOpts ? last : {}) as KernelSolveCallOptions;
    checkOptions('kernelSolve (per-call options)', callOpts, CALL_OPTIONS);
    const data = (hasOpts ? args.slice(0, -1) : args) as TensorLike[];
    checkArgumentCount(decls, data.length, argNames);
    const vals = data.map((t, i) => {
      const c = checkTensor(t, argNames[i]!);
      // Copied now: the solve reads its arguments for many iterations, after the caller has moved on.
      // float64 stays float64 (the solve then runs in float64); int32 is read as float32.
      return { data: c.data instanceof Int32Array ? asFloat32(c) : c.data.slice(), shape: [...c.shape] };
    });
    // Leading batch dims (pykeops): one independent solve per batch of the broadcast batch shape.
    const batched = decls.map((d, i) => {
      if (d === undefined) return undefined;
      const sh = vals[i]!.shape;
      return { name: argNames[i]!, batch: batchDims(sh, d.cat === Cat.param), rows: d.cat === Cat.param ? 1 : (sh.length === 1 ? sh[0]! : sh[sh.length - 2]!) };
    });
    const batchShape = broadcastBatch(batched);
    if (batchShape.length === 0) return solveOne(vals, callOpts);
    const run = batchRun(batchShape, batched);
    const b0 = batched[tIndex]!;
    const width = vals[tIndex]!.shape.length === 1 ? 1 : vals[tIndex]!.shape[vals[tIndex]!.shape.length - 1]!;
    // float64 when any argument is (the solves then run in float64).
    const out = vals.some((v) => v.data instanceof Float64Array) ? new Float64Array(run.count * b0.rows * width) : new Float32Array(run.count * b0.rows * width);
    const x0 = callOpts.x0;
    if (x0 !== undefined && x0.data.length !== out.length) {
      throw new DimensionError(`kernelSolve: x0 (the initial guess) has shape [${x0.shape.join(', ')}] but the batched solution has [${[...batchShape, b0.rows, width].join(', ')}]`);
    }
    for (let k = 0; k < run.count; k++) {
      const views = vals.map((t, i) => {
        const a = batched[i];
        if (a === undefined) return t;
        const per = t.data.length / Math.max(1, a.batch.reduce((p, q) => p * q, 1));
        const at = run.offsets[k * run.stride + i]! * (per / a.rows);
        return { data: t.data.subarray(at, at + per), shape: t.shape.slice(a.batch.length) };
      });
      const span = b0.rows * width;
      const own = x0 === undefined ? {} : { x0: { data: x0.data.subarray(k * span, (k + 1) * span), shape: [b0.rows, width] } };
      const c = await solveOne(views, { ...callOpts, ...own });
      out.set(c.data, k * span);
    }
    return { data: out, shape: [...batchShape, ...vals[tIndex]!.shape.slice(b0.batch.length)] };
  };
  /** One (unbatched) solve. */
  const solveOne = async (vals: readonly { data: FloatArray; shape: number[] }[], callOpts: KernelSolveCallOptions): Promise<Tensor<FloatArray>> => {
    const b = vals[tIndex]!;
    // The operator is square: every i- and j-argument has b's rows, read by the formula or not.
    decls.forEach((d, i) => {
      if (d === undefined || d.cat === Cat.param || i === tIndex) return;
      const rows = vals[i]!.shape[0];
      if (rows !== b.shape[0]) {
        throw new DimensionError(`kernelSolve: ${argNames[i]} has ${String(rows)} rows but '${varName}' has ${String(b.shape[0])}; the operator must be square (n × n)`);
      }
    });
    // Solve messages name aliases as written ('x'), inline Vars with their index.
    const names = decls.map((a, i) => (a === undefined || a.name.startsWith('Var(') ? argNames[i]! : `'${a.name}'`));
    names[arity] = `'${varName}'`; // solveKernel binds the CG direction after the arguments
    const opts = { ...solveDefaults, ...callOpts, names, decls };
    const res =
      scalarKernel !== null
        ? await solveKernel(scalarKernel, vals, b, opts)
        : await solveLinear({ apply: f, p: tIndex, axis, kernel: null }, vals, b, opts);
    // Float64Array when the arguments were float64 (the solve ran in float64).
    return { data: res.c.data as FloatArray, shape: [...b.shape] };
  };
  return call;
}
