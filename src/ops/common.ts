import { DimensionError } from '../errors.js';
import { compv, type OpDef, type PrintCtx } from './op.js';

/** The vector-Jacobian product slot of an op (see OpDef.vjp). */
export type Vjp = NonNullable<OpDef['vjp']>;

/** Dimension rule of an elementwise binary op: equal dims, or one side of dimension 1 broadcast. */
export function broadcastDim(name: string) {
  return (dims: readonly number[]): number => {
    const [a, b] = dims as [number, number];
    if (a === b || b === 1) return a;
    if (a === 1) return b;
    throw new DimensionError(`${name}: operand dimensions ${a} and ${b} differ (only a dimension-1 operand broadcasts)`);
  };
}

/** An elementwise unary op from a scalar printer and a scalar float64 reference. */
export function unary(
  name: string,
  emit1: (x: string, c: PrintCtx) => string,
  ref1: (x: number) => number,
  vjp?: Vjp,
): OpDef {
  return {
    name,
    vjp,
    arity: 1,
    nParams: 0,
    dim: (dims) => dims[0]!,
    vec: (c) => ({ each: (k) => emit1(c.args[0]!.at(k), c) }),
    ref: (args) => args[0]!.map(ref1),
  };
}

/** An elementwise binary op with scalar broadcasting. */
export function binary(
  name: string,
  emit2: (a: string, b: string, c: PrintCtx) => string,
  ref2: (a: number, b: number) => number,
  vjp?: Vjp,
): OpDef {
  return {
    name,
    vjp,
    arity: 2,
    nParams: 0,
    dim: broadcastDim(name),
    // A dimension-1 operand reads the same component at every k (broadcasting).
    vec: (c) => ({ each: (k) => emit2(c.args[0]!.at(k), c.args[1]!.at(k), c) }),
    ref: (args, _p, dim) => Array.from({ length: dim }, (_, k) => ref2(compv(args[0]!, k), compv(args[1]!, k))),
  };
}

/** Dimension rule of an elementwise n-ary op: every operand has the output dimension D or dimension 1 (broadcast). */
export function broadcastDims(name: string) {
  return (dims: readonly number[]): number => {
    const d = Math.max(1, ...dims);
    if (dims.some((x) => x !== d && x !== 1)) {
      throw new DimensionError(`${name}: operand dimensions ${dims.join(', ')} differ (only a dimension-1 operand broadcasts)`);
    }
    return d;
  };
}

/** An elementwise ternary op with broadcasting of dimension-1 operands. */
export function ternary(
  name: string,
  emit3: (a: string, b: string, x: string, c: PrintCtx) => string,
  ref3: (a: number, b: number, x: number) => number,
  vjp?: Vjp,
): OpDef {
  return {
    name,
    vjp,
    arity: 3,
    nParams: 0,
    dim: broadcastDims(name),
    vec: (c) => ({ each: (k) => emit3(c.args[0]!.at(k), c.args[1]!.at(k), c.args[2]!.at(k), c) }),
    ref: (args, _p, dim) =>
      Array.from({ length: dim }, (_, k) => ref3(compv(args[0]!, k), compv(args[1]!, k), compv(args[2]!, k))),
  };
}
