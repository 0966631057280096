/**
 * Numeric literals are kernel parameters: a new constant reuses the compiled kernel, on both
 * backends, for values, NaN/Inf, and the constants gradients create. Values are checked against
 * float64 references.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Vi, Vj } from '../../src/api/lazy.js';
import { genred } from '../../src/api/genred.js';
import { source } from '../../src/api/source.js';
import { grad } from '../../src/grad/grad.js';
import { Cat, mkConst, mkVar } from '../../src/graph/formula.js';
import { liftLiterals } from '../../src/kernel/literals.js';
import { makePlan } from '../../src/kernel/plan.js';
import { disposeAll } from '../../src/nodes/node.js';
import { op } from '../../src/ops/build.js';
import { init, shutdown, type BackendName } from '../../src/scheduler/backends.js';
import { resetStats, stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng, uniform } from '../helpers/random.js';

const r = rng(11);

test.after.each(() => disposeAll());
// Later suites in this process expect the default backend (CPU) again.
test.after(async () => {
  await init({ backend: 'cpu' });
  await shutdown();
});

test('literals are lifted into one parameter variable; the structure does not depend on their values', () => {
  const x = mkVar(0, 3, Cat.i);
  const y = mkVar(2, 3, Cat.j);
  const f = (a: number, b: number) => op('Exp', [op('Mult', [op('SqDist', [x, y]), mkConst(a)])]);
  const weight = (c: number) => op('Add', [mkVar(1, 1, Cat.j), mkConst(c)]);
  const one = liftLiterals(f(-0.5, 0), weight(2));
  const two = liftLiterals(f(-7.25, 0), weight(3));
  assert.is(one.index, 3, 'after every variable of F and G');
  assert.equal(one.values, [-0.5, 2]);
  assert.equal(two.values, [-7.25, 3]);
  const plan = (l: typeof one) => makePlan(l.f, { reduction: 'SumSoftMaxWeight', axis: 1, weight: l.g });
  assert.is(plan(one).key, plan(two).key);
  assert.is(plan(one).vars[3]!.dim, 2);
  assert.is(plan(one).vars[3]!.cat, Cat.param);
  // A formula without literals is left alone.
  const bare = liftLiterals(op('SqDist', [x, y]), null);
  assert.is(bare.index, -1);
  assert.is(bare.f, op('SqDist', [x, y]));
  // Static params stay structural: another exponent is another kernel.
  const pow = (m: number) => makePlan(liftLiterals(op('Pow', [x], [m]), null).f, { reduction: 'Sum', axis: 1 }).key;
  assert.is.not(pow(3), pow(4));
});

/** 1000 evaluations of Vi(x).mul(k) with 1000 different k: one compiled kernel, every result right. */
async function thousandConstants(backend: BackendName): Promise<void> {
  await init({ backend });
  const M = 7;
  // Dimension 5 makes this structure unique to the test, so it is compiled here, once.
  const xs = Float32Array.from(uniform(r, M * 5, -2, 2));
  const x = source(xs, [M, 5]);
  resetStats();
  for (let n = 0; n < 1000; n++) {
    const k = n % 3 === 0 ? n - 500 : (n - 500) * 0.37 + 1 / 3;
    const node = Vi(x).mul(k).sum(1);
    const got = (await node.read()).data;
    for (let e = 0; e < xs.length; e++) {
      const want = Math.fround(xs[e]! * k);
      assert.ok(Math.abs(got[e]! - want) <= 1e-6 * Math.abs(want) + 1e-30, `${backend}, k = ${k}: ${got[e]} vs ${want}`);
    }
    node.dispose();
  }
  const s = stats();
  assert.is(s.pipelinesCompiled, 1, `${backend}: one kernel for 1000 constants`);
  assert.is(s.pipelineCacheHits, 999);
}

test('CPU: 1000 different constants compile one kernel', () => thousandConstants('cpu'));

test('CPU, JavaScript kernels: literals keep float64 precision', async () => {
  await init({ backend: 'cpu', cpuKernels: 'js' });
  const x = { data: Float32Array.of(3), shape: [1, 1] };
  // 3 * 0.1 - 0.3 is 5.55e-17 in float64; float32 literals would give -7.5e-9.
  const d = (await Vi(x).mul(0.1).sub(0.3).sum(1).read()).data[0]!;
  assert.ok(Math.abs(d - (3 * 0.1 - 0.3)) < 1e-20, `${d}`);
  // 1e-40 is a float32 denormal and 1e40 overflows float32: float64 keeps both.
  assert.is((await Vi(x).mul(1e-40).mul(1e40).sum(1).read()).data[0], Math.fround(3 * 1e-40 * 1e40));
  // The same through the worker pool (M * N above its threshold): the literals travel as float64.
  const n = 600;
  const xs = source(new Float32Array(n).fill(3), [n, 1]);
  const zs = source(new Float32Array(n), [n, 1]);
  const big = (await Vi(xs).mul(0.1).sub(0.3).add(Vj(zs)).sum(1).read()).data;
  assert.ok(big.every((v) => Math.abs(v - n * (3 * 0.1 - 0.3)) < 1e-12), `${big[0]}`);
  await init({ backend: 'cpu', cpuKernels: 'auto' });
});

