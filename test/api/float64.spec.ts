/**
 * float64 end to end (issue 14): float64 data computes in float64 on the CPU backend and reads back
 * Float64Array, for every reduction, its gradients and the solve; one float64 argument promotes
 * the computation (numpy's rule); a backend that computes in float32 only (WebGPU, the cluster)
 * never drops to float32 silently: a BackendError names `init({ float64 })`. References are
 * float64 brute force computed here.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import '../../src/api/dense.js';
import { genred } from '../../src/api/genred.js';
import { kernelSolve } from '../../src/api/kernel-solve.js';
import { Pm, Vi, Vj } from '../../src/api/lazy.js';
import { fromJSON, toJSON } from '../../src/api/pipeline.js';
import { source } from '../../src/api/source.js';
import { BackendError } from '../../src/errors.js';
import type { ReductionName } from '../../src/ops/reductions.js';
import { grad } from '../../src/grad/grad.js';
import { init, shutdown } from '../../src/scheduler/backends.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng, uniform } from '../helpers/random.js';

const gpu = webgpuTestable(test, 'float64 on WebGPU (downcast)');
test.before(async () => {
  await init({ backend: 'cpu', quiet: true });
});
test.after(async () => {
  await init({ backend: 'cpu', float64: 'error' });
  await shutdown();
});

const T64 = (data: readonly number[], shape: number[]) => ({ data: Float64Array.from(data), shape });
const relErr = (got: ArrayLike<number>, want: readonly number[]): number => {
  let worst = 0;
  want.forEach((w, k) => (worst = Math.max(worst, Math.abs(got[k]! - w) / Math.max(Math.abs(w), 1e-300))));
  return worst;
};

/** Neumaier's compensated sum: a reference that is itself exact to a few ulps. */
function exactSum(terms: readonly number[]): number {
  let s = 0;
  let c = 0;
  for (const t of terms) {
    const u = s + t;
    c += Math.abs(s) >= Math.abs(t) ? s - u + t : t - u + s;
    s = u;
  }
  return s + c;
}

