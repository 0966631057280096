import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { vjpFormula, vjpSeeds } from '../../src/ops/vjp.js';
import { mkConst, mkVar, type Cat, type Formula, type VarNode } from '../../src/graph/formula.js';
import { printFormula } from '../../src/graph/print.js';
import { op } from '../../src/ops/build.js';
import { compv } from '../../src/ops/op.js';
import { encodeKronParams, encodeTensorDotParams as td } from '../../src/ops/linalg.js';
import { OPS } from '../../src/ops/table.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { parseAliases, parseFormula } from '../../src/api/parse.js';
import { evalGenerated } from '../helpers/generated.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * Every op's vector-Jacobian product against central finite differences of its float64
 * reference (Richardson-extrapolated, so the truncation error is far below the 1e-6 bound), at
 * points drawn away from kinks and discontinuities.
 */

/** Ops whose every argument has a zero (or no) derivative: their vjp returns only nulls. */
const NON_DIFFERENTIABLE = [
  'Sign', 'Step', 'Floor', 'Round', 'Equal', 'NotEqual', 'LessThan', 'LessOrEqual', 'ArgMax', 'ArgMin', 'OneHot',
  // Second derivatives of soft-DTW: not provided (documented in special.ts).
  'GradSoftDTW_SqDist',
];
/** Arguments not differentiated although the op depends on them smoothly (documented in the op's entry). */
const NOT_DIFFERENTIATED: Readonly<Record<string, readonly number[]>> = { BSpline: [0] };

type Gen = (r: () => number, dim: number, arg: number) => number[];
interface Setting {
  readonly dims: readonly number[];
  readonly params?: readonly number[];
  readonly gen?: Gen;
  /** Rejects draws too close to a kink (values by argument, broadcast with compv). */
  readonly valid?: (v: readonly (readonly number[])[]) => boolean;
}

const away = (lo: number, hi: number): Gen => (r, d) => uniform(r, d, lo, hi).map((v) => (r() < 0.5 ? -v : v));
const inRange = (lo: number, hi: number): Gen => (r, d) => uniform(r, d, lo, hi);
const perArg = (...gens: Gen[]): Gen => (r, d, a) => gens[a]!(r, d, a);
const unaryDims = [[1], [3]];
const binaryDims = [[1, 1], [3, 3], [3, 1], [1, 3]];
const ternaryDims = [[1, 1, 1], [3, 3, 3], [3, 1, 1], [1, 3, 1], [3, 1, 3]];
const each = (dims: readonly (readonly number[])[], extra: Omit<Setting, 'dims'> = {}): Setting[] => dims.map((d) => ({ dims: d, ...extra }));
const width = (v: readonly (readonly number[])[]): number => Math.max(...v.map((a) => a.length));
const comps = (v: readonly (readonly number[])[], k: number): number[] => v.map((a) => compv(a, k));
const everyComp = (v: readonly (readonly number[])[], ok: (c: number[]) => boolean): boolean =>
  Array.from({ length: width(v) }, (_, k) => ok(comps(v, k))).every(Boolean);
const frac = (x: number): number => x - Math.floor(x);
const sortedGap = (xs: readonly number[], gap: number): boolean => {
  const s = [...xs].sort((a, b) => a - b);
  return s.every((v, k) => k === 0 || v - s[k - 1]! > gap);
};

/** Sorted distinct knots in [-1, 1]; x inside, away from every knot. */
const splineGen: Gen = (r, d, a) => (a === 1 ? uniform(r, 1, -0.9, 0.9) : uniform(r, d, -1, 1).sort((p, q) => p - q));
const splineValid = (v: readonly (readonly number[])[]): boolean =>
  sortedGap(v[0]!, 0.05) && v[0]!.every((t) => Math.abs(t - v[1]![0]!) > 0.02);

