import { KernelflowError } from '../../errors.js';
import { binary, ternary, unary } from './common.js';
import type { EmitCtx, OpDef } from '../op.js';

/** Throws unless every static parameter of `name` is an integer (KeOps takes C ints there). */
function integerParams(name: string, params: readonly number[]): void {
  for (const p of params) {
    if (!Number.isInteger(p)) throw new KernelflowError('ARGUMENT', `${name}: parameter ${p} must be an integer`);
  }
}

/** An elementwise unary op with integer static parameters; `emit1` may push statements to `stmts`. */
function unaryInt(
  name: string,
  nParams: number,
  emit1: (x: string, p: readonly number[], c: EmitCtx, stmts: string[]) => string,
  ref1: (x: number, p: readonly number[]) => number,
): OpDef {
  return {
    name,
    arity: 1,
    nParams,
    dim: (dims, params) => {
      integerParams(name, params);
      return dims[0]!;
    },
    emit: (c) => {
      const stmts: string[] = [];
      const out = c.args[0]!.map((x) => emit1(x, c.params, c, stmts));
      return { stmts, out };
    },
    ref: (args, p) => args[0]!.map((x) => ref1(x, p)),
  };
}

/** `x^m` for a static integer m, unrolled by square-and-multiply (no pow call: WGSL pow needs x > 0). */
function emitIntPow(x: string, m: number, c: EmitCtx, stmts: string[]): string {
  const one = c.d.num(1);
  if (m === 0) return one;
  let n = Math.abs(m);
  let base = x;
  let acc: string | undefined;
  for (;;) {
    if (n % 2 === 1) acc = acc === undefined ? base : `(${acc} * ${base})`;
    n = Math.floor(n / 2);
    if (n === 0) break;
    const sq = c.fresh('sq');
    stmts.push(c.d.decl(sq, `(${base} * ${base})`));
    base = sq;
  }
  return m < 0 ? `(${one} / ${acc!})` : acc!;
}

/** 1.0 where `cond` holds, else 0.0. */
const indicator = (cond: string, c: EmitCtx): string => c.d.select(cond, c.d.num(1), c.d.num(0));