test('acceptance: a 2e5-term Gaussian sum agrees with a float64 reference to 1e-12 relative; float32 compute cannot', async () => {
  // Points at 1000 + offsets of 1e-3: float32 keeps ~6e-5 of a coordinate there, so the squared
  // distances (and the sums) lose about 1e-2 relative in float32 and nothing in float64.
  const r = rng(14);
  const M = 8;
  const N = 200_000;
  const x = uniform(r, M * 2, 1000, 1000.05);
  const y = uniform(r, N * 2, 1000, 1000.05);
  const b = uniform(r, N, 0.5, 1.5);
  const g = 400; // exp(-400 d^2) with d up to 0.07: terms from 0.1 to 1
  const want = Array.from({ length: M }, (_, i) => {
    const terms: number[] = [];
    for (let j = 0; j < N; j++) {
      const d0 = x[i * 2]! - y[j * 2]!;
      const d1 = x[i * 2 + 1]! - y[j * 2 + 1]!;
      terms.push(Math.exp(-g * (d0 * d0 + d1 * d1)) * b[j]!);
    }
    return exactSum(terms);
  });
  const op = genred('Exp(-g*SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(1)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1 });
  const out = await op(T64(x, [M, 2]), T64(y, [N, 2]), T64(b, [N, 1]), T64([g], [1]));
  assert.instance(out.data, Float64Array);
  assert.equal(out.shape, [M, 1]);
  const err = relErr(out.data, want);
  assert.ok(err <= 1e-12, `float64: max relative error ${err.toExponential(2)} > 1e-12`);
  // The same data given as float32 computes in float32: it misses the bound by orders of magnitude.
  const f32 = (a: readonly number[], shape: number[]) => ({ data: Float32Array.from(a), shape });
  const out32 = await op(f32(x, [M, 2]), f32(y, [N, 2]), f32(b, [N, 1]), f32([g], [1]));
  assert.instance(out32.data, Float32Array);
  const err32 = relErr(out32.data, want);
  assert.ok(err32 > 1e-6, `float32 compute was expected to miss 1e-12 by far, error ${err32.toExponential(2)}`);
});

/** Per-pair values and the brute-force reductions of them. */
const r = rng(7);
const M = 6;
const N = 19;
// Offsets of 1e-9 on top of O(1) values: invisible to float32, kept by float64.
const X = uniform(r, M * 2).map((v, k) => v + 1e-9 * k);
const Y = uniform(r, N * 2).map((v, k) => v - 1e-9 * k);
const B = uniform(r, N, 0.5, 2);
const sq = (i: number, j: number): number => (X[2 * i]! - Y[2 * j]!) ** 2 + (X[2 * i + 1]! - Y[2 * j + 1]!) ** 2;
const rows = (fn: (i: number) => number[]): number[] => Array.from({ length: M }, (_, i) => fn(i)).flat();
const js = Array.from({ length: N }, (_, j) => j);
const sorted = (i: number): number[] => [...js].sort((a, b) => sq(i, a) - sq(i, b) || a - b);
const lse = (v: number[]): number => {
  const m = Math.max(...v);
  return m + Math.log(exactSum(v.map((t) => Math.exp(t - m))));
};

const CASES: readonly { reduction: ReductionName; f: string; formula2?: string; K?: number; want: number[][] }[] = [
  { reduction: 'Sum', f: 'Exp(-SqDist(x,y))*b', want: [rows((i) => [exactSum(js.map((j) => Math.exp(-sq(i, j)) * B[j]!))])] },
  { reduction: 'LogSumExp', f: '-SqDist(x,y)', want: [rows((i) => [lse(js.map((j) => -sq(i, j)))])] },
  { reduction: 'LogSumExp', f: '-SqDist(x,y)', formula2: 'b', want: [rows((i) => [lse(js.map((j) => -sq(i, j) + Math.log(B[j]!)))])] },
  {
    reduction: 'SumSoftMaxWeight',
    f: '-SqDist(x,y)',
    formula2: 'b',
    want: [rows((i) => [exactSum(js.map((j) => Math.exp(-sq(i, j)) * B[j]!)) / exactSum(js.map((j) => Math.exp(-sq(i, j))))])],
  },
  { reduction: 'Min', f: 'SqDist(x,y)', want: [rows((i) => [sq(i, sorted(i)[0]!)])] },
  { reduction: 'Max', f: 'SqDist(x,y)', want: [rows((i) => [sq(i, sorted(i)[N - 1]!)])] },
  { reduction: 'ArgMin', f: 'SqDist(x,y)', want: [rows((i) => [sorted(i)[0]!])] },
  { reduction: 'ArgMax', f: 'SqDist(x,y)', want: [rows((i) => [sorted(i)[N - 1]!])] },
  { reduction: 'Min_ArgMin', f: 'SqDist(x,y)', want: [rows((i) => [sq(i, sorted(i)[0]!)]), rows((i) => [sorted(i)[0]!])] },
  { reduction: 'Max_ArgMax', f: 'SqDist(x,y)', want: [rows((i) => [sq(i, sorted(i)[N - 1]!)]), rows((i) => [sorted(i)[N - 1]!])] },
  { reduction: 'KMin', f: 'SqDist(x,y)', K: 3, want: [rows((i) => sorted(i).slice(0, 3).map((j) => sq(i, j)))] },
  { reduction: 'ArgKMin', f: 'SqDist(x,y)', K: 3, want: [rows((i) => sorted(i).slice(0, 3))] },
  { reduction: 'KMin_ArgKMin', f: 'SqDist(x,y)', K: 3, want: [rows((i) => sorted(i).slice(0, 3).map((j) => sq(i, j))), rows((i) => sorted(i).slice(0, 3))] },
];

for (const c of CASES) {
  test(`${c.reduction}${c.formula2 ? ' (weighted)' : ''} in float64 agrees with a float64 brute force to 1e-12`, async () => {
    const op = genred(c.f, ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(1)'], {
      reduction: c.reduction,
      axis: 1,
      ...(c.K === undefined ? {} : { K: c.K }),
      ...(c.formula2 === undefined ? {} : { formula2: c.formula2 }),
    });
    const res = (await op(T64(X, [M, 2]), T64(Y, [N, 2]), T64(B, [N, 1]))) as unknown;
    const outs = (Array.isArray(res) ? res : [res]) as { data: Float64Array | Int32Array }[];
    assert.is(outs.length, c.want.length);
    outs.forEach((o, k) => {
      const want = c.want[k]!;
      if (o.data instanceof Int32Array) assert.equal([...o.data], want, `${c.reduction} indices`);
      else {
        assert.instance(o.data, Float64Array, `${c.reduction} values are Float64Array`);
        const err = relErr(o.data, want);
        assert.ok(err <= 1e-12, `${c.reduction}: relative error ${err.toExponential(2)}`);
      }
    });
  });
}

