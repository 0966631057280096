/**
 * Up-front checks of a solve (issue 12): its options, the shape of the warm start and finite data.
 * A NaN in b or in the points would otherwise surface as "not positive definite" iterations later.
 */
import { DataError, DimensionError } from '../errors.js';
import { checkOptions, finiteAtLeast, integerAtLeast, isFunction, isTensorLike, oneOf, type OptionChecks } from '../options.js';
import { backendOption } from '../scheduler/backends.js';
import { checkTensor, type TensorLike } from '../tensor.js';

/** The options of a solve (SolveOptions), each with its check. */
export const SOLVE_OPTIONS: OptionChecks = {
  alpha: finiteAtLeast(0),
  tol: finiteAtLeast(0),
  maxIter: integerAtLeast(1),
  x0: isTensorLike,
  precond: oneOf('nystrom', 'none'),
  rank: integerAtLeast(1),
  landmarks: oneOf('greedy', 'rpcholesky', 'uniform'),
  precondTol: finiteAtLeast(0),
  backend: backendOption,
  refine: integerAtLeast(0),
  resident: oneOf(true, false, 'auto'),
};

/** What `solveLinear` accepts besides: the hooks a solve node drives, the names for messages and the argument declarations. */
const INTERNAL: OptionChecks = { ...SOLVE_OPTIONS, onProgress: isFunction, cancelled: isFunction, names: () => undefined, decls: () => undefined };

/** Checks the options of a public solve entry (`where` names it). */
export function checkSolveOptions(where: string, opts: unknown): void {
  checkOptions(where, opts, SOLVE_OPTIONS);
}

/** Checks the options `solveLinear` was given (public ones and internal hooks). */
export function checkInternalSolveOptions(opts: unknown): void {
  checkOptions('solve', opts, INTERNAL);
}

/** Checks the warm start against b: a TensorLike of b's shape (rows and width). */
export function checkX0(x0: TensorLike, b: TensorLike): void {
  const t = checkTensor(x0, 'x0');
  const width = (s: readonly number[]): number => (s.length <= 1 ? 1 : s[s.length - 1]!);
  if (t.data.length !== b.data.length || width(t.shape) !== width(b.shape)) {
    throw new DimensionError(`solve: x0 (the initial guess) has shape [${t.shape.join(', ')}] but b has [${b.shape.join(', ')}]: they must match`);
  }
}

/** A DataError naming `name` when `t` holds NaN or ±Infinity (a solve needs finite data). */
export function checkFinite(t: TensorLike, name: string): void {
  const d = t.data;
  for (let k = 0; k < d.length; k++) {
    if (!Number.isFinite(d[k]!)) {
      const w = t.shape.length <= 1 ? 1 : t.shape[t.shape.length - 1]!;
      throw new DataError(`${name}: non-finite value ${d[k]} at row ${Math.floor(k / w)}, column ${k % w}; a solve needs finite data`);
    }
  }
}
