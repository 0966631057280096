import { binary, unary } from './common.js';
import type { OpDef } from '../op.js';

/** Elementwise arithmetic and math functions (KeOps keopscore/formulas/maths), one entry each. */
export const elementwiseOps: readonly OpDef[] = [
  binary('Add', (a, b) => `(${a} + ${b})`, (a, b) => a + b),
  binary('Subtract', (a, b) => `(${a} - ${b})`, (a, b) => a - b),
  binary('Mult', (a, b) => `(${a} * ${b})`, (a, b) => a * b),
  binary('Divide', (a, b) => `(${a} / ${b})`, (a, b) => a / b),
  unary('Minus', (x) => `(-${x})`, (x) => -x),
  unary('Exp', (x, c) => c.d.call('exp', x), Math.exp),
  unary('Square', (x) => `(${x} * ${x})`, (x) => x * x),
];
