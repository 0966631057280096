import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DimensionError, KernelflowError } from '../../src/errors.js';
import { mkConst, mkOpUnchecked, mkVar, type Cat, type Formula, type VarNode } from '../../src/graph/formula.js';
import { op } from '../../src/ops/build.js';
import { opDef } from '../../src/ops/table.js';
import { encodeKronParams, encodeTensorDotParams, linalgOps } from '../../src/ops/linalg.js';
import { specialOps } from '../../src/ops/special.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { evalGenerated } from '../helpers/generated.js';
import { rng, uniform } from '../helpers/random.js';

const ALL = [...linalgOps, ...specialOps];

/**
 * `op(name, args, params)`, also for ops with variadic trailing params (nParams = -1: TensorDot,
 * Kron) while the builder still insists on a fixed count: then arity and the op's dim rule are
 * checked here and the node built unchecked.
 */
function build(name: string, args: readonly Formula[], params: readonly number[] = []): Formula {
  const def = opDef(name);
  if (def.nParams >= 0) return op(name, args, params);
  try {
    return op(name, args, params);
  } catch (e) {
    if (!(e instanceof KernelflowError) || e.code !== 'ARGUMENT' || !/static parameter/.test(e.message)) throw e;
  }
  if (args.length !== def.arity) throw new DimensionError(`${name} takes ${def.arity} argument(s), got ${args.length}`);
  return mkOpUnchecked(name, args, params, def.dim(args.map((a) => a.dim), params));
}

type Gen = (r: () => number, dim: number, argIndex: number) => number[];

interface Setting {
  readonly dims: readonly number[];
  readonly params?: readonly number[];
  readonly gen?: Gen;
}

const td = encodeTensorDotParams;

/** Sorted knots (with a repeated one sometimes) and x inside their range. */
const splineGen: Gen = (r, dim, a) => {
  if (a === 1) return [uniform(r, 1, -1.2, 1.2)[0]!];
  const t = uniform(r, dim, -1, 1).sort((p, q) => p - q);
  if (dim > 4 && r() < 0.5) t[2] = t[1]!;
  return t;
};

/** Positive gamma of moderate size for SoftDTW. */
const dtwGen: Gen = (r, dim, a) => (a === 2 ? [0.05 + r()] : uniform(r, dim));

const CASES: Readonly<Record<string, readonly Setting[]>> = {
  MatVecMult: [{ dims: [6, 2] }, { dims: [12, 4] }, { dims: [3, 3] }, { dims: [5, 1] }],
  VecMatMult: [{ dims: [2, 6] }, { dims: [4, 12] }, { dims: [3, 3] }, { dims: [1, 5] }],
  TensorProd: [{ dims: [1, 1] }, { dims: [2, 3] }, { dims: [4, 1] }, { dims: [3, 5] }],
  TensorDot: [
    { dims: [4, 4], params: td([2, 2], [2, 2], [1], [0]) },
    { dims: [24, 6], params: td([2, 3, 4], [3, 2], [1, 0], [0, 1]) },
    { dims: [24, 20], params: td([2, 3, 4], [4, 5], [2], [0], [1, 0, 2]) },
    { dims: [6, 4], params: td([2, 3], [4], [], []) },
    { dims: [6, 6], params: td([2, 3], [3, 2], [], [], [3, 0, 2, 1]) },
    { dims: [5, 5], params: td([5], [5], [0], [0]) },
    { dims: [12, 6], params: td([3, 4], [2, 3], [0], [1], [1, 0]) },
  ],
  Kron: [
    { dims: [4, 4], params: encodeKronParams([2, 2], [2, 2]) },
    { dims: [6, 8], params: encodeKronParams([2, 3], [4, 2]) },
    { dims: [3, 2], params: encodeKronParams([3], [2]) },
    { dims: [12, 6], params: encodeKronParams([1, 3, 4], [2, 1, 3]) },
  ],
  BSpline: [
    { dims: [5, 1], params: [0], gen: splineGen },
    { dims: [5, 1], params: [3], gen: splineGen },
    { dims: [8, 1], params: [2], gen: splineGen },
    { dims: [9, 1], params: [4], gen: splineGen },
    // Unsorted knots: only KeOps's guards define the result; emitter and reference must still agree.
    { dims: [6, 1], params: [2], gen: (r, d) => uniform(r, d, -1, 1) },
  ],
  SoftDTW_SqDist: [
    { dims: [1, 1, 1], gen: dtwGen },
    { dims: [3, 2, 1], gen: dtwGen },
    { dims: [5, 5, 1], gen: dtwGen },
    { dims: [2, 7, 1], gen: dtwGen },
    { dims: [8, 6, 1], gen: dtwGen },
  ],
  GradSoftDTW_SqDist: [
    { dims: [1, 1, 1], gen: dtwGen },
    { dims: [3, 2, 1], gen: dtwGen },
    { dims: [5, 5, 1], gen: dtwGen },
    { dims: [2, 7, 1], gen: dtwGen },
  ],
};

