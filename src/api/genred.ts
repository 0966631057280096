import type { ReductionName } from '../ops/reductions.js';
import { makePlan } from '../kernel/plan.js';
import type { BackendChoice } from '../scheduler/backends.js';
import { executeReduction } from '../scheduler/execute.js';
import { parseAliases, parseWithArguments } from './parse.js';
import { argumentNames, checkArgumentCount } from './arguments.js';
import { genredAxis } from './options.js';
import { ownedCopy, type FloatArray, type Tensor, type TensorLike } from '../tensor.js';
import type { Ranges } from '../kernel/ranges.js';
import { checkOptions, anything } from '../options.js';

/**
 * The reductions with two outputs: they resolve to `[values, indices]`, computed in one pass.
 * @example
 * ```ts
 * import { genred, type PairReduction } from 'kernelflow';
 * const reduction: PairReduction = 'Min_ArgMin';
 * const op = genred('SqDist(x,y)', ['x = Vi(1)', 'y = Vj(1)'], { reduction, axis: 1 });
 * const [d, j] = await op({ data: Float32Array.of(0, 5), shape: [2, 1] }, { data: Float32Array.of(1, 4, 9), shape: [3, 1] });
 * console.log(d.data, j.data); // Float32Array [1, 1] Int32Array [0, 1]
 * ```
 */
export type PairReduction = 'Min_ArgMin' | 'Max_ArgMax' | 'KMin_ArgKMin';

/**
 * What the function `genred` returns resolves to: a `[values, indices]` pair for a
 * {@link PairReduction}, indices (`Tensor<Int32Array>`) for ArgMin, ArgMax and ArgKMin, values
 * (`Tensor<FloatArray>`) otherwise.
 * @example
 * ```ts
 * import { genred, type GenredResult } from 'kernelflow';
 * const op = genred('SqDist(x,y)', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'KMin_ArgKMin', K: 2, axis: 1 });
 * const [values, indices]: GenredResult<'KMin_ArgKMin'> = await op(
 *   { data: Float32Array.of(0), shape: [1, 1] },
 *   { data: Float32Array.of(3, 1, 2), shape: [3, 1] },
 * );
 * console.log(values.shape, indices.data); // [1, 2] Int32Array [1, 2]
 * ```
 */
export type GenredResult<R extends ReductionName> = R extends PairReduction
  ? [Tensor<FloatArray>, Tensor<Int32Array>]
  : R extends 'ArgMin' | 'ArgMax' | 'ArgKMin'
    ? Tensor<Int32Array>
    : Tensor<FloatArray>;

/**
 * Options of `genred` (pykeops's `Genred(formula, aliases, reduction_op=, axis=)`).
 * @example
 * ```ts
 * import { genred, type GenredOptions } from 'kernelflow';
 * const opts: GenredOptions<'LogSumExp'> = { reduction: 'LogSumExp', axis: 1, formula2: 'b' };
 * const op = genred('-SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(1)'], opts);
 * ```
 */
export interface GenredOptions<R extends ReductionName> {
  /** The KeOps reduction name (`'Sum'`, `'LogSumExp'`, `'ArgKMin'`, ...). */
  readonly reduction: R;
  /** 1 reduces over j (M rows out), 0 over i (N rows out); pykeops's default is 0. */
  readonly axis?: 0 | 1;
  /** pykeops's name of `axis` (give one or the other). */
  readonly dim?: 0 | 1;
  /** K of the KMin family. */
  readonly K?: number;
  /** Weight formula of SumSoftMaxWeight and of weighted LogSumExp. */
  readonly formula2?: string;
  /** Runs on this backend instead of the one `init` chose. */
  readonly backend?: BackendChoice;
}

/**
 * Options of one call of a `genred` function, given after the arguments (pykeops's keyword
 * arguments of the call).
 * @example
 * ```ts
 * import { genred, type GenredCallOptions } from 'kernelflow';
 * const x = { data: Float32Array.of(0, 1, 10, 11), shape: [4, 1] };
 * const pairs = Int32Array.of(0, 2, 2, 4);  // two clusters: rows [0, 2) and [2, 4)
 * const slices = Int32Array.of(1, 2);       // cluster k meets cluster k only
 * const call: GenredCallOptions = { ranges: [pairs, slices, pairs, pairs, slices, pairs] };
 * const op = genred('SqDist(x,y)', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 });
 * console.log((await op(x, x, call)).data); // Float32Array [1, 1, 1, 1]
 * ```
 */
