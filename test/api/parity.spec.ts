/**
 * pykeops parity (issue 14, the parts outside the kernel generator): arguments are counted as
 * pykeops counts them (aliases and inline `Var(k, d, c)`), extents come from every argument passed,
 * not from the simplified formula, and the LazyTensor methods pykeops has (`t()`, `sinc`,
 * `keops_tensordot`, `keops_kron`, ...). Every value is checked against a float64 brute force
 * computed here; the genred cases run on the CPU backend and, when an adapter exists, on WebGPU.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { genred } from '../../src/api/genred.js';
import { kernelSolve } from '../../src/api/kernel-solve.js';
import { Pm, Vi, Vj } from '../../src/api/lazy.js';
import { fromJSON, toJSON, type PipelineJSON } from '../../src/api/pipeline.js';
import { source } from '../../src/api/source.js';
import { parsePipeline } from '../../src/cli/pipeline-file.js';
import { buildGraph } from '../../src/cli/graph.js';
import { DimensionError, KernelflowError, ParseError, ReductionError } from '../../src/errors.js';
import { grad } from '../../src/grad/grad.js';
import { disposeAll } from '../../src/nodes/node.js';
import { init, shutdown, type BackendName } from '../../src/scheduler/backends.js';
import type { TensorLike } from '../../src/tensor.js';
import { Cat, mkVar, variables } from '../../src/graph/formula.js';
import { op } from '../../src/ops/build.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { bruteReduce } from '../helpers/brute.js';
import { rng, uniform } from '../helpers/random.js';

const r = rng(14);
const M = 13;
const N = 21;
const D = 3;
const xs = uniform(r, M * D);
const ys = uniform(r, N * D);
const gs = uniform(r, N);
const sigma = 0.75;

const T = (values: readonly number[], shape: number[]): TensorLike => ({ data: Float32Array.from(values), shape });
const X = T(xs, [M, D]);
const Y = T(ys, [N, D]);
const G = T(gs, [N, 1]);
const S = T([sigma], [1]);

test.after.each(() => disposeAll());
// Later suites in this process expect the default backend (CPU) again.
test.after(async () => {
  await init({ backend: 'cpu' });
  await shutdown();
});

function close(got: ArrayLike<number>, want: readonly number[], tol = 1e-5, what = ''): void {
  assert.is(got.length, want.length, `${what} length`);
  for (let k = 0; k < want.length; k++) {
    if (!(Math.abs(got[k]! - want[k]!) <= tol * Math.max(1, Math.abs(want[k]!)))) assert.unreachable(`${what}[${k}] got ${got[k]} want ${want[k]}`);
  }
}

async function throwsWith(fn: () => unknown, cls: new (...a: never[]) => Error, ...parts: string[]): Promise<void> {
  try {
    await fn();
  } catch (e) {
    assert.instance(e, cls);
    for (const p of parts) assert.ok((e as Error).message.includes(p), `"${(e as Error).message}" should contain "${p}"`);
    return;
  }
  assert.unreachable(`expected a ${cls.name}`);
}

const row = (v: readonly number[], i: number, d: number): number[] => v.slice(i * d, (i + 1) * d);
const sqdist = (a: readonly number[], b: readonly number[]): number => a.reduce((s, ak, k) => s + (ak - b[k]!) ** 2, 0);

/** pykeops's reference: sum_j (sigma - g_j)^2 exp(-|x_i - y_j|^2), float64. */
function heterogeneousRef(): number[] {
  return Array.from({ length: M }, (_, i) => {
    let s = 0;
    for (let j = 0; j < N; j++) s += (sigma - gs[j]!) ** 2 * Math.exp(-sqdist(row(xs, i, D), row(ys, j, D)));
    return s;
  });
}

// ---------------------------------------------------------------- genred (both backends)