function vars(dims: readonly number[]): VarNode[] {
  return dims.map((d, i) => mkVar(i, d, (i % 3) as Cat));
}

function close(got: readonly number[], want: readonly number[], rel = 1e-6, abs = 1e-12): boolean {
  return got.length === want.length && got.every((g, k) => Math.abs(g - want[k]!) <= rel * Math.abs(want[k]!) + abs);
}

/** Reference and generated values of `name(args..., params...)` on the given argument values. */
function both(name: string, values: readonly (readonly number[])[], params: readonly number[] = []): [number[], number[]] {
  const f = build(name, vars(values.map((v) => v.length)), params);
  const val = (v: VarNode) => values[v.index]!;
  return [evaluateReference(f, val), evalGenerated(f, val)];
}

function expectValue(
  name: string,
  values: readonly (readonly number[])[],
  params: readonly number[],
  want: readonly number[],
  rel = 1e-12,
): void {
  const [ref, gen] = both(name, values, params);
  const label = `${name}(${values.map((v) => `[${v.join(',')}]`).join(', ')}; ${params.join(',')})`;
  assert.ok(close(ref, want, rel, 1e-14), `${label}: reference ${JSON.stringify(ref)}, expected ${JSON.stringify(want)}`);
  assert.ok(close(gen, want, Math.max(rel, 1e-7), 1e-12), `${label}: generated ${JSON.stringify(gen)}, expected ${JSON.stringify(want)}`);
}

test('every linalg and special op has test cases, and every case names one of them', () => {
  const names = ALL.map((d) => d.name);
  assert.equal(new Set(names).size, names.length, 'duplicate op names');
  for (const n of names) {
    assert.ok(CASES[n] !== undefined, `no test case for ${n}`);
    assert.ok(CASES[n]!.length >= 2, `${n} needs at least two settings`);
  }
  for (const n of Object.keys(CASES)) assert.ok(names.includes(n), `case for unknown op ${n}`);
  // vjps are checked against finite differences in test/grad/vjp.spec.ts.
  for (const d of ALL) assert.type(d.vjp, 'function', `${d.name} has a vjp`);
});

test('generated code equals the float64 reference on seeded random inputs', () => {
  const r = rng(7031);
  for (const def of ALL) {
    for (const s of CASES[def.name]!) {
      const params = s.params ?? [];
      const f = build(def.name, vars(s.dims), params);
      assert.is(f.dim, def.dim(s.dims, params));
      for (let trial = 0; trial < 6; trial++) {
        const values = s.dims.map((d, a) => (s.gen ?? ((rr: () => number, dd: number) => uniform(rr, dd)))(r, d, a));
        const val = (v: VarNode) => values[v.index]!;
        const want = evaluateReference(f, val);
        const got = evalGenerated(f, val);
        assert.is(want.length, f.dim, `${f.key}: reference length`);
        assert.ok(want.every(Number.isFinite), `${f.key}: reference not finite`);
        assert.ok(close(got, want), `${f.key} at ${JSON.stringify(values)}: generated ${got}, reference ${want}`);
      }
    }
  }
});