export interface GenredCallOptions {
  /** Block-sparse reduction: pykeops's six `ranges` arrays, e.g. from {@link fromMatrix}. */
  readonly ranges?: Ranges;
}

const CALL_OPTIONS = { ranges: anything };

/**
 * KeOps's `Genred`: compiles a formula string and a reduction into a function of the aliases' data.
 * The formula and aliases are checked here, once (ParseError, DimensionError, ReductionError);
 * the data at each call (DataError, ReductionError for K). The function takes one TensorLike
 * per argument index, as pykeops counts them: each alias and each inline `Var(k, d, c)` of the
 * formulas is argument k (aliases without an index are numbered by their position). Extents come
 * from the arguments: M from every i-argument, N from every j-argument, whether or not the
 * (simplified) formula still reads it; a category without arguments has extent 1. It resolves to
 * a Tensor (a `[values, indices]` pair for {@link PairReduction}s). `axis` defaults to 0, as in
 * pykeops. A trailing {@link GenredCallOptions} object (no `data`) after the arguments makes
 * the call block-sparse (`{ ranges }`, pykeops's `ranges=`). With the aliases
 * written as an array literal, the function's type takes at least one argument per alias (more
 * for inline `Var`s past them), so too few arguments do not compile.
 * @example
 * ```ts
 * import { genred } from 'kernelflow';
 * const M = 4, N = 5;
 * const x = { data: Float32Array.from({ length: M * 3 }, Math.random), shape: [M, 3] };
 * const y = { data: Float32Array.from({ length: N * 3 }, Math.random), shape: [N, 3] };
 * const b = { data: Float32Array.from({ length: N * 2 }, Math.random), shape: [N, 2] };
 * const g = { data: Float32Array.of(0.5), shape: [1] };
 * const op = genred('Exp(-g*SqDist(x,y))*b', ['x = Vi(3)', 'y = Vj(3)', 'b = Vj(2)', 'g = Pm(1)'],
 *                   { reduction: 'Sum', axis: 1 });
 * const a = await op(x, y, b, g);
 * console.log(a.shape); // [4, 2]
 * ```
 */
export function genred<R extends ReductionName, const A extends readonly string[]>(
  formula: string,
  aliases: A,
  opts: GenredOptions<R>,
): (...args: [...{ -readonly [K in keyof A]: TensorLike }, ...(TensorLike | GenredCallOptions)[]]) => Promise<GenredResult<R>> {
  const axis = genredAxis(opts);
  const parsed = parseAliases(aliases);
  const {
    formulas: [f, g],
    args: decls,
  } = parseWithArguments([formula, opts.formula2], parsed);
  makePlan(f!, { reduction: opts.reduction, axis, K: opts.K, weight: g ?? null });
  const names = argumentNames(decls);
  const fn = async (...given: (TensorLike | GenredCallOptions)[]): Promise<GenredResult<R>> => {
    const last = given[given.length - 1];
    const hasOpts = given.length > 0 && typeof last === 'object' && last !== null && !('data' in last);
    const call = (hasOpts ? last : {}) as GenredCallOptions;
    checkOptions('genred (per-call options)', call, CALL_OPTIONS);
    const args = (hasOpts ? given.slice(0, -1) : given).map((t) => ownedCopy(t as TensorLike));
    checkArgumentCount(decls, args.length, names);
    const ranges = call.ranges === undefined ? {} : { ranges: call.ranges };
    const outs = await executeReduction(f!, { reduction: opts.reduction, axis, K: opts.K, weight: g ?? null, backend: opts.backend, ...ranges }, args, { names, decls });
    return (outs.length === 2 ? [outs[0], outs[1]] : outs[0]) as GenredResult<R>;
  };
  return fn as (...args: [...{ -readonly [K in keyof A]: TensorLike }, ...(TensorLike | GenredCallOptions)[]]) => Promise<GenredResult<R>>;
}