/** The genred cases, run once per backend. */
function genredCases(backend: BackendName): [string, () => Promise<void>][] {
  const opts = { reduction: 'Sum' as const, axis: 1 as const, backend };
  return [
    [
      'test_heterogeneous_var_aliases: an inline Var(3,1,1) after the aliases is the fourth argument',
      async () => {
        const op = genred('Square(p-Var(3,1,1))*Exp(-SqNorm2(y-x))', ['p=Pm(0,1)', 'x=Vi(1,3)', 'y=Vj(2,3)'], opts);
        const got = await op(S, X, Y, G);
        assert.equal(got.shape, [M, 1]);
        close(got.data, heterogeneousRef());
      },
    ],
    [
      "test_heterogeneous_var_aliases (older form): an inline Var(1,1,1) fills the aliases' gap at index 1",
      async () => {
        const op = genred('Square(p-Var(1,1,1))*Exp(-SqNorm2(y-x))', ['p=Pm(0,1)', 'x=Vi(2,3)', 'y=Vj(3,3)'], opts);
        close((await op(S, G, X, Y)).data, heterogeneousRef());
      },
    ],
    [
      'test_formula_simplification: Grad(Grad(x + Var(1,3,1), x, Var(2,3,0)), x, Var(3,3,0)) is zero with M rows and takes 4 arguments',
      async () => {
        const op = genred('Grad(Grad(x + Var(1,3,1), x, Var(2,3,0)),x, Var(3,3,0))', ['x=Vi(0,3)'], opts);
        const got = await op(X, Y, X, X);
        assert.equal(got.shape, [M, D]);
        close(got.data, new Array<number>(M * D).fill(0));
      },
    ],
    [
      "a Sum over j of a formula without j-variables is N times the term (N from the unused 'y')",
      async () => {
        const x1 = T(xs.slice(0, M), [M, 1]);
        const y1 = T(ys.slice(0, N), [N, 1]);
        const got = await genred('x', ['x = Vi(1)', 'y = Vj(1)'], opts)(x1, y1);
        assert.equal(got.shape, [M, 1]);
        close(got.data, xs.slice(0, M).map((v) => N * v));
        // Over i, the same formula has N rows, each the sum of the x_i.
        const over0 = await genred('x', ['x = Vi(1)', 'y = Vj(1)'], { ...opts, axis: 0 })(x1, y1);
        assert.equal(over0.shape, [N, 1]);
        const total = xs.slice(0, M).reduce((a, b) => a + b, 0);
        close(over0.data, new Array<number>(N).fill(total));
        // A formula of j-variables only, reduced over j, still has M rows (M from the unused 'x').
        const yOnly = await genred('y', ['x = Vi(1)', 'y = Vj(1)'], opts)(x1, y1);
        assert.equal(yOnly.shape, [M, 1]);
        const ySum = ys.slice(0, N).reduce((a, b) => a + b, 0);
        close(yOnly.data, new Array<number>(M).fill(ySum));
      },
    ],
    [
      "genred('x*Var(1,1,1)', ['x = Vi(1)']) takes 2 arguments; literals do not collide with unused arguments",
      async () => {
        const x1 = T(xs.slice(0, M), [M, 1]);
        const y1 = T(ys.slice(0, N), [N, 1]);
        const ySum = ys.slice(0, N).reduce((a, b) => a + b, 0);
        close((await genred('x*Var(1,1,1)', ['x = Vi(1)'], opts)(x1, y1)).data, xs.slice(0, M).map((v) => v * ySum));
        // The literal 2 becomes a kernel parameter numbered after x: the index of the unused y.
        close((await genred('x*2', ['x = Vi(1)', 'y = Vj(1)'], opts)(x1, y1)).data, xs.slice(0, M).map((v) => 2 * N * v));
      },
    ],
    [
      'Grad of a formula that does not depend on x keeps M rows (extents from x, y, e)',
      async () => {
        const e = T(uniform(r, N * 2), [N, 2]);
        const y2 = T(ys.slice(0, N * 2), [N, 2]);
        const got = await genred('Grad(y, x, e)', ['x = Vi(3)', 'y = Vj(2)', 'e = Vj(2)'], opts)(X, y2, e);
        assert.equal(got.shape, [M, D]);
        close(got.data, new Array<number>(M * D).fill(0));
      },
    ],
    [
      'the other reductions count the unused argument too: LogSumExp = x + log N, KMin repeats x, K > N is an error',
      async () => {
        const x1 = T(xs.slice(0, M), [M, 1]);
        const y1 = T(ys.slice(0, N), [N, 1]);
        const A = ['x = Vi(1)', 'y = Vj(1)'];
        close((await genred('x', A, { ...opts, reduction: 'LogSumExp' })(x1, y1)).data, xs.slice(0, M).map((v) => v + Math.log(N)));
        const km = await genred('x', A, { ...opts, reduction: 'KMin', K: 3 })(x1, y1);
        assert.equal(km.shape, [M, 3]);
        close(km.data, xs.slice(0, M).flatMap((v) => [v, v, v]));
        await throwsWith(() => genred('x', A, { ...opts, reduction: 'KMin', K: N + 1 })(x1, y1), ReductionError, `K = ${N + 1}`, `extent ${N}`);
      },
    ],
    [
      'a weight formula2 with an inline Var counts it as an argument',
      async () => {
        const w = T(uniform(r, N * 2), [N, 2]);
        const got = await genred('-SqDist(x,y)', ['x = Vi(3)', 'y = Vj(3)'], { ...opts, reduction: 'SumSoftMaxWeight', formula2: 'Var(2,2,1)' })(X, Y, w);
        const want: number[] = [];
        for (let i = 0; i < M; i++) {
          const k = Array.from({ length: N }, (_, j) => Math.exp(-sqdist(row(xs, i, D), row(ys, j, D))));
          const z = k.reduce((a, b) => a + b, 0);
          for (let c = 0; c < 2; c++) want.push(k.reduce((s, kj, j) => s + kj * w.data[j * 2 + c]!, 0) / z);
        }
        close(got.data, want);
      },
    ],
  ];
}