test('a reduction over axis 0 in float64', async () => {
  const op = genred('Exp(-SqDist(x,y))', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'Sum', axis: 0 });
  const out = await op(T64(X, [M, 2]), T64(Y, [N, 2]));
  assert.instance(out.data, Float64Array);
  const want = js.map((j) => exactSum(Array.from({ length: M }, (_, i) => Math.exp(-sq(i, j)))));
  assert.ok(relErr(out.data, want) <= 1e-12);
});

test('LazyTensor: a float64 source reads back Float64Array, and its gradient is float64 (closed form to 1e-12, finite differences)', async () => {
  const x = source(Float64Array.from(X), [M, 2], 'x');
  const y = source(Float64Array.from(Y), [N, 2], 'y');
  const b = source(Float64Array.from(B), [N, 1], 'b');
  const a = Vi(x).sqdist(Vj(y)).neg().exp().matmul(b); // a_i = sum_j exp(-|x_i - y_j|^2) b_j
  const av = await a.read();
  assert.instance(av.data, Float64Array);
  assert.ok(relErr(av.data, rows((i) => [exactSum(js.map((j) => Math.exp(-sq(i, j)) * B[j]!))])) <= 1e-12);
  assert.ok(String(x).includes('float64'), String(x));
  assert.ok(String(a).includes('float64 on'), String(a));
  const [dx] = grad(a, [x]);
  const gv = await dx.read();
  assert.instance(gv.data, Float64Array);
  assert.equal(gv.shape, [M, 2]);
  // d/dx_i sum_i a_i = sum_j -2 (x_i - y_j) exp(-|x_i - y_j|^2) b_j
  const closed = rows((i) => [0, 1].map((d) => exactSum(js.map((j) => -2 * (X[2 * i + d]! - Y[2 * j + d]!) * Math.exp(-sq(i, j)) * B[j]!))));
  assert.ok(relErr(gv.data, closed) <= 1e-12, `closed form: ${relErr(gv.data, closed).toExponential(2)}`);
  // Central differences of the total, computed here in float64 (error ~h^2 + eps/h ~ 1e-10).
  const total = (xs: readonly number[]): number => {
    let s = 0;
    for (let i = 0; i < M; i++) for (let j = 0; j < N; j++) s += Math.exp(-((xs[2 * i]! - Y[2 * j]!) ** 2 + (xs[2 * i + 1]! - Y[2 * j + 1]!) ** 2)) * B[j]!;
    return s;
  };
  const h = 1e-5;
  const scale = Math.max(...closed.map(Math.abs));
  for (let k = 0; k < M * 2; k++) {
    const up = [...X];
    const down = [...X];
    up[k]! += h;
    down[k]! -= h;
    const fd = (total(up) - total(down)) / (2 * h);
    assert.ok(Math.abs(gv.data[k]! - fd) <= 1e-8 * scale, `d/dx[${k}]: ${gv.data[k]} vs finite difference ${fd}`);
  }
  a.dispose();
  x.dispose();
  y.dispose();
  b.dispose();
});

/** Central differences (h = 1e-5) of `total` at `at`, one coordinate at a time. */
function finiteDifferences(total: (v: readonly number[]) => number, at: readonly number[]): number[] {
  const h = 1e-5;
  return at.map((_, k) => {
    const up = [...at];
    const down = [...at];
    up[k]! += h;
    down[k]! -= h;
    return (total(up) - total(down)) / (2 * h);
  });
}

test('float64 gradients of LogSumExp (w.r.t. x) and SumSoftMaxWeight (w.r.t. y and the weight) agree with finite differences to 1e-8', async () => {
  const x = source(Float64Array.from(X), [M, 2], 'x');
  const y = source(Float64Array.from(Y), [N, 2], 'y');
  const b = source(Float64Array.from(B), [N, 1], 'b');
  const S = Vi(x).sqdist(Vj(y)).neg();
  const lseNode = S.logsumexp(1);
  const ssw = S.sumSoftmaxWeight(Vj(b), 1);
  const sqAt = (xs: readonly number[], ys: readonly number[], i: number, j: number): number =>
    (xs[2 * i]! - ys[2 * j]!) ** 2 + (xs[2 * i + 1]! - ys[2 * j + 1]!) ** 2;
  // sum_i log sum_j exp(-|x_i - y_j|^2), and sum_i sum_j softmax_j(-|x_i - y_j|^2) b_j
  const lseTotal = (xs: readonly number[]): number => exactSum(Array.from({ length: M }, (_, i) => lse(js.map((j) => -sqAt(xs, Y, i, j)))));
  const sswTotal = (ys: readonly number[], bs: readonly number[]): number =>
    exactSum(
      Array.from({ length: M }, (_, i) => {
        const w = js.map((j) => Math.exp(-sqAt(X, ys, i, j)));
        return exactSum(w.map((wj, j) => wj * bs[j]!)) / exactSum(w);
      }),
    );
  const checks: [string, Promise<{ data: ArrayLike<number> }>, number[]][] = [
    ['d lse / dx', grad(lseNode, [x])[0].read(), finiteDifferences(lseTotal, X)],
    ['d ssw / dy', grad(ssw, [y])[0].read(), finiteDifferences((ys) => sswTotal(ys, B), Y)],
    ['d ssw / db', grad(ssw, [b])[0].read(), finiteDifferences((bs) => sswTotal(Y, bs), B)],
  ];
  for (const [what, pending, fd] of checks) {
    const g = await pending;
    assert.instance(g.data, Float64Array, what);
    const scale = Math.max(...fd.map(Math.abs));
    fd.forEach((want, k) => assert.ok(Math.abs(g.data[k]! - want) <= 1e-8 * scale, `${what}[${k}]: ${g.data[k]} vs ${want}`));
  }
  x.dispose();
  y.dispose();
  b.dispose();
});

