import type { Dialect, PrintCtx } from './op.js';

/**
 * Ops without a loop form print one expression per component; beyond this width they would print
 * sums too deep for shader compilers (Tint: 512 nested expressions), so they are refused instead.
 */
export const UNROLLED_OP_MAX = 256;

/** An index: a constant (folded while printing) or an index expression of the dialect (e.g. a loop variable). */
export type Ix = number | string;

/** An index printed in the dialect (constants as index literals: `3u` in WGSL). */
export const ix = (d: Dialect, i: Ix): string => (typeof i === 'number' ? d.int(i) : i);

/** `a + b` on indices, folded when both are constants. */
export function ixAdd(d: Dialect, a: Ix, b: Ix): Ix {
  if (typeof a === 'number' && typeof b === 'number') return a + b;
  if (a === 0) return b;
  if (b === 0) return a;
  return `(${ix(d, a)} + ${ix(d, b)})`;
}

/** `a * n` on indices, folded when `a` is a constant. */
export function ixMul(d: Dialect, a: Ix, n: number): Ix {
  if (typeof a === 'number') return a * n;
  return n === 1 ? a : `(${a} * ${d.int(n)})`;
}

/**
 * A vector seen through an index: `at(i)` is an expression for component i (a dimension-1 vector
 * ignores the index: broadcasting). Wide vectors accept any index; narrow ones are named scalars.
 */
export interface Operand {
  readonly dim: number;
  at(i: Ix): string;
}

/** Whether a vector of this width is computed with loops (above the dialect's `unrollMax`) rather than one scalar per component. */
export const isWide = (d: Dialect, n: number): boolean => n > d.unrollMax;

/**
 * Statements of `body(k)` for k in [0, n): unrolled with constant k when n is narrow (or `wide`
 * is false), else one loop over a fresh index variable (the body then must not declare names
 * that depend on k).
 */
export function forEach(c: PrintCtx, n: number, body: (k: Ix) => readonly string[], wide = isWide(c.d, n)): string[] {
  if (!wide) return Array.from({ length: n }, (_, k) => body(k)).flat();
  const k = c.fresh('k');
  return [c.d.loop(k, n), ...body(k).map((s) => `  ${s}`), '}'];
}

/** `(t0 + t1 + ...)`, or the single term. */
export function sumOf(terms: readonly string[]): string {
  return terms.length === 1 ? terms[0]! : `(${terms.join(' + ')})`;
}

/**
 * sum_k term(k) for k in [0, n): one expression when n is narrow, else an accumulator and a loop
 * (never an expression tree of n terms: shader compilers limit expression depth).
 */
export function sumOver(c: PrintCtx, n: number, term: (k: Ix, pre: string[]) => string): { stmts: string[]; expr: string } {
  if (!isWide(c.d, n)) {
    const stmts: string[] = [];
    return { stmts, expr: sumOf(Array.from({ length: n }, (_, k) => term(k, stmts))) };
  }
  const s = c.fresh('sum');
  const k = c.fresh('k');
  const pre: string[] = [];
  const t = term(k, pre);
  return { stmts: [c.d.decl(s, c.d.num(0)), c.d.loop(k, n), ...[...pre, `${s} = ${s} + ${t};`].map((x) => `  ${x}`), '}'], expr: s };
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** `expr` as a name, declared in `pre` unless it is one already (so a term may read it twice). */
export function named(c: PrintCtx, pre: string[], expr: string, hint = 'v'): string {
  if (IDENT.test(expr)) return expr;
  const n = c.fresh(hint);
  pre.push(c.d.decl(n, expr));
  return n;
}

/** Component k of x; in a loop, named first (in `pre`) so that a term may read it twice without reloading. */
export const read = (c: PrintCtx, x: Operand, k: Ix, pre: string[]): string => (typeof k === 'string' ? named(c, pre, x.at(k)) : x.at(k));

/** The components of a narrow operand, by constant index. */
export const components = (x: Operand): string[] => Array.from({ length: x.dim }, (_, k) => x.at(k));