for (const [name, fn] of genredCases('cpu')) test(`CPU: ${name}`, fn);

test('only a category without any argument has extent 1', async () => {
  const x1 = T(xs.slice(0, M), [M, 1]);
  const twice = await genred('x*2', ['x = Vi(1)'], { reduction: 'Sum', axis: 1 })(x1);
  assert.equal(twice.shape, [M, 1]);
  close(twice.data, xs.slice(0, M).map((v) => 2 * v));
  const total = await genred('x', ['x = Vi(1)'], { reduction: 'Sum', axis: 0 })(x1);
  assert.equal(total.shape, [1, 1]);
  close(total.data, [xs.slice(0, M).reduce((a, b) => a + b, 0)]);
});

test('argument errors name the culprit by index: missing, extra, unused ones of the wrong shape', async () => {
  const x1 = T(xs.slice(0, M), [M, 1]);
  const y1 = T(ys.slice(0, N), [N, 1]);
  const opts = { reduction: 'Sum' as const, axis: 1 as const };
  await throwsWith(() => genred('x*Var(1,1,1)', ['x = Vi(1)'], opts)(x1), KernelflowError, 'expected 2 arguments (x, Var(1,1,1)), got 1', 'missing Var(1,1,1) (argument 1)');
  await throwsWith(() => genred('x*Var(3,1,1)', ['x = Vi(1)'], opts)(x1, y1, y1), KernelflowError, 'expected 4 arguments', 'missing Var(3,1,1) (argument 3)');
  await throwsWith(() => genred('x', ['x = Vi(1)', 'y = Vj(1)'], opts)(x1, y1, y1), KernelflowError, "1 extra argument after 'y' (argument 1)");
  // Unused arguments are checked like used ones.
  await throwsWith(() => genred('x', ['x = Vi(1)', 'y = Vj(2)'], opts)(x1, y1), DimensionError, "'y' (argument 1): expected shape [n, 2], got [21, 1]");
  await throwsWith(() => genred('x', ['x = Vi(1)', 'z = Vi(1)'], opts)(x1, y1), DimensionError, "'z' (argument 1) has 21 rows but 'x' (argument 0) has 13");
  await throwsWith(() => genred('x+Var(1,1,1)', ['x = Vi(1)'], opts)(x1, T([1, 2], [1, 2])), DimensionError, 'Var(1,1,1) (argument 1)');
  // Two inline Vars of one index must agree (in the formula and its weight alike).
  await throwsWith(() => genred('Var(1,1,1) + Var(1,2,1)', [], opts), ParseError, 'Var(1,2,1) conflicts with the inline Var(1,1,1)');
  await throwsWith(
    () => genred('Var(0,1,0)*Var(1,1,1)', [], { reduction: 'SumSoftMaxWeight', axis: 1, formula2: 'Var(1,2,1)' }),
    ParseError,
    'Var(1,2,1) conflicts with the inline Var(1,1,1)',
  );
});