test('closed forms: MatVecMult, VecMatMult, TensorProd (row-major)', () => {
  // A = [[1, 2], [3, 4]].
  expectValue('MatVecMult', [[1, 2, 3, 4], [5, 6]], [], [17, 39]);
  expectValue('VecMatMult', [[5, 6], [1, 2, 3, 4]], [], [23, 34]);
  // A = [[1, 2, 3], [4, 5, 6]] (2 x 3): A v with v of dim 3, w A with w of dim 2.
  expectValue('MatVecMult', [[1, 2, 3, 4, 5, 6], [1, 0, -1]], [], [-2, -2]);
  expectValue('VecMatMult', [[1, -1], [1, 2, 3, 4, 5, 6]], [], [-3, -3, -3]);
  expectValue('MatVecMult', [[1, 2, 3], [2]], [], [2, 4, 6]);
  expectValue('TensorProd', [[1, 2], [3, 4, 5]], [], [3, 4, 5, 6, 8, 10]);
  expectValue('TensorProd', [[-2], [3]], [], [-6]);
});

test('closed forms: TensorDot as matrix products, transposes, outer products', () => {
  const A = [1, 2, 3, 4];
  const B = [5, 6, 7, 8];
  // AB = [[19, 22], [43, 50]].
  expectValue('TensorDot', [A, B], td([2, 2], [2, 2], [1], [0]), [19, 22, 43, 50]);
  // Contracting axis 0 of A with axis 0 of B: A^T B = [[26, 30], [38, 44]].
  expectValue('TensorDot', [A, B], td([2, 2], [2, 2], [0], [0]), [26, 30, 38, 44]);
  // A B^T = [[17, 23], [39, 53]].
  expectValue('TensorDot', [A, B], td([2, 2], [2, 2], [1], [1]), [17, 23, 39, 53]);
  // Permute [1, 0] sends free axis 0 (rows of A) to output axis 1: (AB)^T.
  expectValue('TensorDot', [A, B], td([2, 2], [2, 2], [1], [0], [1, 0]), [19, 43, 22, 50]);
  // Full contraction: Frobenius inner product.
  expectValue('TensorDot', [A, B], td([2, 2], [2, 2], [0, 1], [0, 1]), [70]);
  expectValue('TensorDot', [A, B], td([2, 2], [2, 2], [1, 0], [0, 1]), [1 * 5 + 2 * 7 + 3 * 6 + 4 * 8]);
  // Matrix-vector product of a 2 x 3 matrix.
  expectValue('TensorDot', [[1, 2, 3, 4, 5, 6], [1, 0, -1]], td([2, 3], [3], [1], [0]), [-2, -2]);
  // No contraction: the outer product, i.e. TensorProd.
  expectValue('TensorDot', [[1, 2], [3, 4, 5]], td([2], [3], [], []), [3, 4, 5, 6, 8, 10]);
  expectValue('TensorDot', [[1, 2], [3, 4, 5]], td([2], [3], [], [], [1, 0]), [3, 6, 4, 8, 5, 10]);
});