const CASES: Readonly<Record<string, readonly Setting[]>> = {
  Add: each(binaryDims),
  Subtract: each(binaryDims),
  Mult: each(binaryDims),
  Divide: each(binaryDims, { gen: perArg(inRange(-1, 1), away(0.3, 1.5)) }),
  Minus: each(unaryDims),
  Exp: each(unaryDims),
  Square: each(unaryDims),
  Log: each(unaryDims, { gen: inRange(0.2, 2) }),
  Sin: each(unaryDims, { gen: inRange(-3, 3) }),
  Cos: each(unaryDims, { gen: inRange(-3, 3) }),
  Asin: each(unaryDims, { gen: inRange(-0.8, 0.8) }),
  Acos: each(unaryDims, { gen: inRange(-0.8, 0.8) }),
  Atan: each(unaryDims, { gen: inRange(-3, 3) }),
  Atan2: each(binaryDims, { gen: away(0.2, 1) }),
  Sqrt: each(unaryDims, { gen: inRange(0.2, 2) }),
  Rsqrt: each(unaryDims, { gen: inRange(0.2, 2) }),
  Pow: [3, -2, 1, 0, 2, 5].flatMap((p) => each(unaryDims, { params: [p], gen: away(0.3, 1.5) })),
  Powf: each(binaryDims, { gen: perArg(inRange(0.3, 2), inRange(-1.5, 1.5)) }),
  Inv: each(unaryDims, { gen: away(0.3, 2) }),
  IntInv: [{ dims: [], params: [3] }, { dims: [], params: [-2] }],
  Abs: each(unaryDims, { gen: away(0.1, 1) }),
  Sign: each(unaryDims),
  Step: each(unaryDims),
  ReLU: each(unaryDims, { gen: away(0.1, 1) }),
  Floor: each(unaryDims),
  Round: each(unaryDims, { params: [1] }),
  Mod: each(ternaryDims, {
    gen: perArg(inRange(-3, 3), inRange(0.7, 1.5), inRange(-0.5, 0.5)),
    valid: (v) => everyComp(v, ([x, n, d]) => frac((x! - d!) / n!) > 0.05 && frac((x! - d!) / n!) < 0.95),
  }),
  Clamp: each(ternaryDims, {
    gen: perArg(inRange(-1.5, 1.5), inRange(-1, -0.2), inRange(0.2, 1)),
    valid: (v) => everyComp(v, ([x, a, b]) => Math.abs(x! - a!) > 0.05 && Math.abs(x! - b!) > 0.05),
  }),
  ClampInt: [[-1, 1], [0, 2]].flatMap((p) =>
    each(unaryDims, { params: p, gen: inRange(-2, 3), valid: (v) => v[0]!.every((x) => p.every((q) => Math.abs(x - q) > 0.05)) }),
  ),
  IfElse: each(ternaryDims, { gen: perArg(away(0.1, 1), inRange(-1, 1), inRange(-1, 1)) }),
  Equal: each(binaryDims),
  NotEqual: each(binaryDims),
  LessThan: each(binaryDims),
  LessOrEqual: each(binaryDims),
  XLogX: each(unaryDims, { gen: inRange(0.2, 2) }),
  SinXDivX: each(unaryDims, { gen: away(0.2, 3) }),
  Scalprod: each([[3, 3], [1, 3], [3, 1], [1, 1]]),
  Sum: each([[1], [4]]),
  Max: each([[1], [4]], { valid: (v) => sortedGap(v[0]!, 0.05) }),
  Min: each([[1], [4]], { valid: (v) => sortedGap(v[0]!, 0.05) }),
  ArgMax: each([[1], [4]]),
  ArgMin: each([[1], [4]]),
  SumT: [{ dims: [1], params: [3] }, { dims: [1], params: [1] }],
  SqNorm2: each([[1], [3]]),
  Norm2: each([[1], [3]], { gen: away(0.2, 1) }),
  Normalize: each([[1], [3]], { gen: away(0.2, 1) }),
  SqDist: each([[3, 3], [1, 3], [3, 1], [1, 1]]),
  SqNormIso: each([[1, 3], [2, 3], [1, 1]]),
  SqNormDiag: each([[3, 3], [1, 3], [3, 1]]),
  SymSqNorm: each([[9, 3], [1, 1], [4, 2]]),
  WeightedSqNorm: each([[1, 3], [3, 3], [9, 3], [1, 1]]),
  WeightedSqDist: each([[1, 3, 3], [3, 3, 3], [9, 3, 3], [9, 3, 1], [3, 1, 3]]),
  Concat: each([[2, 3], [1, 1]]),
  Elem: [{ dims: [4], params: [0] }, { dims: [4], params: [3] }, { dims: [1], params: [0] }],
  ElemT: [{ dims: [1], params: [4, 2] }, { dims: [1], params: [1, 0] }],
  Extract: [{ dims: [5], params: [1, 3] }, { dims: [5], params: [0, 5] }],
  ExtractT: [{ dims: [3], params: [1, 5] }, { dims: [3], params: [0, 3] }],
  OneHot: [{ dims: [1], params: [4], gen: inRange(0.2, 2.3) }],
  MatVecMult: each([[6, 2], [12, 4], [3, 3], [5, 1]]),
  VecMatMult: each([[2, 6], [4, 12], [3, 3], [1, 5]]),
  TensorProd: each([[1, 1], [2, 3], [4, 1], [3, 5]]),
  TensorDot: [
    { dims: [4, 4], params: td([2, 2], [2, 2], [1], [0]) },
    { dims: [24, 6], params: td([2, 3, 4], [3, 2], [1, 0], [0, 1]) },
    { dims: [24, 20], params: td([2, 3, 4], [4, 5], [2], [0], [1, 0, 2]) },
    { dims: [6, 4], params: td([2, 3], [4], [], []) },
    { dims: [6, 6], params: td([2, 3], [3, 2], [], [], [3, 0, 2, 1]) },
    { dims: [5, 5], params: td([5], [5], [0], [0]) },
    { dims: [12, 6], params: td([3, 4], [2, 3], [0], [1], [1, 0]) },
    { dims: [4, 4], params: td([2, 2], [2, 2], [0, 1], [1, 0]) },
  ],
  Kron: [
    { dims: [4, 4], params: encodeKronParams([2, 2], [2, 2]) },
    { dims: [6, 8], params: encodeKronParams([2, 3], [4, 2]) },
    { dims: [3, 2], params: encodeKronParams([3], [2]) },
    { dims: [12, 6], params: encodeKronParams([1, 3, 4], [2, 1, 3]) },
  ],
  BSpline: [0, 1, 2, 3].map((p) => ({ dims: [7, 1], params: [p], gen: splineGen, valid: splineValid })),
  SoftDTW_SqDist: each([[1, 1, 1], [3, 2, 1], [4, 5, 1], [2, 6, 1]], { gen: perArg(inRange(-1, 1), inRange(-1, 1), inRange(0.3, 1)) }),
  GradSoftDTW_SqDist: each([[3, 2, 1]], { gen: perArg(inRange(-1, 1), inRange(-1, 1), inRange(0.3, 1)) }),
};