// ---------------------------------------------------------------- kernelSolve

/** float64 (alpha Id + K) c for K_ij = exp(-|x_i - y_j|^2). */
function applyGauss(pts: readonly number[], n: number, c: ArrayLike<number>, dv: number, alpha: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < n; i++)
    for (let v = 0; v < dv; v++) {
      let s = alpha * c[i * dv + v]!;
      for (let j = 0; j < n; j++) s += Math.exp(-sqdist(row(pts, i, 2), row(pts, j, 2))) * c[j * dv + v]!;
      out.push(s);
    }
  return out;
}

test('kernelSolve counts inline Vars as arguments and checks unused ones', async () => {
  const n = 40;
  const pts = uniform(r, n * 2, 0, 3);
  const bs = uniform(r, n * 2);
  const P = T(pts, [n, 2]);
  const B = T(bs, [n, 2]);
  const solve = kernelSolve('Exp(-SqDist(x,Var(1,2,1)))*b', ['x = Vi(2)', 'b = Vj(2,2)'], 'b', { axis: 1, alpha: 0.5, tol: 1e-7 });
  const c = await solve(P, P, B);
  assert.equal(c.shape, [n, 2]);
  close(applyGauss(pts, n, c.data, 2, 0.5), bs, 1e-4, 'A c vs b');
  await throwsWith(() => solve(P, P), KernelflowError, 'expected 3 arguments', 'missing', 'b');
  // An argument the formula does not read must still be square with b.
  const extra = kernelSolve('Exp(-SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)', 'z = Vi(1)'], 'b', { axis: 1, alpha: 0.5 });
  await throwsWith(() => extra(P, P, B, T([1, 2, 3], [3, 1])), DimensionError, "'z' (argument 3) has 3 rows but 'b' has 40");
});

// ---------------------------------------------------------------- LazyTensor

test('LazyTensor: extents come from the bound inputs (formulas never drop a variable)', async () => {
  const x = source(Float32Array.from(xs.slice(0, M)), [M, 1]);
  const y = source(Float32Array.from(ys.slice(0, N)), [N, 1]);
  // y is multiplied by 0, but it is still read: N copies of x.
  close((await Vi(x).add(Vj(y).mul(0)).sum(1).read()).data, xs.slice(0, M).map((v) => N * v));
  // Without any j-input: N = 1 (an elementwise map), and a [1, 1] scalar over both axes.
  close((await Vi(x).mul(2).sum(1).read()).data, xs.slice(0, M).map((v) => 2 * v));
  const scalar = await Vi(x).square().sum(-1).sum(0).read();
  assert.equal(scalar.shape, [1, 1]);
  close(scalar.data, [xs.slice(0, M).reduce((s, v) => s + v * v, 0)]);
  // The gradient of sum_j (x_i + y_j) in x is N (its formula has no j-variable left).
  const [dx] = grad(Vi(x).add(Vj(y)).sum(1), [x]);
  close((await dx!.read()).data, new Array<number>(M).fill(N));
});