test('closed forms: Kron of 2x2 with 2x2 (numpy.kron), of vectors, and the TensorDot identity KeOps uses', () => {
  const A = [1, 2, 3, 4];
  const B = [0, 5, 6, 7];
  const want = [0, 5, 0, 10, 6, 7, 12, 14, 0, 15, 0, 20, 18, 21, 24, 28];
  expectValue('Kron', [A, B], encodeKronParams([2, 2], [2, 2]), want);
  // KeOps: Kron(a, b, dA, dB) = TensorDot(a, b, dA, dB, [], [], permute = [0, 2, ..., 1, 3, ...]).
  expectValue('TensorDot', [A, B], td([2, 2], [2, 2], [], [], [0, 2, 1, 3]), want);
  // Rank 1: Kron of vectors is the outer product flattened.
  expectValue('Kron', [[1, 2], [3, 4, 5]], encodeKronParams([2], [3]), [3, 4, 5, 6, 8, 10]);
  // 1 x 2 with 2 x 1: [[a0 b0, a1 b0], [a0 b1, a1 b1]].
  expectValue('Kron', [[2, 3], [5, 7]], encodeKronParams([1, 2], [2, 1]), [10, 15, 14, 21]);
  // Random rank-3 case against the TensorDot form.
  const r = rng(99);
  const a = uniform(r, 12);
  const b = uniform(r, 6);
  const [kr] = both('Kron', [a, b], encodeKronParams([2, 3, 2], [3, 1, 2]));
  const [tdr] = both('TensorDot', [a, b], td([2, 3, 2], [3, 1, 2], [], [], [0, 2, 4, 1, 3, 5]));
  assert.ok(close(kr, tdr, 1e-14), `Kron ${kr} vs TensorDot ${tdr}`);
});

test('closed forms: BSpline (KeOps "order" = degree, half-open support)', () => {
  const t = [0, 1, 2, 3];
  // Order 0: indicators of [t_j, t_{j+1}).
  expectValue('BSpline', [t, [1.5]], [0], [0, 1, 0]);
  expectValue('BSpline', [t, [1]], [0], [0, 1, 0]);
  expectValue('BSpline', [t, [3]], [0], [0, 0, 0]);
  expectValue('BSpline', [t, [-0.5]], [0], [0, 0, 0]);
  // Order 1: hat functions peaking at 1 and 2.
  expectValue('BSpline', [t, [1.25]], [1], [0.75, 0.25]);
  expectValue('BSpline', [t, [0.5]], [1], [0.5, 0]);
  // Order 2 on uniform knots: x^2/2 on [0,1), 3/4 at the centre, (3-x)^2/2 on [2,3).
  expectValue('BSpline', [t, [0.5]], [2], [0.125]);
  expectValue('BSpline', [t, [1.5]], [2], [0.75]);
  expectValue('BSpline', [t, [2.5]], [2], [0.125]);
  // Cubic on uniform knots: 1/6 at x = 1 and 2/3 at x = 2 (for the first basis function on [0, 4]).
  expectValue('BSpline', [[0, 1, 2, 3, 4], [1]], [3], [1 / 6]);
  expectValue('BSpline', [[0, 1, 2, 3, 4], [2]], [3], [2 / 3]);
  // A repeated knot: the 0/0 ratio counts as 0 (KeOps's guard), linear pieces on [0, 1] only.
  expectValue('BSpline', [[0, 0, 1, 2], [0.25]], [1], [0.75, 0.25]);
  // Partition of unity inside the fully supported range [t_order, t_{K-order-1}) = [2, 4.75).
  const knots = [0, 0.5, 1.25, 2, 3, 3.5, 4.75, 5, 6, 7];
  for (const x of [2, 2.6, 3.2, 4.1, 4.7]) {
    const [ref, gen] = both('BSpline', [knots, [x]], [3]);
    assert.ok(Math.abs(ref.reduce((s, v) => s + v, 0) - 1) < 1e-12, `reference sum at ${x}: ${ref}`);
    assert.ok(Math.abs(gen.reduce((s, v) => s + v, 0) - 1) < 1e-12, `generated sum at ${x}: ${gen}`);
    assert.ok(ref.every((v) => v >= 0), `nonnegative at ${x}`);
  }
});

