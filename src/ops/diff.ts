import { mkConst, type Formula, type OpNode } from '../graph/formula.js';
import { op } from './build.js';

/*
 * Small formula builders for the vector-Jacobian products of the op table. They fold the
 * trivial cases (times 1, constants) so that gradient formulas stay close to what one would
 * write by hand: generated kernels for gradients are then not much larger than the forward ones.
 * Only called when a gradient is built, never at import time (ops/index -> diff -> build is a cycle).
 */

export type Cot = Formula | null;

export const cst = (v: number): Formula => mkConst(v);

const isConst = (f: Formula, v?: number): boolean => f.kind === 'const' && (v === undefined || f.value === v);
const constOf = (f: Formula): number => (f.kind === 'const' ? f.value : NaN);

/** A zero vector of dimension d, for a place where a value (not a symbolic zero) is needed. */
export function zeros(d: number): Formula {
  return d === 1 ? mkConst(0) : op('SumT', [mkConst(0)], [d]);
}

/** `a + b`, treating null as a symbolic zero. */
export function add(a: Cot, b: Cot): Cot {
  if (a === null) return b;
  if (b === null) return a;
  if (isConst(a) && isConst(b)) return mkConst(constOf(a) + constOf(b));
  return op('Add', [a, b]);
}

export function sub(a: Formula, b: Formula): Formula {
  if (isConst(a) && isConst(b)) return mkConst(constOf(a) - constOf(b));
  if (isConst(b, 0)) return a;
  return op('Subtract', [a, b]);
}

export function neg(a: Formula): Formula {
  if (a.kind === 'const') return mkConst(-a.value);
  if (a.kind === 'op' && a.op === 'Minus') return a.args[0]!;
  return op('Minus', [a]);
}

/** `a * b` with broadcasting; a factor 1 disappears (only where it does not change the dimension). */
export function mul(a: Formula, b: Formula): Formula {
  if (isConst(a) && isConst(b)) return mkConst(constOf(a) * constOf(b));
  if (isConst(a, 1)) return b;
  if (isConst(b, 1)) return a;
  if (isConst(a, -1)) return neg(b);
  if (isConst(b, -1)) return neg(a);
  return op('Mult', [a, b]);
}

export function div(a: Formula, b: Formula): Formula {
  if (isConst(b, 1)) return a;
  return op('Divide', [a, b]);
}

export const call = (name: string, ...args: Formula[]): Formula => op(name, args);

/**
 * Reduces a cotangent of dimension `g.dim` to an argument of dimension `d`: the identity when
 * they agree, the sum over components for a broadcast dimension-1 argument (the adjoint of broadcasting).
 */
export function sumTo(g: Formula, d: number): Formula {
  if (g.dim === d) return g;
  if (d !== 1) throw new Error(`internal: cannot reduce a cotangent of dimension ${g.dim} to ${d}`);
  // Sum(a * b) is Scalprod(a, b), one op instead of two.
  if (g.kind === 'op' && g.op === 'Mult' && g.params.length === 0) return op('Scalprod', [g.args[0]!, g.args[1]!]);
  return op('Sum', [g]);
}

/** A cotangent `c` for an argument of dimension d: summed when d = 1, copied when c is a scalar. */
export function fitTo(c: Formula, d: number): Formula {
  return c.dim === 1 ? widen(c, d) : sumTo(c, d);
}

/** Cotangent of an elementwise argument: `g * partial`, reduced to the argument's dimension. */
export function through(g: Formula, partial: Formula, argDim: number): Formula {
  return sumTo(mul(g, partial), argDim);
}

/** x^m for a static integer m, with the small cases written out. */
export function powOf(x: Formula, m: number): Formula {
  if (m === 0) return mkConst(1);
  if (m === 1) return x;
  if (m === 2) return op('Square', [x]);
  return op('Pow', [x], [m]);
}

/** `x` as a vector of dimension d (dimension-1 values are copied d times). */
export function widen(x: Formula, d: number): Formula {
  return x.dim === d ? x : op('SumT', [x], [d]);
}