const argVars = (dims: readonly number[]): VarNode[] => dims.map((d, i) => mkVar(i, d, (i % 3) as Cat));

function draw(r: () => number, s: Setting): number[][] {
  for (let tries = 0; tries < 1000; tries++) {
    const v = s.dims.map((d, a) => (s.gen ?? inRange(-1, 1))(r, d, a));
    if (s.valid === undefined || s.valid(v)) return v;
  }
  throw new Error(`no valid draw for ${JSON.stringify(s)}`);
}

/** Richardson-extrapolated central difference of phi along component k of argument a. */
function fd(phi: (v: number[][]) => number, v: readonly (readonly number[])[], a: number, k: number, h = 1e-3): number {
  const at = (t: number): number => {
    const w = v.map((x) => [...x]);
    w[a]![k]! += t;
    return phi(w);
  };
  const d = (s: number): number => (at(s) - at(-s)) / (2 * s);
  return (4 * d(h / 2) - d(h)) / 3;
}

test('every op of the table has vjp cases here, and every case names an op', () => {
  for (const name of OPS.keys()) {
    assert.ok(CASES[name] !== undefined, `no vjp test case for ${name}`);
    assert.ok(OPS.get(name)!.vjp !== undefined, `${name} has no vjp entry`);
  }
  for (const name of Object.keys(CASES)) assert.ok(OPS.has(name), `case for unknown op ${name}`);
  for (const name of NON_DIFFERENTIABLE) assert.ok(OPS.has(name), `unknown op ${name} listed as non-differentiable`);
});