test('closed forms: SoftDTW_SqDist (single cell, 2x2 recursion, gamma -> 0 gives DTW)', () => {
  // One point each: the squared difference, for any gamma.
  expectValue('SoftDTW_SqDist', [[3], [1], [0.7]], [], [4]);
  // 2 x 1 and 1 x 2: plain sums along the border.
  expectValue('SoftDTW_SqDist', [[1, 2], [0], [0.3]], [], [1 + 4]);
  expectValue('SoftDTW_SqDist', [[1], [0, 3], [0.3]], [], [1 + 4]);
  // 2 x 2: r11 = d11 + softmin(d00, d00 + d01, d00 + d10).
  {
    const g = 0.5;
    const [x0, x1, y0, y1] = [0, 1, 0.5, 2];
    const d = (a: number, b: number) => (a - b) * (a - b);
    const v = [d(x0, y0), d(x0, y0) + d(x1, y0), d(x0, y0) + d(x0, y1)];
    const soft = -g * Math.log(v.reduce((s, a) => s + Math.exp(-a / g), 0));
    expectValue('SoftDTW_SqDist', [[x0, x1], [y0, y1], [g]], [], [d(x1, y1) + soft], 1e-12);
  }
  // x = [0, 1, 2], y = [0, 2]: DTW = 1; with gamma small, the last softmin sees two tied minima
  // (r10 = r11 = 1), so soft-DTW = 1 - gamma ln 2 up to terms of order exp(-1/gamma).
  for (const g of [1e-2, 1e-3]) {
    const [ref, gen] = both('SoftDTW_SqDist', [[0, 1, 2], [0, 2], [g]]);
    const want = 1 - g * Math.log(2);
    assert.ok(Math.abs(ref[0]! - want) < 1e-12, `gamma ${g}: reference ${ref[0]}, want ${want}`);
    assert.ok(Math.abs(gen[0]! - want) < 1e-8, `gamma ${g}: generated ${gen[0]}, want ${want}`);
  }
  // Random series: soft-DTW lies in [DTW - gamma ln(3) (n + m), DTW] and tends to DTW.
  const r = rng(4242);
  for (let trial = 0; trial < 5; trial++) {
    const x = uniform(r, 6);
    const y = uniform(r, 4);
    const dtw = hardDTW(x, y);
    for (const g of [1e-1, 1e-3, 1e-5]) {
      const [ref, gen] = both('SoftDTW_SqDist', [x, y, [g]]);
      assert.ok(ref[0]! <= dtw + 1e-12 && ref[0]! >= dtw - g * Math.log(3) * 10 - 1e-12, `gamma ${g}: ${ref[0]} vs DTW ${dtw}`);
      assert.ok(Math.abs(gen[0]! - ref[0]!) <= 1e-6 * Math.abs(ref[0]!) + 1e-9, `gamma ${g}: generated ${gen[0]} vs ${ref[0]}`);
    }
    const [near] = both('SoftDTW_SqDist', [x, y, [1e-6]]);
    assert.ok(Math.abs(near[0]! - dtw) < 1e-4, `gamma 1e-6: ${near[0]} vs DTW ${dtw}`);
  }
  // gamma may be a constant in the formula.
  const f = build('SoftDTW_SqDist', [mkVar(0, 3, 0), mkVar(1, 2, 1), mkConst(0.25)]);
  const val = (v: VarNode) => (v.index === 0 ? [0, 1, 2] : [0, 2]);
  assert.ok(close(evalGenerated(f, val), evaluateReference(f, val)));
});

/** Hard DTW with squared differences, by the plain min recursion. */
function hardDTW(x: readonly number[], y: readonly number[]): number {
  const r = Array.from({ length: x.length }, () => new Array<number>(y.length).fill(0));
  for (let i = 0; i < x.length; i++) {
    for (let j = 0; j < y.length; j++) {
      const c = (x[i]! - y[j]!) ** 2;
      const prev: number[] = [];
      if (i > 0 && j > 0) prev.push(r[i - 1]![j - 1]!);
      if (i > 0) prev.push(r[i - 1]![j]!);
      if (j > 0) prev.push(r[i]![j - 1]!);
      r[i]![j] = c + (prev.length === 0 ? 0 : Math.min(...prev));
    }
  }
  return r[x.length - 1]![y.length - 1]!;
}

