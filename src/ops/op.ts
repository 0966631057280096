import type { Formula } from '../graph/formula.js';
import type { Ix, Operand } from './loop.js';

/** Scalar math functions a dialect can print; each backend maps them to its own names. */
export type MathFn =
  | 'exp' | 'log' | 'sin' | 'cos' | 'asin' | 'acos' | 'atan' | 'atan2' | 'sqrt' | 'rsqrt'
  | 'abs' | 'sign' | 'floor' | 'ceil' | 'trunc' | 'min' | 'max' | 'pow';

/**
 * How scalar code is printed for one target language. Op emitters only ever use this, so one
 * emitter serves JavaScript and WGSL. Infix arithmetic (`+ - * /`), comparisons (`< <= > >= ==
 * !=`), `&& || !`, parentheses, `x = e;` assignments, `a[i]` indexing, `if (c) { ... } else
 * { ... }` and `while (c) { ... }` blocks are written directly: they read the same in both languages.
 * Indices (loop variables, array positions) are their own type: unsigned integers in WGSL.
 */
export interface Dialect {
  readonly name: 'js' | 'wgsl' | 'wasm';
  /** A float literal. */
  num(v: number): string;
  /** A call of a math function. */
  call(fn: MathFn, ...args: string[]): string;
  /** `cond ? ifTrue : ifFalse`, where `cond` is a boolean expression. */
  select(cond: string, ifTrue: string, ifFalse: string): string;
  /** Declares a mutable float scalar initialised to `expr` (a statement). */
  decl(name: string, expr: string): string;
  /**
   * Optional: an expression equal to the float `expr` that the target's compiler cannot see
   * through, so `(a + b) - a` is not simplified to `b`. Float32 targets (WGSL) define it, and the
   * Sum reduction then compensates (Kahan); float64 JavaScript needs no compensation.
   */
  barrier?(expr: string): string;
  /**
   * Vectors wider than this are computed with loops over their components (arrays in the kernel);
   * narrower ones stay unrolled, one scalar local per component (see the dialects for the measurements).
   */
  readonly unrollMax: number;
  /** An index literal. */
  int(n: number): string;
  /** The opening line of a loop of index variable `k` over [0, n) (closed by `}`). */
  loop(k: string, n: number): string;
  /** Declares a mutable index variable initialised to the index expression `expr`. */
  declIndex(name: string, expr: string): string;
  /** An index expression converted to a float. */
  toFloat(i: string): string;
  /** Declares a float array of n elements, zero-filled (a statement the kernel hoists out of its loops). */
  declArray(name: string, n: number): string;
}

/** What every emitter prints with: a dialect and fresh local names. */
export interface PrintCtx {
  readonly d: Dialect;
  /** A fresh local name, unique within the generated kernel. */
  fresh(hint: string): string;
}

/** What an unrolled emitter receives: its arguments' scalar components as expressions (already named temporaries). */
export interface EmitCtx extends PrintCtx {
  /** `args[a][k]` is component k of argument a. */
  readonly args: readonly (readonly string[])[];
  readonly argDims: readonly number[];
  readonly params: readonly number[];
  /** Output dimension, as computed by the op's `dim` rule. */
  readonly dim: number;
}

/** An emitter returns one expression per output component, optionally after some statements. */
export type Emitted = readonly string[] | { readonly stmts: readonly string[]; readonly out: readonly string[] };
export type Emitter = (ctx: EmitCtx) => Emitted;

/**
 * What a vector emitter receives: its arguments as operands readable at any index (a constant
 * when the kernel unrolls, a loop variable when it loops), so that one emitter prints both.
 */
export interface VecCtx extends PrintCtx {
  readonly args: readonly Operand[];
  readonly argDims: readonly number[];
  readonly params: readonly number[];
  readonly dim: number;
  /** An assignable expression for output component k (for emitters that write their output, `written`). */
  out(k: Ix): string;
}

/**
 * A vector emitter's result, after optional statements: the output components (`out`, for a
 * narrow output), component k as an expression (`each`, after statements it may push to `pre`;
 * the kernel unrolls it or loops over k), or nothing (`written`: the statements assigned `out(k)`).
 */
export type VecEmitted =
  | { readonly stmts?: readonly string[]; readonly out: readonly string[] }
  | { readonly stmts?: readonly string[]; readonly each: (k: Ix, pre: string[]) => string }
  | { readonly stmts: readonly string[]; readonly written: true };
export type VecEmitter = (ctx: VecCtx) => VecEmitted;

/**
 * One operation, declared once: arity, output-dimension rule, code emitter (JS and WGSL through a
 * Dialect), float64 reference evaluator, and the vector-Jacobian product slot for reverse mode.
 */
export interface OpDef {
  /** KeOps name, e.g. `'Exp'`, `'SqDist'`. */
  readonly name: string;
  /** Number of formula arguments. */
  readonly arity: number;
  /** Number of trailing static parameters in the string syntax (`Pow(f, 2)` has 1); -1: variadic, checked by `dim`. */
  readonly nParams: number;
  /** Output dimension from argument dimensions; throws DimensionError naming the op when they do not fit. */
  dim(argDims: readonly number[], params: readonly number[]): number;
  /** Emits code for both backends, unrolled (the WGSL backend may override with `wgsl`); absent for a composite. */
  readonly emit?: Emitter;
  /** Emits code for vectors of any width, with loops over components where they are wide; preferred over `emit`. */
  readonly vec?: VecEmitter;
  /** A composite's definition by other ops: plans expand it before codegen (ops/composite.ts). */
  readonly expand?: (args: readonly Formula[], params: readonly number[]) => Formula;
  /** Optional WGSL-specific emitter (e.g. a polyfill); defaults to `emit`. */
  readonly wgsl?: Emitter;
  /** Independent float64 reference: component values of the output. */
  ref(args: readonly (readonly number[])[], params: readonly number[], dim: number): number[];
  /**
   * Vector-Jacobian product: given the node, its cotangent `g` (a formula of the node's dim),
   * returns one cotangent formula per argument, of that argument's dim (null: a symbolic zero).
   * Every op of the table has one (test/grad/vjp.spec.ts checks them against finite differences);
   * src/grad/formula.ts chains them (KeOps `DiffT`).
   */
  readonly vjp?: (node: Formula & { kind: 'op' }, g: Formula) => readonly (Formula | null)[];
}

/** Helper for emitters: component k of an argument, broadcasting a dimension-1 argument. */
export function comp(arg: readonly string[], k: number): string {
  return arg.length === 1 ? arg[0]! : arg[k]!;
}

/** Helper for refs: component k of an argument value, broadcasting dimension 1. */
export function compv(arg: readonly number[], k: number): number {
  return arg.length === 1 ? arg[0]! : arg[k]!;
}
