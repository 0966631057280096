import { DimensionError, KernelflowError, LimitError } from '../errors.js';
import { checkDim, LIMITS, mkOpUnchecked, type Formula, type OpNode } from '../graph/formula.js';
import { opDef } from './table.js';

/** Builds a checked op node: arity, parameters and the op's dimension rule are enforced here. */
export function op(name: string, args: readonly Formula[], params: readonly number[] = []): OpNode {
  const def = opDef(name);
  if (args.length !== def.arity) {
    throw new DimensionError(`${name} takes ${def.arity} argument(s), got ${args.length}`);
  }
  // nParams < 0: a variable number of trailing params, checked by the op's own dim rule.
  if (def.nParams >= 0 && params.length !== def.nParams) {
    throw new KernelflowError('ARGUMENT', `${name} takes ${def.nParams} static parameter(s), got ${params.length}`);
  }
  for (const p of params) {
    if (!Number.isFinite(p)) throw new KernelflowError('ARGUMENT', `${name}: parameter ${p} is not a finite number`);
    if (Math.abs(p) > LIMITS.param) throw new LimitError('param', `${name}: parameter ${p} exceeds the limit of ${LIMITS.param} in magnitude`);
  }
  const dim = def.dim(args.map((a) => a.dim), params);
  // Before any code is generated or evaluated: a huge output dimension would exhaust memory there.
  checkDim(dim, `${name} output`);
  return mkOpUnchecked(name, args, params, dim);
}