test('LazyTensor.t(): a reduction over j of K.t() is the reduction over i of K; Vi(x).t() is Vj(x)', async () => {
  const x = source(Float32Array.from(xs), [M, D]);
  const y = source(Float32Array.from(ys), [N, D]);
  const b = source(Float32Array.from(uniform(r, M * 2)), [M, 2]);
  const K = Vi(x).sqdist(Vj(y)).neg().exp();
  const Kt = K.t();
  assert.is(String(Kt), String(Vj(x).sqdist(Vi(y)).neg().exp()));
  assert.is(K.T.formula, Kt.formula);
  // K^T b, against float64.
  const bv = (await b.read()).data;
  const want: number[] = [];
  for (let j = 0; j < N; j++)
    for (let c = 0; c < 2; c++) {
      let s = 0;
      for (let i = 0; i < M; i++) s += Math.exp(-sqdist(row(xs, i, D), row(ys, j, D))) * bv[i * 2 + c]!;
      want.push(s);
    }
  const got = await Kt.matmul(b).read();
  assert.equal(got.shape, [N, 2]);
  close(got.data, want);
  close((await Kt.sum(0).read()).data, [...(await K.sum(1).read()).data]);
  close((await Kt.t().argmin(1).read()).data, [...(await K.argmin(1).read()).data]);
  // Vi(x).t() is the same variable as Vj(x): mixing them reads x once.
  const mixed = Vi(x).t().sub(Vj(x)).abs().sum(-1);
  assert.is(String(mixed), String(Vj(x).sub(Vj(x)).abs().sum(-1)));
  // pykeops's sum(dim=1) is sum(1) here; an options object in its place says so.
  await throwsWith(() => K.sum({ dim: 1 } as never), ReductionError, "the axis is a number, the reduction's first argument: x.sum(1)");
  // A parameter stays a parameter.
  close((await Vi(x).sqdist(Vj(y)).mul(Pm(2)).t().sum(1).read()).data, [...(await Vi(x).sqdist(Vj(y)).mul(Pm(2)).sum(0).read()).data]);
});