test('CPU, WebAssembly kernels: literals are float32 values, computed in float32 (as on WebGPU)', async () => {
  await init({ backend: 'cpu', cpuKernels: 'wasm' });
  const f = Math.fround;
  const x = { data: Float32Array.of(3), shape: [1, 1] };
  const d = (await Vi(x).mul(0.1).sub(0.3).sum(1).read()).data[0]!;
  assert.is(d, f(f(3 * f(0.1)) - f(0.3)));
  // 1e-40 rounds to a float32 subnormal and 1e40 to Infinity.
  assert.is((await Vi(x).mul(1e-40).mul(1e40).sum(1).read()).data[0], f(f(3 * f(1e-40)) * f(1e40)));
  await init({ backend: 'cpu', cpuKernels: 'auto' });
});

/** NaN and infinite literals, as data. */
async function nonFinite(backend: BackendName): Promise<void> {
  await init({ backend });
  const x = source(Float32Array.of(-1, 0, 2), [3, 1]);
  assert.equal([...(await Vi(x).add(Infinity).sum(1).read()).data], [Infinity, Infinity, Infinity]);
  const scaled = [...(await Vi(x).mul(-Infinity).sum(1).read()).data];
  assert.ok([Infinity, NaN, -Infinity].every((v, k) => Object.is(v, scaled[k])), `${scaled}`);
  assert.ok((await Vi(x).add(NaN).sum(1).read()).data.every(Number.isNaN));
  // The same structure as a finite constant: no new kernel.
  resetStats();
  assert.equal([...(await Vi(x).add(2).sum(1).read()).data], [1, 2, 4]);
  assert.is(stats().pipelinesCompiled, 0, `${backend}: Add(x, constant) is already compiled`);
}

test('CPU: NaN and infinite literals', () => nonFinite('cpu'));

/** The gradient of sum_j exp(-k |x_i - y_j|^2) b_j in x for several k: its constants are parameters too. */
async function gradients(backend: BackendName): Promise<void> {
  await init({ backend });
  const M = 6;
  const N = 9;
  const xs = Float32Array.from(uniform(r, M * 2, -1, 1));
  const ys = Float32Array.from(uniform(r, N * 2, -1, 1));
  const bs = Float32Array.from(uniform(r, N, -1, 1));
  const x = source(xs, [M, 2]);
  const y = source(ys, [N, 2]);
  const b = source(bs, [N, 1]);
  let compiledAfterFirst = -1;
  for (const k of [0.5, 1.25, 3, 7.5]) {
    const e = Vi(x).sqdist(Vj(y)).mul(-k).exp().mul(Vj(b)).sum(1);
    const [gx] = grad(e, [x]);
    const got = (await gx!.read()).data;
    for (let i = 0; i < M; i++) {
      for (let c = 0; c < 2; c++) {
        let want = 0;
        for (let j = 0; j < N; j++) {
          const d2 = (xs[2 * i]! - ys[2 * j]!) ** 2 + (xs[2 * i + 1]! - ys[2 * j + 1]!) ** 2;
          want += -2 * k * (xs[2 * i + c]! - ys[2 * j + c]!) * Math.exp(-k * d2) * bs[j]!;
        }
        assert.ok(Math.abs(got[2 * i + c]! - want) < 1e-5 * (1 + Math.abs(want)), `${backend}, k = ${k}: ${got[2 * i + c]} vs ${want}`);
      }
    }
    if (compiledAfterFirst < 0) {
      compiledAfterFirst = stats().pipelinesCompiled;
      resetStats();
    }
  }
  assert.is(stats().pipelinesCompiled, 0, `${backend}: the gradients for new k reuse the kernels of the first`);
}

test('CPU: gradient constants do not recompile per value', () => gradients('cpu'));

test('genred: constants in formula strings are parameters too', async () => {
  const f = (k: number) => genred(`Exp(-x * ${k})`, ['x = Vi(1)'], { reduction: 'Sum', axis: 1, backend: 'cpu' });
  const x = { data: Float32Array.of(0.5, 1, 2), shape: [3, 1] };
  await f(1)(x);
  resetStats();
  for (const k of [0.25, 2, 1e-3]) {
    const got = (await f(k)(x)).data;
    assert.ok([0.5, 1, 2].every((v, n) => Math.abs(got[n]! - Math.exp(-v * k)) < 1e-7), `k = ${k}`);
  }
  assert.is(stats().pipelinesCompiled, 0);
});

if (webgpuTestable(test, 'the WebGPU literal tests')) {
  test('WebGPU: 1000 different constants compile one kernel', () => thousandConstants('webgpu'));
  test('WebGPU: NaN and infinite literals', () => nonFinite('webgpu'));
  test('WebGPU: gradient constants do not recompile per value', () => gradients('webgpu'));
}

test.run();
