import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../src/cpu/backend.js';
import { BackendError } from '../../src/errors.js';
import { Cat, mkConst, mkVar, type Formula } from '../../src/graph/formula.js';
import { GpuBackend } from '../../src/gpu/backend.js';
import { renderKernelWgsl } from '../../src/gpu/codegen.js';
import { hasAdapter, loseDeviceForTesting, releaseDevice } from '../../src/gpu/device.js';
import { wgslDialect } from '../../src/gpu/dialect.js';
import { op } from '../../src/ops/build.js';
import { makePlan, type KernelPlan } from '../../src/kernel/plan.js';
import type { ReductionSpec } from '../../src/ops/reductions.js';
import { resetStats, stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng, uniform } from '../helpers/random.js';

// ---- printing (no adapter needed) ----

test('WGSL dialect prints f32 literals, non-finite constants, builtins and selects', () => {
  const d = wgslDialect;
  assert.is(d.num(1), '1.0');
  assert.is(d.num(0), '0.0');
  assert.is(d.num(-0.0025), '(-0.0025)');
  assert.is(d.num(0.1), '0.1');
  assert.is(d.num(1e21), '1e+21');
  assert.is(d.num(-0), '(-0.0)');
  assert.match(d.num(Infinity), /^bitcast<f32>\(0x7f800000u \| kf_zero\)$/);
  assert.match(d.num(-Infinity), /0xff800000u/);
  assert.match(d.num(NaN), /0x7fc00000u/);
  assert.match(d.num(1e39), /0x7f800000u/); // beyond f32 range
  assert.is(d.call('rsqrt', 'x'), 'inverseSqrt(x)');
  assert.is(d.call('atan2', 'y', 'x'), 'kf_atan2(y, x)'); // polyfill in WGSL_PRELUDE
  assert.is(d.call('log', 'x'), 'kf_log(x)');
  assert.is(d.call('min', 'a', 'b', 'c'), 'min(a, min(b, c))');
  assert.is(d.call('max', 'a', 'b', 'c', 'd'), 'max(max(a, b), max(c, d))');
  assert.match(d.call('exp', 'a - b'), /^exp2\(\(a - b\) \* 1\.44269/);
  assert.is(d.select('c', 'a', 'b'), 'select(b, a, c)');
  assert.is(d.decl('t', '1.0'), 'var t: f32 = 1.0;');
});

test('kernel source: sizes come from the uniform, never from the plan', () => {
  const plan = makePlan(op('SqDist', [mkVar(0, 3, 0), mkVar(1, 3, 1)]), { reduction: 'ArgKMin', axis: 1, K: 3 });
  const { source, bindings } = renderKernelWgsl(plan);
  assert.match(source, /var<uniform> P: Params/);
  assert.match(source, /j < N/);
  assert.match(source, /array<i32>/);
  assert.equal(bindings, [{ kind: 'packed', cat: Cat.i }, { kind: 'packed', cat: Cat.j }, { kind: 'out', index: 0 }]);
});

// ---- on the device: GPU results against the CPU backend ----

if (webgpuTestable(test, 'the WebGPU tests')) registerDeviceTests();

test.after(async () => {
  await releaseDevice();
});

test.run();

function registerDeviceTests(): void {
  const r = rng(11);
  const gpu = new GpuBackend();
  const cpu = new CpuBackend(1);
  const x = mkVar(0, 3, 0);
  const y = mkVar(1, 3, 1);
  const b = mkVar(2, 2, 1);
  const g = mkVar(3, 1, 2);
  // Sizes that are not multiples of rows per workgroup, so the clamped tail rows are exercised.
  const M = 37;
  const N = 53;
  const data = (m: number, n: number): Float32Array[] => [
    Float32Array.from(uniform(r, m * 3)),
    Float32Array.from(uniform(r, n * 3)),
    Float32Array.from(uniform(r, n * 2, 0.1, 2)),
    Float32Array.from([0.7]),
  ];
  const D = data(M, N);

  /** Kept and reduced extents of a plan from its variables' data (after the plan's transposition). */
  function extents(plan: KernelPlan, ins: readonly (Float32Array | undefined)[]): [number, number] {
    const ext: [number, number] = [1, 1];
    for (const v of plan.vars) if (v !== undefined && v.cat !== 2) ext[v.cat] = ins[v.index]!.length / v.dim;
    return ext;
  }

  function close(got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void {
    assert.is(got.length, want.length, `${what}: length`);
    for (let k = 0; k < want.length; k++) {
      const err = Math.abs(got[k]! - want[k]!);
      if (!(err <= tol * Math.max(1, Math.abs(want[k]!)))) assert.unreachable(`${what}[${k}]: got ${got[k]} want ${want[k]} (tolerance ${tol})`);
    }
  }

  async function same(f: Formula, opts: ReductionSpec, ins: readonly Float32Array[], tol = 1e-5): Promise<void> {
    const plan = makePlan(f, opts);
    const [m, n] = extents(plan, ins);
    const got = await gpu.run(plan, ins, m, n);
    const want = await cpu.run(plan, ins, m, n);
    assert.is(got.length, want.length);
    got.forEach((o, k) => {
      assert.is(o.constructor, want[k]!.constructor, `output ${k} dtype`);
      if (o instanceof Int32Array) assert.equal([...o], [...want[k]!], `${opts.reduction} output ${k} (indices)`);
      else close(o, want[k]!, tol, `${opts.reduction} axis ${opts.axis} output ${k}`);
    });
  }

  const sq = op('SqDist', [x, y]);
  const gauss = op('Exp', [op('Minus', [op('Mult', [g, sq])])]);

  for (const axis of [1, 0] as const) {
    test(`Sum of a Gaussian kernel times a vector weight, axis ${axis}`, async () => {
      await same(op('Mult', [gauss, b]), { reduction: 'Sum', axis }, D);
    });
    test(`LogSumExp, plain and weighted, axis ${axis}`, async () => {
      await same(op('Minus', [sq]), { reduction: 'LogSumExp', axis }, D);
      await same(op('Minus', [sq]), { reduction: 'LogSumExp', axis, weight: b }, D);
    });
    test(`ArgMin and KMin_ArgKMin (K=3), axis ${axis}`, async () => {
      await same(sq, { reduction: 'ArgMin', axis }, D);
      await same(sq, { reduction: 'KMin_ArgKMin', axis, K: 3 }, D);
    });
    test(`SumSoftMaxWeight with a vector weight, axis ${axis}`, async () => {
      await same(op('Minus', [sq]), { reduction: 'SumSoftMaxWeight', axis, weight: b }, D);
    });
    test(`a vector formula with literals: Min_ArgMin of (x - y)^2 * 0.5 - 2.5e-3, axis ${axis}`, async () => {
      const v = op('Subtract', [op('Mult', [op('Square', [op('Subtract', [x, y])]), mkConst(0.5)]), mkConst(2.5e-3)]);
      await same(v, { reduction: 'Min_ArgMin', axis }, D);
      await same(v, { reduction: 'Sum', axis }, D);
    });
  }

  test('polyfilled math (asin, acos, atan, atan2, log) is within 1e-6 of float64', async () => {
    const n = 4000;
    const u = Float32Array.from({ length: n }, (_, k) => -1 + (2 * (k + 0.5)) / n);
    const v = Float32Array.from({ length: n }, (_, k) => 1e-3 + (50 * k) / n);
    const a = mkVar(0, 1, 0);
    const c = mkVar(1, 1, 0);
    const cat = (p: Formula, q: Formula): Formula => op('Concat', [p, q]);
    const f = cat(cat(op('Asin', [a]), op('Acos', [a])), cat(cat(op('Atan', [op('Mult', [a, c])]), op('Atan2', [a, op('Subtract', [c, mkConst(25)])])), op('Log', [c])));
    const [got] = await gpu.run(makePlan(f, { reduction: 'Sum', axis: 1 }), [u, v], n, 1);
    const want: number[] = [];
    for (let k = 0; k < n; k++) {
      const x = u[k]!;
      const y = v[k]!;
      want.push(Math.asin(x), Math.acos(x), Math.atan(Math.fround(x * y)), Math.atan2(x, Math.fround(y - 25)), Math.log(y));
    }
    close(got!, want, 1e-6, 'math');
  });

  test('hasAdapter() agrees with the probe', async () => {
    assert.ok(await hasAdapter());
  });

  test('a 2e5-term Sum is within 1e-5 relative error of float64 (compensated in f32)', async () => {
    const n = 200_000;
    const ys = Float32Array.from(uniform(r, n, 0, 1));
    const xs = Float32Array.from([1, 2]);
    const f = op('Mult', [mkVar(0, 1, 0), op('Exp', [mkVar(1, 1, 1)])]);
    const [s] = await gpu.run(makePlan(f, { reduction: 'Sum', axis: 1 }), [xs, ys], 2, n);
    const ref = ys.reduce((a, v) => a + Math.exp(v), 0);
    close(s!, [ref, 2 * ref], 1e-5, 'long sum');
  });

  test('one dispatch per reduction; new sizes reuse the pipeline; peak bytes O(M+N)', async () => {
    const plan = makePlan(op('Mult', [gauss, b]), { reduction: 'Sum', axis: 1 });
    await gpu.run(plan, D, M, N); // make sure it is compiled
    resetStats();
    const D2 = data(300, 400);
    const out = await gpu.run(plan, D2, 300, 400);
    const s = stats();
    assert.is(s.dispatches, 1);
    assert.is(s.pipelinesCompiled, 0);
    assert.is(s.pipelineCacheHits, 1);
    assert.is(s.bytesAllocated, 0, 'every buffer is freed');
    assert.ok(s.peakBytes > 0 && s.peakBytes < 300 * 400 * 4 / 4, `peak ${s.peakBytes} bytes is O(M+N), far below M*N*4`);
    close(out[0]!, (await cpu.run(plan, D2, 300, 400))[0]!, 1e-5, 'resized');
  });

  test('rows beyond one dispatch are chunked: one dispatch per chunk, same results', async () => {
    const small = new GpuBackend({ maxWorkgroupsPerDispatch: 2, shape: () => ({ rowsPerThread: 2, workgroupSize: 8 }) });
    const plan = makePlan(sq, { reduction: 'ArgKMin', axis: 1, K: 3 });
    const D3 = data(70, 20); // 32 rows per dispatch: 3 chunks
    resetStats();
    const got = await small.run(plan, D3, 70, 20);
    assert.is(stats().dispatches, 3);
    assert.equal([...got[0]!], [...(await cpu.run(plan, D3, 70, 20))[0]!]);
  });

  test('edge sizes: M = 0 gives empty outputs, N = 0 gives an empty Sum', async () => {
    const plan = makePlan(op('Mult', [gauss, b]), { reduction: 'Sum', axis: 1 });
    const none = await gpu.run(plan, data(0, 5), 0, 5);
    assert.is(none[0]!.length, 0);
    const empty = await gpu.run(plan, data(4, 0), 4, 0);
    assert.equal([...empty[0]!], [0, 0, 0, 0, 0, 0, 0, 0]);
  });

  test('missing or short input data is a BackendError naming the variable', async () => {
    const plan = makePlan(sq, { reduction: 'Min', axis: 1 });
    try {
      await gpu.run(plan, [D[0]!, D[1]!.subarray(0, 6)], M, N);
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, BackendError);
      assert.match((e as Error).message, /variable 1/);
    }
  });

  test('a lost device fails nothing later: the next call acquires a new device and recompiles', async () => {
    const plan = makePlan(sq, { reduction: 'Min', axis: 1 });
    await gpu.run(plan, D, M, N);
    await loseDeviceForTesting();
    resetStats();
    const got = await gpu.run(plan, D, M, N);
    assert.is(stats().pipelinesCompiled, 1);
    close(got[0]!, (await cpu.run(plan, D, M, N))[0]!, 1e-6, 'after the loss');
  });

  test('a call pending when the device is lost fails with a BackendError', async () => {
    const plan = makePlan(op('Mult', [gauss, b]), { reduction: 'Sum', axis: 1 });
    await gpu.run(plan, D, M, N);
    const D4 = data(2000, 2000);
    const pending = gpu.run(plan, D4, 2000, 2000);
    await new Promise((res) => setTimeout(res, 0));
    await loseDeviceForTesting();
    try {
      await pending;
      // The work may have finished before the loss; then there is nothing to report.
    } catch (e) {
      assert.instance(e, BackendError);
      assert.match((e as Error).message, /device lost/);
    }
  });
}