test('LazyTensor: sinc (normalised, as pykeops), sinxdivx, tensordot, kron, and the other pykeops methods (comparisons, asin, one_hot, bspline, ...)', async () => {
  const n = 7;
  // float32 values, so that comparisons with a literal (a kernel parameter) are exact.
  const us = uniform(r, n, -2, 2).map(Math.fround);
  us[0] = 0;
  const u = Vi(T(us, [n, 1]));
  const zero = Vj(T([0], [1, 1]));
  const at = async (t: typeof u): Promise<ArrayLike<number>> => (await t.add(zero).sum(1).read()).data;
  const sincRef = (v: number): number => (v === 0 ? 1 : Math.sin(Math.PI * v) / (Math.PI * v));
  close(await at(u.sinc()), us.map(sincRef));
  close(await at(u.sinxdivx()), us.map((v) => (v === 0 ? 1 : Math.sin(v) / v)));
  close(await at(u.div(3).asin()), us.map((v) => Math.asin(v / 3)));
  close(await at(u.div(3).acos()), us.map((v) => Math.acos(v / 3)));
  close(await at(u.atan()), us.map(Math.atan));
  close(await at(u.abs().xlogx()), us.map((v) => (v === 0 ? 0 : Math.abs(v) * Math.log(Math.abs(v)))));
  close(await at(u.gt(0.5)), us.map((v) => (v > 0.5 ? 1 : 0)));
  close(await at(u.ge(us[1]!)), us.map((v) => (v >= us[1]! ? 1 : 0)));
  close(await at(u.lt(0.5)), us.map((v) => (v < 0.5 ? 1 : 0)));
  close(await at(u.le(us[1]!)), us.map((v) => (v <= us[1]! ? 1 : 0)));
  close(await at(u.eq(us[1]!)), us.map((v) => (v === us[1]! ? 1 : 0)));
  close(await at(u.ne(us[1]!)), us.map((v) => (v !== us[1]! ? 1 : 0)));
  close(await at(u.abs().oneHot(3)), us.flatMap((v) => [0, 1, 2].map((k) => (Math.trunc(Math.abs(v) + 0.5) === k ? 1 : 0))));

  // Small linear algebra on a pair (i, j): A_i a 2x3 matrix, B_j a 3x2 matrix.
  const m = 3;
  const k = 4;
  const as = uniform(r, m * 6);
  const bs = uniform(r, k * 6);
  const A = Vi(T(as, [m, 6]));
  const B = Vj(T(bs, [k, 6]));
  /** Sum over j of f(A_i, B_j), float64. */
  const sumJ = (f: (a: number[], b: number[]) => number[]): number[] => {
    const out: number[] = [];
    for (let i = 0; i < m; i++) {
      const acc: number[] = [];
      for (let j = 0; j < k; j++) f(row(as, i, 6), row(bs, j, 6)).forEach((v, c) => (acc[c] = (acc[c] ?? 0) + v));
      out.push(...acc);
    }
    return out;
  };
  // tensordot: the matrix product (2x3)(3x2), contracting axis 1 of A with axis 0 of B.
  const matmul = (a: number[], b: number[]): number[] => [0, 1, 2, 3].map((o) => [0, 1, 2].reduce((s, c) => s + a[Math.floor(o / 2) * 3 + c]! * b[c * 2 + (o % 2)]!, 0));
  close((await A.tensordot(B, [2, 3], [3, 2], [1], [0]).sum(1).read()).data, sumJ(matmul));
  // With permute [1, 0]: the transposed product.
  const matmulT = (a: number[], b: number[]): number[] => {
    const p = matmul(a, b);
    return [p[0]!, p[2]!, p[1]!, p[3]!];
  };
  close((await A.tensordot(B, [2, 3], [3, 2], 1, 0, [1, 0]).sum(1).read()).data, sumJ(matmulT));
  // kron of a 2x3 and a 3x2 matrix: a 6x6 matrix, as numpy.kron.
  const kron = (a: number[], b: number[]): number[] => {
    const out = new Array<number>(36).fill(0);
    for (let i0 = 0; i0 < 2; i0++)
      for (let i1 = 0; i1 < 3; i1++)
        for (let k0 = 0; k0 < 3; k0++) for (let k1 = 0; k1 < 2; k1++) out[(i0 * 3 + k0) * 6 + (i1 * 2 + k1)] = a[i0 * 3 + i1]! * b[k0 * 2 + k1]!;
    return out;
  };
  close((await A.kron(B, [2, 3], [3, 2]).sum(1).read()).data, sumJ(kron));
  // vecmatmult, tensorprod, weighted norms.
  close((await A.extract(0, 3).vecmatmult(B).sum(1).read()).data, sumJ((a, b) => [0, 1].map((c) => [0, 1, 2].reduce((s, q) => s + a[q]! * b[q * 2 + c]!, 0))));
  close((await A.extract(0, 2).tensorprod(B.extract(0, 3)).sum(1).read()).data, sumJ((a, b) => [0, 1].flatMap((p) => [0, 1, 2].map((q) => a[p]! * b[q]!))));
  const w = [0.5, 2, 1.5, 0.25, 3, 1];
  // No j-variable here: N = 1, one term per i.
  close((await A.weightedsqnorm(Pm(w)).sum(1).read()).data, Array.from({ length: m }, (_, i) => row(as, i, 6).reduce((s, v, c) => s + w[c]! * v * v, 0)));
  close((await A.weightedsqdist(B, Pm(w)).sum(1).read()).data, sumJ((a, b) => [a.reduce((s, v, c) => s + w[c]! * (v - b[c]!) ** 2, 0)]));
  // bspline and softdtwSqdist, against the op table's float64 references.
  const knots = Array.from({ length: 6 }, (_, q) => q / 5);
  const xs1 = uniform(r, 5, 0, 1);
  const kn = Vi(T(knots, [1, 6]));
  const at1 = Vj(T(xs1, [5, 1]));
  const splineF = op('BSpline', [mkVar(0, 6, Cat.i), mkVar(1, 1, Cat.j)], [2]);
  const splineRef = bruteReduce(splineF, null, 'Sum', 1, [{ rows: 1, dim: 6, values: knots }, { rows: 5, dim: 1, values: xs1 }], variables(splineF)).flat(2);
  close((await kn.bspline(at1, 2).sum(1).read()).data, splineRef);
  const sa = uniform(r, 2 * 3);
  const sb = uniform(r, 3 * 4);
  const dtwF = op('SoftDTW_SqDist', [mkVar(0, 3, Cat.i), mkVar(1, 4, Cat.j), mkVar(2, 1, Cat.param)]);
  const clouds = [{ rows: 2, dim: 3, values: sa }, { rows: 3, dim: 4, values: sb }, { rows: 1, dim: 1, values: [0.5] }];
  const dtwRef = bruteReduce(dtwF, null, 'Sum', 1, clouds, variables(dtwF)).flat(2);
  close((await Vi(T(sa, [2, 3])).softdtwSqdist(Vj(T(sb, [3, 4])), Pm(0.5)).sum(1).read()).data, dtwRef, 1e-4);
});