test('mixed dtypes promote to float64 (numpy): float32 data with one float64 argument computes as if all were float64', async () => {
  const op = genred('SqDist(x,y)*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(1)'], { reduction: 'Sum', axis: 1 });
  const x32 = Float32Array.from(X);
  const mixed = await op({ data: x32, shape: [M, 2] }, T64(Y, [N, 2]), { data: Int32Array.from(js), shape: [N, 1] });
  const all64 = await op({ data: Float64Array.from(x32), shape: [M, 2] }, T64(Y, [N, 2]), T64(js, [N, 1]));
  assert.instance(mixed.data, Float64Array);
  assert.equal([...mixed.data], [...all64.data]);
  // Without a float64 argument nothing changes: float32 (int32 is read as float32).
  const plain = await op({ data: x32, shape: [M, 2] }, { data: Float32Array.from(Y), shape: [N, 2] }, { data: Int32Array.from(js), shape: [N, 1] });
  assert.instance(plain.data, Float32Array);
});

test("the caller's Float64Array is neither written nor read after the call", async () => {
  const op = genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 });
  const x = T64([0.1, 0.2], [2, 1]);
  const y = T64([0.3, 0.7], [2, 1]);
  const before = [...x.data, ...y.data];
  const pending = op(x, y);
  const kept = [...x.data, ...y.data];
  x.data.fill(9);
  const out = await pending;
  assert.equal(kept, before);
  assert.ok(relErr(out.data, [0.1 * 1.0, 0.2 * 1.0]) <= 1e-15);
  const src = Float64Array.of(0.25, 0.5);
  const s = source(src, [2, 1]);
  await Vi(s).mul(3).sum(1).read();
  assert.equal([...src], [0.25, 0.5]);
  s.dispose();
});

test('kernelSolve and LazyTensor.solve with float64 data solve in float64 (residual below float32 reach)', async () => {
  const n = 40;
  const xs = uniform(rng(3), n, 0, 4);
  const bs = uniform(rng(4), n);
  const alpha = 0.1;
  const Kinv = kernelSolve('Exp(-SqDist(x,y))*b', ['x = Vi(1)', 'y = Vj(1)', 'b = Vj(1)'], 'b', { axis: 1 });
  const c = await Kinv(T64(xs, [n, 1]), T64(xs, [n, 1]), T64(bs, [n, 1]), { alpha, tol: 1e-14 });
  assert.instance(c.data, Float64Array);
  const residual = (cv: ArrayLike<number>): number => {
    let num = 0;
    let den = 0;
    for (let i = 0; i < n; i++) {
      let Kc = alpha * cv[i]!;
      for (let j = 0; j < n; j++) Kc += Math.exp(-((xs[i]! - xs[j]!) ** 2)) * cv[j]!;
      num += (Kc - bs[i]!) ** 2;
      den += bs[i]! ** 2;
    }
    return Math.sqrt(num / den);
  };
  assert.ok(residual(c.data) < 1e-11, `kernelSolve residual ${residual(c.data)}`);
  const x = source(Float64Array.from(xs), [n, 1]);
  const b = source(Float64Array.from(bs), [n, 1]);
  const sol = Vi(x).sqdist(Vj(x)).neg().exp().solve(b, { alpha, tol: 1e-14 });
  const cv = await sol.read();
  assert.instance(cv.data, Float64Array);
  assert.ok(residual(cv.data) < 1e-11, `solve residual ${residual(cv.data)}`);
  sol.dispose();
  x.dispose();
  b.dispose();
});

