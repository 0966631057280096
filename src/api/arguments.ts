/**
 * The arguments of a formula-string reduction (genred, kernelSolve), counted as pykeops counts
 * them: one per index up to the highest declared by an alias or written as an inline `Var`.
 */
import { KernelflowError } from '../errors.js';
import type { Alias } from './parse.js';

/** Argument k as messages name it: `'x' (argument 0)`, `Var(3,1,1) (argument 3)`, or `argument 1 (unused)` for a hole. */
export function argumentNames(decls: readonly (Alias | undefined)[]): string[] {
  return Array.from(decls, (a, k) => (a === undefined ? `argument ${k} (unused)` : a.name.startsWith('Var(') ? `${a.name} (argument ${k})` : `'${a.name}' (argument ${k})`));
}

/**
 * pykeops's argument count: one argument per index up to the highest one declared by an alias or
 * written as an inline Var. A wrong count is an error naming the missing (or the extra) arguments.
 */
export function checkArgumentCount(decls: readonly (Alias | undefined)[], given: number, names: readonly string[]): void {
  const arity = decls.length;
  if (given === arity) return;
  const list = decls.map((a, k) => (a === undefined ? `argument ${k} unused` : a.name)).join(', ');
  const detail =
    given < arity
      ? `missing ${names.slice(given).join(', ')}`
      : `${given - arity} extra argument${given - arity === 1 ? '' : 's'} after ${arity === 0 ? 'none expected' : names[arity - 1]}`;
  throw new KernelflowError('ARGUMENT', `expected ${arity} arguments (${list}), got ${given}: ${detail}`);
}