/** Elementwise arithmetic and math functions (KeOps keopscore/formulas/maths), one entry each. */
export const elementwiseOps: readonly OpDef[] = [
  binary('Add', (a, b) => `(${a} + ${b})`, (a, b) => a + b),
  binary('Subtract', (a, b) => `(${a} - ${b})`, (a, b) => a - b),
  binary('Mult', (a, b) => `(${a} * ${b})`, (a, b) => a * b),
  binary('Divide', (a, b) => `(${a} / ${b})`, (a, b) => a / b),
  unary('Minus', (x) => `(-${x})`, (x) => -x),
  unary('Exp', (x, c) => c.d.call('exp', x), Math.exp),
  unary('Square', (x) => `(${x} * ${x})`, (x) => x * x),
  unary('Log', (x, c) => c.d.call('log', x), Math.log),
  unary('Sin', (x, c) => c.d.call('sin', x), Math.sin),
  unary('Cos', (x, c) => c.d.call('cos', x), Math.cos),
  unary('Asin', (x, c) => c.d.call('asin', x), Math.asin),
  unary('Acos', (x, c) => c.d.call('acos', x), Math.acos),
  unary('Atan', (x, c) => c.d.call('atan', x), Math.atan),
  binary('Atan2', (y, x, c) => c.d.call('atan2', y, x), Math.atan2),
  unary('Sqrt', (x, c) => c.d.call('sqrt', x), Math.sqrt),
  // KeOps defines Rsqrt(0) = 0 (not +inf), so norms of zero vectors stay finite.
  unary(
    'Rsqrt',
    (x, c) => c.d.select(`(${x} == ${c.d.num(0)})`, c.d.num(0), c.d.call('rsqrt', x)),
    (x) => (x === 0 ? 0 : 1 / Math.sqrt(x)),
  ),
  unaryInt('Pow', 1, (x, p, c, stmts) => emitIntPow(x, p[0]!, c, stmts), (x, p) => Math.pow(x, p[0]!)),
  binary('Powf', (a, b, c) => c.d.call('pow', a, b), Math.pow),
  unary('Inv', (x, c) => `(${c.d.num(1)} / ${x})`, (x) => 1 / x),
  // KeOps IntInv(n) is the rational constant 1/n (RatCst), not a function of a formula: no argument.
  {
    name: 'IntInv',
    arity: 0,
    nParams: 1,
    dim: (_dims, params) => {
      integerParams('IntInv', params);
      if (params[0] === 0) throw new KernelflowError('ARGUMENT', 'IntInv: parameter must be a nonzero integer');
      return 1;
    },
    emit: (c) => [c.d.num(1 / c.params[0]!)],
    ref: (_args, p) => [1 / p[0]!],
  },
  unary('Abs', (x, c) => c.d.call('abs', x), Math.abs),
  // Printed with selects rather than sign(): KeOps gives 0 for -0 and NaN.
  unary(
    'Sign',
    (x, c) =>
      c.d.select(`(${x} > ${c.d.num(0)})`, c.d.num(1), c.d.select(`(${x} < ${c.d.num(0)})`, c.d.num(-1), c.d.num(0))),
    (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
  ),
  // Step(0) = 1 in KeOps (x < 0 ? 0 : 1).
  unary('Step', (x, c) => c.d.select(`(${x} < ${c.d.num(0)})`, c.d.num(0), c.d.num(1)), (x) => (x < 0 ? 0 : 1)),
  unary('ReLU', (x, c) => c.d.select(`(${x} < ${c.d.num(0)})`, c.d.num(0), x), (x) => (x < 0 ? 0 : x)),
  unary('Floor', (x, c) => c.d.call('floor', x), Math.floor),
  // Round(f, d) = round(f * 10^d) / 10^d with C round (ties away from zero); via trunc since WGSL round() ties to even.
  unaryInt(
    'Round',
    1,
    (x, p, c, stmts) => {
      const d = p[0]!;
      const scale = 10 ** d;
      let y = x;
      if (d !== 0) {
        y = c.fresh('rs');
        stmts.push(c.d.decl(y, `(${x} * ${c.d.num(scale)})`));
      }
      const t = c.fresh('rt');
      stmts.push(c.d.decl(t, c.d.call('trunc', y)));
      const frac = `(${y} - ${t})`;
      const step = c.d.select(
        `(${frac} >= ${c.d.num(0.5)})`,
        c.d.num(1),
        c.d.select(`(${frac} <= ${c.d.num(-0.5)})`, c.d.num(-1), c.d.num(0)),
      );
      const r = `(${t} + ${step})`;
      return d === 0 ? r : `(${r} / ${c.d.num(scale)})`;
    },
    (x, p) => {
      const d = p[0]!;
      const scale = 10 ** d;
      const y = d === 0 ? x : x * scale;
      const r = Math.sign(y) * Math.round(Math.abs(y));
      return d === 0 ? r : r / scale;
    },
  ),
  // KeOps Mod(x, n, d) = x - n * floor((x - d) / n): result in [d, d + n) for n > 0 (floor-based, unlike JS/WGSL %).
  ternary(
    'Mod',
    (x, n, d, c) => `(${x} - (${n} * ${c.d.call('floor', `((${x} - ${d}) / ${n})`)}))`,
    (x, n, d) => x - n * Math.floor((x - d) / n),
  ),
  ternary(
    'Clamp',
    (x, a, b, c) => c.d.select(`(${x} < ${a})`, a, c.d.select(`(${x} > ${b})`, b, x)),
    (x, a, b) => (x < a ? a : x > b ? b : x),
  ),
  unaryInt(
    'ClampInt',
    2,
    (x, p, c) => {
      const a = c.d.num(p[0]!);
      const b = c.d.num(p[1]!);
      return c.d.select(`(${x} < ${a})`, a, c.d.select(`(${x} > ${b})`, b, x));
    },
    (x, [a, b]) => (x < a! ? a! : x > b! ? b! : x),
  ),
  // KeOps IfElse(f, a, b) = a where f >= 0, else b.
  ternary('IfElse', (f, a, b, c) => c.d.select(`(${f} >= ${c.d.num(0)})`, a, b), (f, a, b) => (f >= 0 ? a : b)),
  binary('Equal', (a, b, c) => indicator(`(${a} == ${b})`, c), (a, b) => (a === b ? 1 : 0)),
  binary('NotEqual', (a, b, c) => indicator(`(${a} != ${b})`, c), (a, b) => (a !== b ? 1 : 0)),
  binary('LessThan', (a, b, c) => indicator(`(${a} < ${b})`, c), (a, b) => (a < b ? 1 : 0)),
  binary('LessOrEqual', (a, b, c) => indicator(`(${a} <= ${b})`, c), (a, b) => (a <= b ? 1 : 0)),
  // x log x extended by continuity: 0 at 0.
  unary(
    'XLogX',
    (x, c) => c.d.select(`(${x} == ${c.d.num(0)})`, c.d.num(0), `(${x} * ${c.d.call('log', x)})`),
    (x) => (x === 0 ? 0 : x * Math.log(x)),
  ),
  // sin(x)/x extended by continuity: 1 at 0.
  unary(
    'SinXDivX',
    (x, c) => c.d.select(`(${x} == ${c.d.num(0)})`, c.d.num(1), `(${c.d.call('sin', x)} / ${x})`),
    (x) => (x === 0 ? 1 : Math.sin(x) / x),
  ),
];