test('Pm(number) is a float32 parameter that a float64 computation reads exactly (and that never promotes a float32 one)', async () => {
  const x = source(Float64Array.of(1, 3), [2, 1]);
  const v = await Vi(x).mul(Pm(0.1)).add(Pm([0.7])).sum(1).read();
  assert.instance(v.data, Float64Array);
  // Exactly what float64 arithmetic gives; 0.1 read as float32 would be off by 1.5e-9 relative.
  assert.equal([...v.data], [1 * 0.1 + 0.7, 3 * 0.1 + 0.7]);
  const y = source(Float32Array.of(1, 3), [2, 1]);
  const w = await Vi(y).mul(Pm(0.1)).sum(1).read();
  assert.instance(w.data, Float32Array);
  assert.ok(Math.abs(w.data[1]! - 0.3) <= 1e-7);
  x.dispose();
  y.dispose();
});

test('toJSON saves a float64 source as float64 (base64 and arrays) and fromJSON computes it in float64 again', async () => {
  const x = source(Float64Array.of(0.1, 0.2, 1000.0003), [3, 1], 'x');
  const s = Vi(x).sqdist(Vj(x)).sum(1);
  const want = [...(await s.read()).data];
  for (const data of ['base64', 'array'] as const) {
    const json = toJSON([s], { data });
    const saved = json.nodes.find((n) => n.kind === 'source');
    assert.is(saved !== undefined && 'dtype' in saved ? saved.dtype : undefined, 'float64');
    const p = fromJSON(JSON.stringify(json));
    const got = await p.outputs[0]!.read();
    assert.instance(got.data, Float64Array);
    assert.equal([...got.data], want);
    for (const n of p.sources) n.dispose();
  }
  x.dispose();
});

test('dense toolkit ops keep float64 (a number operand does not round it to float32)', async () => {
  const x = source(Float64Array.of(0.1, 0.2), [2, 1]);
  const s = Vi(x).mul(1).sum(1).add(0.1);
  const v = await s.read();
  assert.instance(v.data, Float64Array);
  assert.equal([...v.data], [0.1 + 0.1, 0.2 + 0.1]);
  x.dispose();
});

test('WebGPU never computes float64 data in float32 silently: a BackendError that names init({ float64 })', async () => {
  const op = genred('SqDist(x,y)', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1, backend: 'webgpu' });
  const x = T64([0.5, 1.5], [2, 1]);
  const err = await op(x, x).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, BackendError);
  const msg = (err as Error).message;
  assert.ok(msg.includes("'x'") && msg.includes("float64: 'downcast'") && msg.includes("float64: 'cpu'"), msg);
  // The LazyTensor path says the same.
  const s = source(Float64Array.of(1, 2), [2, 1]);
  await Vi(s).sqdist(Vj(s)).sum(1, { backend: 'webgpu' }).read().then(
    () => assert.unreachable('should reject'),
    (e: unknown) => assert.instance(e, BackendError),
  );
  s.dispose();
});

test("init({ float64: 'cpu' }) runs float64 reductions meant for WebGPU on the CPU backend, in float64", async () => {
  await init({ backend: 'cpu', float64: 'cpu' });
  try {
    const op = genred('SqDist(x,y)', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1, backend: 'webgpu' });
    const out = await op(T64([0.1, 0.3], [2, 1]), T64([0.2], [1, 1]));
    assert.instance(out.data, Float64Array);
    assert.ok(relErr(out.data, [(0.1 - 0.2) ** 2, (0.3 - 0.2) ** 2]) <= 1e-15);
  } finally {
    await init({ backend: 'cpu', float64: 'error' });
  }
});

test('init rejects an unknown float64 policy', async () => {
  await init({ backend: 'cpu', float64: 'maybe' as 'cpu' }).then(
    () => assert.unreachable('should reject'),
    (e: unknown) => assert.ok(String(e).includes("'float64'"), String(e)),
  );
});

if (gpu) {
  test("init({ float64: 'downcast' }) accepts float32 compute on WebGPU (Float32Array results)", async () => {
    await init({ backend: 'cpu', float64: 'downcast' });
    try {
      const op = genred('SqDist(x,y)', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1, backend: 'webgpu' });
      const out = await op(T64([0.1, 0.3], [2, 1]), T64([0.2], [1, 1]));
      assert.instance(out.data, Float32Array);
      assert.ok(relErr(out.data, [(0.1 - 0.2) ** 2, (0.3 - 0.2) ** 2]) <= 1e-5);
    } finally {
      await init({ backend: 'cpu', float64: 'error' });
    }
  });
}

test.run();