// ---------------------------------------------------------------- pipelines (fromJSON, the command's files)

test('fromJSON and the pipeline file take extents from every alias; toJSON keeps them', async () => {
  const json: PipelineJSON = {
    format: 'kernelflow-pipeline',
    version: 1,
    nodes: [
      { id: 0, kind: 'source', label: 'x', shape: [M, 1], data: xs.slice(0, M) },
      { id: 1, kind: 'source', label: 'y', shape: [N, 1], data: ys.slice(0, N) },
      { id: 2, kind: 'reduction', formula: 'a', aliases: ['a = Vi(1)', 'b = Vj(1)'], reduction: 'Sum', axis: 1, inputs: [0, 1] },
    ],
    outputs: [2],
  };
  const want = xs.slice(0, M).map((v) => N * v);
  const p = fromJSON(json, { backend: 'cpu' });
  close((await p.outputs[0]!.read()).data, want);
  const saved = toJSON(p.outputs);
  const again = fromJSON(JSON.parse(JSON.stringify(saved)) as PipelineJSON, { backend: 'cpu' });
  close((await again.outputs[0]!.read()).data, want, 1e-5, 'after a round trip');
  // The gradient keeps N too.
  const [dx] = grad(p.outputs[0]!, [p.sources[0]!]);
  close((await dx!.read()).data, new Array<number>(M).fill(N));
  // An argument with no input is a PipelineError.
  const short: PipelineJSON = { ...json, nodes: [json.nodes[0]!, json.nodes[1]!, { ...json.nodes[2]!, kind: 'reduction', formula: 'a*Var(2,1,1)', inputs: [0, 1] } as PipelineJSON['nodes'][number]] };
  await throwsWith(() => fromJSON(short), KernelflowError, 'has 3 arguments', 'inputs lists 2');
  // The command's pipeline file: 'dim' is pykeops's name of 'axis'.
  const spec = parsePipeline('p.json', JSON.stringify({
    version: 1,
    inputs: { x: { dim: 1 }, y: { dim: 1 } },
    outputs: { s: { formula: 'p', aliases: ['p = Vi(x)', 'q = Vj(y)'], reduction: 'Sum', dim: 1 } },
  }));
  assert.is(spec.kind === 'spec' && spec.outputs[0]!.axis, 1);
  const g = buildGraph(spec, new Map(), 'cpu');
  g.sources.get('x')!.set(Float32Array.from(xs.slice(0, M)), [M, 1]);
  g.sources.get('y')!.set(Float32Array.from(ys.slice(0, N)), [N, 1]);
  close((await g.results[0]!.node.read()).data, want, 1e-5, 'pipeline file');
  g.dispose();
});

if (webgpuTestable(test, 'the WebGPU parity tests')) {
  for (const [name, fn] of genredCases('webgpu')) test(`WebGPU: ${name}`, fn);
  test('WebGPU: LazyTensor t() and sinc', async () => {
    const x = source(Float32Array.from(xs), [M, D]);
    const y = source(Float32Array.from(ys), [N, D]);
    const K = Vi(x).sqdist(Vj(y)).sinc();
    const want = [...(await K.sum(0, { backend: 'cpu' }).read()).data];
    close((await K.t().sum(1, { backend: 'webgpu' }).read()).data, want, 1e-4);
  });
}

test.run();
