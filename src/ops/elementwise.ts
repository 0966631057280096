import { KernelflowError } from '../errors.js';
import type { Formula, OpNode } from '../graph/formula.js';
import { binary, ternary, unary, type Vjp } from './common.js';
import type { OpDef, PrintCtx } from './op.js';
import { add, call, cst, div, mul, neg, powOf, sub, sumTo, through } from './diff.js';

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
  emit1: (x: string, p: readonly number[], c: PrintCtx, stmts: string[]) => string,
  ref1: (x: number, p: readonly number[]) => number,
  vjp: Vjp,
): OpDef {
  return {
    name,
    vjp,
    arity: 1,
    nParams,
    dim: (dims, params) => {
      integerParams(name, params);
      return dims[0]!;
    },
    vec: (c) => ({ each: (k, pre) => emit1(c.args[0]!.at(k), c.params, c, pre) }),
    ref: (args, p) => args[0]!.map((x) => ref1(x, p)),
  };
}

/** `x^m` for a static integer m, unrolled by square-and-multiply (no pow call: WGSL pow needs x > 0). */
function emitIntPow(x: string, m: number, c: PrintCtx, stmts: string[]): string {
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

/** vjp of a unary elementwise op from its derivative `d(x, node)`: g * f'(x). */
const chain = (d: (x: Formula, n: OpNode) => Formula): Vjp => (n, g) => [mul(g, d(n.args[0]!, n))];
/** vjp of an op that is piecewise constant in every argument: zero almost everywhere. */
const flat: Vjp = (n) => n.args.map(() => null);

/** 1.0 where `cond` holds, else 0.0. */
const indicator = (cond: string, c: PrintCtx): string => c.d.select(cond, c.d.num(1), c.d.num(0));

/** A value the WGSL driver may not simplify through: sqrt(x) * sqrt(x) became x (and +inf for x = -inf, not NaN; measured on lavapipe, issue 12). */
const opaque = (e: string, c: PrintCtx): string => (c.d.barrier === undefined ? e : c.d.barrier(e));

/** Elementwise arithmetic and math functions (KeOps keopscore/formulas/maths), one entry each. */
export const elementwiseOps: readonly OpDef[] = [
  // A dimension-1 operand of a broadcast op gets the sum of the cotangent (sumTo).
  binary('Add', (a, b) => `(${a} + ${b})`, (a, b) => a + b, (n, g) => [sumTo(g, n.args[0]!.dim), sumTo(g, n.args[1]!.dim)]),
  binary('Subtract', (a, b) => `(${a} - ${b})`, (a, b) => a - b, (n, g) => [sumTo(g, n.args[0]!.dim), sumTo(neg(g), n.args[1]!.dim)]),
  binary('Mult', (a, b) => `(${a} * ${b})`, (a, b) => a * b, (n, g) => {
    const [a, b] = n.args as [Formula, Formula];
    return [through(g, b, a.dim), through(g, a, b.dim)];
  }),
  // d(a/b)/db = -(a/b)/b: reuses the node's value.
  binary('Divide', (a, b) => `(${a} / ${b})`, (a, b) => a / b, (n, g) => {
    const [a, b] = n.args as [Formula, Formula];
    return [sumTo(div(g, b), a.dim), sumTo(neg(div(mul(g, n), b)), b.dim)];
  }),
  unary('Minus', (x) => `(-${x})`, (x) => -x, (_n, g) => [neg(g)]),
  unary('Exp', (x, c) => c.d.call('exp', x), Math.exp, chain((_x, n) => n)),
  unary('Square', (x) => `(${x} * ${x})`, (x) => x * x, chain((x) => mul(cst(2), x))),
  unary('Log', (x, c) => c.d.call('log', x), Math.log, (n, g) => [div(g, n.args[0]!)]),
  unary('Sin', (x, c) => c.d.call('sin', x), Math.sin, chain((x) => call('Cos', x))),
  unary('Cos', (x, c) => c.d.call('cos', x), Math.cos, chain((x) => neg(call('Sin', x)))),
  unary('Asin', (x, c) => c.d.call('asin', x), Math.asin, chain((x) => call('Rsqrt', sub(cst(1), call('Square', x))))),
  unary('Acos', (x, c) => c.d.call('acos', x), Math.acos, chain((x) => neg(call('Rsqrt', sub(cst(1), call('Square', x)))))),
  unary('Atan', (x, c) => c.d.call('atan', x), Math.atan, chain((x) => call('Inv', add(cst(1), call('Square', x))!))),
  binary('Atan2', (y, x, c) => c.d.call('atan2', y, x), Math.atan2, (n, g) => {
    const [y, x] = n.args as [Formula, Formula];
    const r2 = add(call('Square', y), call('Square', x))!;
    return [through(g, div(x, r2), y.dim), through(g, neg(div(y, r2)), x.dim)];
  }),
  // KeOps: Sqrt' = Rsqrt / 2, so the derivative at 0 is 0 (Rsqrt(0) = 0), not +inf.
  unary('Sqrt', (x, c) => opaque(c.d.call('sqrt', x), c), Math.sqrt, chain((x) => mul(cst(0.5), call('Rsqrt', x)))),
  // KeOps defines Rsqrt(0) = 0 (not +inf), so norms of zero vectors stay finite.
  unary(
    'Rsqrt',
    (x, c) => opaque(c.d.select(`(${x} == ${c.d.num(0)})`, c.d.num(0), c.d.call('rsqrt', x)), c),
    (x) => (x === 0 ? 0 : 1 / Math.sqrt(x)),
    // KeOps: Rsqrt' = -Rsqrt^3 / 2 (0 at 0, like the value).
    chain((_x, n) => mul(cst(-0.5), powOf(n, 3))),
  ),
  unaryInt('Pow', 1, (x, p, c, stmts) => emitIntPow(x, p[0]!, c, stmts), (x, p) => Math.pow(x, p[0]!), (n, g) => {
    const m = n.params[0]!;
    return [m === 0 ? null : mul(g, mul(cst(m), powOf(n.args[0]!, m - 1)))];
  }),
  // a^b: d/da = b a^(b-1), d/db = log(a) a^b (KeOps Powf = Exp(b Log a)).
  binary('Powf', (a, b, c) => c.d.call('pow', a, b), Math.pow, (n, g) => {
    const [a, b] = n.args as [Formula, Formula];
    return [through(g, mul(b, call('Powf', a, sub(b, cst(1)))), a.dim), through(g, mul(call('Log', a), n), b.dim)];
  }),
  unary('Inv', (x, c) => `(${c.d.num(1)} / ${x})`, (x) => 1 / x, chain((_x, n) => neg(call('Square', n)))),
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
    // A constant: no argument to differentiate.
    vjp: () => [],
  },
  unary('Abs', (x, c) => c.d.call('abs', x), Math.abs, chain((x) => call('Sign', x))),
  // Printed with selects rather than sign(): KeOps gives 0 for -0 and NaN.
  unary(
    'Sign',
    (x, c) =>
      c.d.select(`(${x} > ${c.d.num(0)})`, c.d.num(1), c.d.select(`(${x} < ${c.d.num(0)})`, c.d.num(-1), c.d.num(0))),
    (x) => (x > 0 ? 1 : x < 0 ? -1 : 0),
    flat,
  ),
  // Step(0) = 1 in KeOps (x < 0 ? 0 : 1).
  unary('Step', (x, c) => c.d.select(`(${x} < ${c.d.num(0)})`, c.d.num(0), c.d.num(1)), (x) => (x < 0 ? 0 : 1), flat),
  // KeOps: ReLU' = Step, so 1 at the kink 0.
  unary('ReLU', (x, c) => c.d.select(`(${x} < ${c.d.num(0)})`, c.d.num(0), x), (x) => (x < 0 ? 0 : x), chain((x) => call('Step', x))),
  unary('Floor', (x, c) => c.d.call('floor', x), Math.floor, flat),
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
    flat,
  ),
  // KeOps Mod(x, n, d) = x - n * floor((x - d) / n): result in [d, d + n) for n > 0 (floor-based, unlike JS/WGSL %).
  ternary(
    'Mod',
    (x, n, d, c) => `(${x} - (${n} * ${c.d.call('floor', `((${x} - ${d}) / ${n})`)}))`,
    (x, n, d) => x - n * Math.floor((x - d) / n),
    // As KeOps (through x - n Floor((x - d) / n)): 1 for x, -Floor(...) for n, 0 for the offset d.
    (node, g) => {
      const [x, n, d] = node.args as [Formula, Formula, Formula];
      return [sumTo(g, x.dim), through(g, neg(call('Floor', div(sub(x, d), n))), n.dim), null];
    },
  ),
  ternary(
    'Clamp',
    (x, a, b, c) => c.d.select(`(${x} < ${a})`, a, c.d.select(`(${x} > ${b})`, b, x)),
    (x, a, b) => (x < a ? a : x > b ? b : x),
    // The cotangent goes to whichever operand the emitter selected (a is tested first, as above).
    (n, g) => {
      const [x, a, b] = n.args as [Formula, Formula, Formula];
      const below = call('LessThan', x, a);
      const above = mul(call('LessThan', b, x), sub(cst(1), below));
      return [through(g, sub(sub(cst(1), below), above), x.dim), through(g, below, a.dim), through(g, above, b.dim)];
    },
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
    (n, g) => [mul(g, mul(call('LessOrEqual', cst(n.params[0]!), n.args[0]!), call('LessOrEqual', n.args[0]!, cst(n.params[1]!))))],
  ),
  // KeOps IfElse(f, a, b) = a where f >= 0, else b.
  ternary('IfElse', (f, a, b, c) => c.d.select(`(${f} >= ${c.d.num(0)})`, a, b), (f, a, b) => (f >= 0 ? a : b), (n, g) => {
    const [f, a, b] = n.args as [Formula, Formula, Formula];
    const taken = call('Step', f);
    return [null, through(g, taken, a.dim), through(g, sub(cst(1), taken), b.dim)];
  }),
  binary('Equal', (a, b, c) => indicator(`(${a} == ${b})`, c), (a, b) => (a === b ? 1 : 0), flat),
  // Not (a == b), not a != b: a WGSL driver assuming no NaN compiles != as ordered (NaN != 1 was 0 on lavapipe).
  binary('NotEqual', (a, b, c) => c.d.select(`(${a} == ${b})`, c.d.num(0), c.d.num(1)), (a, b) => (a !== b ? 1 : 0), flat),
  binary('LessThan', (a, b, c) => indicator(`(${a} < ${b})`, c), (a, b) => (a < b ? 1 : 0), flat),
  binary('LessOrEqual', (a, b, c) => indicator(`(${a} <= ${b})`, c), (a, b) => (a <= b ? 1 : 0), flat),
  // x log x extended by continuity: 0 at 0.
  unary(
    'XLogX',
    (x, c) => c.d.select(`(${x} == ${c.d.num(0)})`, c.d.num(0), `(${x} * ${c.d.call('log', x)})`),
    (x) => (x === 0 ? 0 : x * Math.log(x)),
    chain((x) => add(call('Log', x), cst(1))!),
  ),
  // sin(x)/x extended by continuity: 1 at 0.
  unary(
    'SinXDivX',
    (x, c) => c.d.select(`(${x} == ${c.d.num(0)})`, c.d.num(1), `(${c.d.call('sin', x)} / ${x})`),
    (x) => (x === 0 ? 1 : Math.sin(x) / x),
    // KeOps: (cos x - sin x / x) / x; dividing by x + (x == 0) gives the limit 0 at 0 instead of 0/0.
    chain((x, n) => div(sub(call('Cos', x), n), add(x, call('Equal', x, cst(0)))!)),
  ),
];