test('generated code stays linear in size: SoftDTW declares each cell once', () => {
  const f = build('SoftDTW_SqDist', vars([30, 30, 1]));
  const r = rng(5);
  const values = [uniform(r, 30), uniform(r, 30), [0.1]];
  const val = (v: VarNode) => values[v.index]!;
  const got = evalGenerated(f, val);
  const want = evaluateReference(f, val);
  assert.ok(close(got, want), `${got} vs ${want}`);
});

function throwsDim(name: string, dims: readonly number[], params: readonly number[] = []): void {
  try {
    build(name, vars(dims), params);
  } catch (e) {
    assert.ok(e instanceof DimensionError, `${name}(${dims}; ${params}): expected a DimensionError, got ${String(e)}`);
    assert.ok((e as Error).message.includes(name), `message '${(e as Error).message}' does not name ${name}`);
    return;
  }
  assert.unreachable(`${name} with dims ${dims} and params ${params} should throw`);
}

test('bad dimensions and static parameters throw DimensionError naming the op', () => {
  throwsDim('MatVecMult', [5, 2]);
  throwsDim('MatVecMult', [2, 4]);
  throwsDim('VecMatMult', [2, 5]);
  throwsDim('VecMatMult', [4, 2]);
  // TensorDot: shapes that do not multiply to the dims, mismatched contracted sizes, bad axes, bad permute.
  throwsDim('TensorDot', [4, 4], td([2, 3], [2, 2], [1], [0]));
  throwsDim('TensorDot', [4, 6], td([2, 2], [2, 3], [1], [1]));
  throwsDim('TensorDot', [4, 4], td([2, 2], [2, 2], [2], [0]));
  throwsDim('TensorDot', [4, 4], td([2, 2], [2, 2], [1, 1], [0, 1]));
  throwsDim('TensorDot', [4, 4], td([2, 2], [2, 2], [1], []));
  throwsDim('TensorDot', [4, 4], td([2, 2], [2, 2], [1], [0], [0, 0]));
  throwsDim('TensorDot', [4, 4], td([2, 2], [2, 2], [1], [0], [0, 1, 2]));
  throwsDim('TensorDot', [4, 4], [2, 2, 2, 2, 2, 2]);
  throwsDim('TensorDot', [4, 4], [2, 2, 2, 2, 2, 2, 1, 1, 1]);
  throwsDim('TensorDot', [4, 4], [...td([2, 2], [2, 2], [1], [0], [1, 0]), 0]);
  throwsDim('TensorDot', [4, 4], td([2, 2], [2, 2], [0.5], [0]));
  // Kron: ranks differ, shapes do not fit.
  throwsDim('Kron', [4, 2], encodeKronParams([2, 2], [2]));
  throwsDim('Kron', [4, 4], encodeKronParams([2, 2], [4, 2]));
  throwsDim('Kron', [4, 4], [2, 2, 2]);
  // BSpline: x not scalar, too few knots, bad order.
  throwsDim('BSpline', [5, 2], [1]);
  throwsDim('BSpline', [3, 1], [2]);
  throwsDim('BSpline', [1, 1], [0]);
  throwsDim('BSpline', [5, 1], [-1]);
  throwsDim('BSpline', [5, 1], [1.5]);
  // SoftDTW: gamma not scalar.
  throwsDim('SoftDTW_SqDist', [3, 3, 2]);
});

test('arity is enforced', () => {
  for (const def of ALL) {
    assert.throws(() => build(def.name, vars(Array.from({ length: def.arity + 1 }, () => 1)), []));
  }
});

test.run();