for (const [name, def] of OPS) {
  test(`${name}: vjp agrees with central finite differences of the float64 reference`, () => {
    const r = rng(name.split('').reduce((h, ch) => (h * 31 + ch.charCodeAt(0)) >>> 0, 17));
    for (const s of CASES[name]!) {
      const xs = argVars(s.dims);
      const f = op(name, xs, s.params ?? []);
      const gVar = mkVar(xs.length, f.dim, 0);
      const parts = def.vjp!(f, gVar);
      assert.is(parts.length, def.arity, `${name}: one cotangent per argument`);
      if (NON_DIFFERENTIABLE.includes(name)) {
        assert.ok(parts.every((p) => p === null), `${name} is listed as non-differentiable`);
        continue;
      }
      parts.forEach((p, a) => assert.ok(p === null || p.dim === xs[a]!.dim, `${name}: cotangent ${a} has dimension ${p?.dim}`));
      for (let trial = 0; trial < 4; trial++) {
        const v = draw(r, s);
        const gv = uniform(r, f.dim);
        const phi = (w: number[][]): number =>
          evaluateReference(f, (x) => w[x.index]!).reduce((acc, y, k) => acc + y * gv[k]!, 0);
        const value = (x: VarNode): readonly number[] => (x.index < xs.length ? v[x.index]! : gv);
        xs.forEach((x, a) => {
          if (NOT_DIFFERENTIATED[name]?.includes(a)) {
            assert.is(parts[a], null, `${name}: argument ${a} is documented as not differentiated`);
            return;
          }
          const grad = vjpFormula(f, x, gVar);
          const got = grad === null ? new Array<number>(x.dim).fill(0) : evaluateReference(grad, value);
          const want = Array.from({ length: x.dim }, (_, k) => fd(phi, v, a, k));
          const scale = Math.max(...want.map(Math.abs));
          const err = Math.max(...got.map((g, k) => Math.abs(g - want[k]!)));
          const where = `${f.key} at ${JSON.stringify(v)}, g ${JSON.stringify(gv)}, argument ${a}`;
          assert.ok(err <= 1e-6 * scale + 1e-9, `${where}: vjp ${JSON.stringify(got)}, finite differences ${JSON.stringify(want)}`);
          if (grad !== null) {
            const gen = evalGenerated(grad, value);
            const gerr = Math.max(...gen.map((g, k) => Math.abs(g - got[k]!)));
            assert.ok(gerr <= 1e-7 * Math.max(1, scale), `${where}: generated code ${JSON.stringify(gen)} vs reference ${JSON.stringify(got)}`);
          }
        });
      }
    }
  });
}

test('KeOps conventions at singular points: Sqrt and Norm2 at 0, SinXDivX at 0', () => {
  const x = mkVar(0, 1, 0);
  const at0 = (f: Formula): number[] => evaluateReference(vjpFormula(f, x, mkConst(1))!, () => [0]);
  assert.equal(at0(op('Sqrt', [x])), [0]);
  assert.equal(at0(op('SinXDivX', [x])), [0]);
  const y = mkVar(1, 3, 0);
  assert.equal(evaluateReference(vjpFormula(op('Norm2', [y]), y, mkConst(1))!, () => [0, 0, 0]), [0, 0, 0]);
});

test('vjpFormula: shared subexpressions accumulate, unrelated variables give null, seeds add up', () => {
  const x = mkVar(0, 2, 0);
  const y = mkVar(1, 2, 1);
  const e = op('Exp', [op('Minus', [op('SqNorm2', [x])])]);
  // f = e * e: the cotangent of e is accumulated from both uses: d/dx = -4 x e^2.
  const f = op('Mult', [e, e]);
  const g = vjpFormula(f, x, mkConst(1))!;
  const xv = [0.3, -0.2];
  const q = Math.exp(-2 * (0.09 + 0.04));
  const got = evaluateReference(g, () => xv);
  assert.ok(got.every((v, k) => Math.abs(v + 4 * xv[k]! * q) < 1e-12), `${got}`);
  assert.is(vjpFormula(f, y, mkConst(1)), null);
  const two = vjpSeeds([{ f: op('Sum', [x]), g: mkConst(1) }, { f: op('Sum', [x]), g: mkConst(2) }], x)!;
  assert.equal(evaluateReference(two, () => xv), [3, 3]);
  assert.is(printFormula(vjpFormula(op('SqNorm2', [x]), x, mkConst(1))!), '(IntCst(2) * Var(0,2,0))');
});

test('KeOps Grad and GradMatrix in formula strings', () => {
  const aliases = parseAliases(['x = Vi(2)', 'y = Vj(2)', 'e = Vi(2)']);
  const value = (v: VarNode): number[] => [[0.5, -1], [2, 3], [0.25, 4]][v.index]!;
  // Grad(x*y, x, e) = e * y; GradMatrix(x*y, x) = [y0, 0, 0, y1] (KeOps: Grad with each basis vector, concatenated).
  assert.equal(evaluateReference(parseFormula('Grad(x*y, x, e)', aliases), value), [0.5, 12]);
  assert.equal(evaluateReference(parseFormula('GradMatrix(x*y, x)', aliases), value), [2, 0, 0, 3]);
  assert.is(parseFormula('GradMatrix(SqNorm2(x), y)', aliases).dim, 2);
  // A scalar F: GradMatrix is the gradient itself, d(|x|^2 * sum(y))/dx = 2 x * 5.
  assert.equal(evaluateReference(parseFormula('GradMatrix(SqNorm2(x)|y, x)', aliases), value), [5, -10]);
});

test.run();
