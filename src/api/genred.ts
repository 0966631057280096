import { KernelflowError } from '../errors.js';
import type { ReductionName } from '../nodes/reductions.js';
import { makePlan } from '../nodes/plan.js';
import type { BackendChoice } from './backend.js';
import { executeReduction } from './execute.js';
import { parseAliases, parseFormula } from './parse.js';
import type { Tensor, TensorLike } from './tensor.js';

/** Pair reductions resolve to `[values, indices]`. */
export type PairReduction = 'Min_ArgMin' | 'Max_ArgMax' | 'KMin_ArgKMin';
export type GenredResult<R extends ReductionName> = R extends PairReduction ? [Tensor, Tensor] : Tensor;

export interface GenredOptions<R extends ReductionName> {
  readonly reduction: R;
  /** 1 reduces over j (M rows out), 0 over i (N rows out); pykeops's default is 0. */
  readonly axis?: 0 | 1;
  /** K of the KMin family. */
  readonly K?: number;
  /** Weight formula of SumSoftMaxWeight and of weighted LogSumExp. */
  readonly formula2?: string;
  readonly backend?: BackendChoice;
}

/**
 * KeOps's `Genred`: compiles a formula string and a reduction into a function of the aliases' data.
 * The formula and aliases are checked here, once; the data at each call.
 * @example
 * ```ts
 * const op = genred('Exp(-g*SqDist(x,y))*b', ['x = Vi(3)', 'y = Vj(3)', 'b = Vj(2)', 'g = Pm(1)'],
 *                   { reduction: 'Sum', axis: 1 });
 * const a = await op(x, y, b, g); // Tensor of shape [M, 2]
 * ```
 */
export function genred<R extends ReductionName>(
  formula: string,
  aliases: readonly string[],
  opts: GenredOptions<R>,
): (...args: TensorLike[]) => Promise<GenredResult<R>> {
  const parsed = parseAliases(aliases);
  const f = parseFormula(formula, parsed);
  const g = opts.formula2 === undefined ? null : parseFormula(opts.formula2, parsed);
  const axis = opts.axis ?? 0;
  makePlan(f, { reduction: opts.reduction, axis, K: opts.K, weight: g });
  const names: string[] = [];
  for (const a of parsed) names[a.index] = `'${a.name}' (argument ${a.index})`;
  const arity = parsed.reduce((n, a) => Math.max(n, a.index + 1), 0);
  return async (...args: TensorLike[]) => {
    if (args.length !== arity) {
      throw new KernelflowError('ARGUMENT', `expected ${arity} arguments (${parsed.map((a) => a.name).join(', ')}), got ${args.length}`);
    }
    const outs = await executeReduction(f, { reduction: opts.reduction, axis, K: opts.K, weight: g, backend: opts.backend }, args, names);
    return (outs.length === 2 ? [outs[0], outs[1]] : outs[0]) as GenredResult<R>;
  };
}
