/**
 * The two WebGPU kernel profiles (src/gpu/profile.ts): the GPU profile's tiles of j-variables in
 * workgroup memory, sized to the device's limit, on every path (one pass, split, chunked, partial
 * last tile, rows past M); the autotuner (src/gpu/tuner.ts); pinned shapes; the init options.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Vi, Vj } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { BackendError, OptionError } from '../../src/errors.js';
import { mkVar, type Formula } from '../../src/graph/formula.js';
import { GpuBackend } from '../../src/gpu/backend.js';
import { renderKernelWgsl, renderPartialWgsl } from '../../src/gpu/codegen.js';
import { releaseDevice } from '../../src/gpu/device.js';
import { envProfile, gpuShape, shapeCandidates, tileRowsFor } from '../../src/gpu/profile.js';
import { kernelShapes, timeCandidates, tuneSize } from '../../src/gpu/tuner.js';
import { makePlan } from '../../src/kernel/plan.js';
import { op } from '../../src/ops/build.js';
import { init, shutdown } from '../../src/scheduler/backends.js';
import { resetStats, stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng, uniform } from '../helpers/random.js';

const x = mkVar(0, 3, 0);
const y = mkVar(1, 3, 1);
const b = mkVar(2, 2, 1);
const gauss: Formula = op('Exp', [op('Minus', [op('SqDist', [x, y])])]);
const sumPlan = makePlan(op('Mult', [gauss, b]), { reduction: 'Sum', axis: 1 });
const lsePlan = makePlan(op('Minus', [op('SqDist', [x, y])]), { reduction: 'LogSumExp', axis: 1 });
const knnPlan = makePlan(op('SqDist', [x, y]), { reduction: 'ArgKMin', axis: 1, K: 5 });

// ---- shapes and printing (no adapter needed) ----

test('GPU profile: one row per invocation, workgroups of 128, a tile of 128 j-rows of x_j and b_j (5 floats each)', () => {
  assert.equal(gpuShape(sumPlan), { rowsPerThread: 1, workgroupSize: 128, tileRows: 128 });
  const { source } = renderKernelWgsl(sumPlan, gpuShape(sumPlan));
  assert.match(source, /var<workgroup> TJ: array<f32, 640>;/);
  assert.is(source.match(/workgroupBarrier\(\);/g)?.length, 2);
  assert.match(source, /TJ\[q\] = XJ\[t0 \* 5u \+ q\]/);
  // Rows past M take part in every tile's loads and barriers: no early return.
  assert.not.match(source, /return;/);
  assert.not.match(source, /XJ\[jb/);
});

test('tiles respect maxComputeWorkgroupStorageSize: floor(limit / bytes per j-row), none when one row does not fit', () => {
  const wide = (D: number) => makePlan(op('SqDist', [mkVar(0, D, 0), mkVar(1, D, 1)]), { reduction: 'Sum', axis: 1 });
  assert.is(tileRowsFor(wide(1000), 128, 16384), 4); // 4000 bytes per row
  assert.is(tileRowsFor(wide(1000), 128, 65536), 16);
  assert.is(tileRowsFor(wide(4096), 128, 16384), 1);
  assert.is(tileRowsFor(wide(4097), 128, 16384), 0);
  assert.is(tileRowsFor(wide(3), 128, 16384), 128);
  const big = renderKernelWgsl(wide(1000), gpuShape(wide(1000)));
  assert.match(big.source, /var<workgroup> TJ: array<f32, 4000>;/);
  const none = renderKernelWgsl(wide(5000), gpuShape(wide(5000)));
  assert.not.match(none.source, /var<workgroup>|workgroupBarrier/);
  assert.match(none.source, /if \(base >= M\) \{ return; \}/);
  // No j-variable: nothing to tile.
  const noJ = makePlan(op('SqNorm2', [x]), { reduction: 'Sum', axis: 1 });
  assert.is(gpuShape(noJ).tileRows, 0);
});

test('pass 1 of a split tiles its block of j (uniform per workgroup: from the workgroup id)', () => {
  const { source } = renderPartialWgsl(knnPlan, gpuShape(knnPlan));
  assert.match(source, /for \(var t0: u32 = j0; t0 < j1; t0 = t0 \+ 128u\)/);
  assert.match(source, /let jf = f32\(jbase \+ j\);/);
  assert.not.match(source, /return;/);
});

test('the autotuner: at most 4 distinct candidates, the profile default first', () => {
  for (const profile of ['cpu', 'gpu'] as const) {
    for (const plan of [sumPlan, lsePlan, knnPlan]) {
      const c = shapeCandidates(profile, plan);
      assert.ok(c.length >= 2 && c.length <= 4, `${profile}: ${c.length} candidates`);
      assert.equal(c[0], new GpuBackend({ profile }).shapeFor(plan));
      assert.is(new Set(c.map((s) => JSON.stringify(s))).size, c.length);
    }
  }
});

test('the autotuner times only problems large enough to measure, on a bounded corner', () => {
  assert.is(tuneSize(1000, 1000, true), null);
  assert.is(tuneSize(100, 1e9, true)![0], 100);
  const [m, n] = tuneSize(1e6, 1e6, true)!;
  assert.ok(m * n <= 1 << 24 && m <= 1e6 && n <= 1e6);
  const [gm, gn] = tuneSize(1e6, 1e6, false)!;
  assert.ok(gm * gn <= 2 ** 32 && gm * gn > 2 ** 31);
});

test('timeCandidates: each candidate warmed up once, then timed in alternated rounds; fastest first; failing shapes left out', async () => {
  const calls: number[] = [];
  const shapes = [1, 2, 3].map((R) => ({ rowsPerThread: R, workgroupSize: 16 }));
  const ms = { 1: 5, 2: 3, 3: NaN } as Record<number, number>;
  const ranked = await timeCandidates(shapes, async (s) => {
    calls.push(s.rowsPerThread);
    if (s.rowsPerThread === 3) throw new Error('rejected');
    return ms[s.rowsPerThread]!;
  });
  assert.equal(calls, [1, 2, 3, 1, 2, 1, 2]);
  assert.equal(ranked.map((r) => [r.shape.rowsPerThread, r.ms]), [[2, 3], [1, 5]]);
  try {
    await timeCandidates(shapes.slice(2), async () => Promise.reject(new BackendError('no')));
    assert.unreachable('all failing');
  } catch (e) {
    assert.instance(e, BackendError);
  }
});

test('the profile: options first, then KERNELFLOW_GPU_PROFILE, then the adapter (CPU drivers: cpu)', () => {
  assert.is(new GpuBackend({ profile: 'gpu' }).profileFor({ software: true }), 'gpu');
  assert.is(new GpuBackend({ profile: 'cpu' }).profileFor({ software: false }), 'cpu');
  const forced = process.env.KERNELFLOW_GPU_PROFILE ?? '';
  if (forced === '' || forced === 'auto') {
    assert.is(new GpuBackend().profileFor({ software: true }), 'cpu');
    assert.is(new GpuBackend().profileFor({ software: false }), 'gpu');
  } else {
    assert.is(new GpuBackend().profileFor({ software: true }), forced);
  }
  assert.is(envProfile(''), 'auto');
  assert.throws(() => envProfile('fast'), (e: unknown) => e instanceof BackendError && /KERNELFLOW_GPU_PROFILE='fast'/.test((e as Error).message));
});

test('init options: gpuProfile, autotune and kernelShape are validated with OptionErrors naming the key', async () => {
  const bad: [unknown, RegExp][] = [
    [{ gpuProfile: 'fast' }, /option 'gpuProfile' must be one of 'auto', 'cpu', 'gpu', got 'fast'/],
    [{ autotune: 'yes' }, /option 'autotune' must be one of true, false, 'auto'/],
    [{ kernelShape: 4 }, /option 'kernelShape' must be an object/],
    [{ kernelShape: { rowsPerThread: 0, workgroupSize: 64 } }, /kernelShape: option 'rowsPerThread' must be an integer from 1 to 16, got 0/],
    [{ kernelShape: { rowsPerThread: 1, workgroupSize: 512 } }, /option 'workgroupSize' must be an integer from 1 to 256/],
    [{ kernelShape: { rowsPerThread: 1, workgroupSize: 64, tileRows: -1 } }, /option 'tileRows'/],
    [{ kernelShape: { rowsPerThread: 1, workgroupsize: 64 } }, /unknown option 'workgroupsize' \(did you mean 'workgroupSize'\?\)/],
    [{ kernelShape: { rowsPerThread: 1 } }, /option 'kernelShape' needs workgroupSize/],
  ];
  for (const [opts, want] of bad) {
    try {
      await init({ backend: 'cpu', ...(opts as object) });
      assert.unreachable(`accepted ${JSON.stringify(opts)}`);
    } catch (e) {
      assert.instance(e, OptionError, String(e));
      assert.match((e as Error).message, want);
    }
  }
  await init({ backend: 'cpu', gpuProfile: 'auto', autotune: 'auto' });
});

// ---- on the device ----

if (webgpuTestable(test, 'the GPU-profile tests')) registerDeviceTests();

test.after(async () => {
  await shutdown();
  await releaseDevice();
});

test.run();

function registerDeviceTests(): void {
  const r = rng(5);
  const cloud = (n: number, dim: number, lo = -1, hi = 1): Float32Array => Float32Array.from(uniform(r, n * dim, lo, hi));
  const sq = (a: Float32Array, i: number, c: Float32Array, j: number, D: number): number => {
    let s = 0;
    for (let k = 0; k < D; k++) s += (a[i * D + k]! - c[j * D + k]!) ** 2;
    return s;
  };
  // M and N not multiples of the workgroup or the tile: rows past M and a partial last tile.
  const M = 301;
  const N = 1037;
  const X = cloud(M, 3);
  const Y = cloud(N, 3);
  const B = cloud(N, 2, 0.1, 2);

  const refSum = (): number[] =>
    Array.from({ length: M }, (_, i) => [0, 1].map((c) => Array.from({ length: N }, (_, j) => Math.exp(-sq(X, i, Y, j, 3)) * B[j * 2 + c]!).reduce((s, v) => s + v, 0))).flat();
  const refLse = (): number[] =>
    Array.from({ length: M }, (_, i) => {
      const v = Array.from({ length: N }, (_, j) => -sq(X, i, Y, j, 3));
      const m = Math.max(...v);
      return m + Math.log(v.reduce((s, t) => s + Math.exp(t - m), 0));
    });
  const refKnn = (): number[] =>
    Array.from({ length: M }, (_, i) =>
      Array.from({ length: N }, (_, j) => j)
        .sort((p, q) => sq(X, i, Y, p, 3) - sq(X, i, Y, q, 3) || p - q)
        .slice(0, 5),
    ).flat();
  const want = { sum: refSum(), lse: refLse(), knn: refKnn() };

  const close = (got: ArrayLike<number>, ref: readonly number[], tol: number, what: string): void => {
    assert.is(got.length, ref.length, what);
    for (let k = 0; k < ref.length; k++) {
      if (!(Math.abs(got[k]! - ref[k]!) <= tol * Math.max(1, Math.abs(ref[k]!)))) assert.unreachable(`${what}: [${k}] got ${got[k]}, want ${ref[k]}`);
    }
  };

  async function checkAll(gpu: GpuBackend, what: string): Promise<void> {
    close((await gpu.run(sumPlan, [X, Y, B], M, N))[0]!, want.sum, 1e-5, `${what}: Gaussian sum`);
    close((await gpu.run(lsePlan, [X, Y], M, N))[0]!, want.lse, 1e-5, `${what}: LogSumExp`);
    close((await gpu.run(knnPlan, [X, Y], M, N))[0]!, want.knn, 0, `${what}: ArgKMin K=5`);
  }

  test('GPU profile on the device: Sum, LogSumExp and ArgKMin equal float64 brute force (one pass)', async () => {
    await checkAll(new GpuBackend({ profile: 'gpu', split: 'off' }), 'one pass');
  });

  test('GPU profile with the reduced axis split into blocks of 100 and 64 terms (tiles end inside blocks) equals brute force', async () => {
    await checkAll(new GpuBackend({ profile: 'gpu', split: 100 }), 'blocks of 100');
    await checkAll(new GpuBackend({ profile: 'gpu', split: 64, maxWorkgroupsPerDispatch: 2 }), 'blocks of 64, chunked');
  });

  test('pinned shapes: small tiles (7 rows), tiles larger than the workgroup (300 rows over 32 invocations), 2 rows per invocation', async () => {
    for (const pin of [
      { rowsPerThread: 1, workgroupSize: 64, tileRows: 7 },
      { rowsPerThread: 2, workgroupSize: 32, tileRows: 300 },
      { rowsPerThread: 3, workgroupSize: 16, tileRows: 0 },
    ]) {
      const gpu = new GpuBackend({ pin });
      assert.match(gpu.source(sumPlan), new RegExp(`@workgroup_size\\(${pin.workgroupSize}\\)`));
      await checkAll(gpu, `pinned ${JSON.stringify(pin)}`);
    }
    const last = kernelShapes().at(-1)!;
    assert.is(last.chosenBy, 'pinned');
    assert.equal(last.shape, { rowsPerThread: 3, workgroupSize: 16, tileRows: 0 });
  });

  test('wide j-variables (D = 1100): tiles of 3 rows in 16 KiB; the Gaussian sum equals brute force', async () => {
    const D = 1100;
    const m = 40;
    const n = 70;
    const xi = mkVar(0, D, 0);
    const yj = mkVar(1, D, 1);
    const plan = makePlan(op('Exp', [op('Minus', [op('SqDist', [xi, yj])])]), { reduction: 'Sum', axis: 1 });
    const gpu = new GpuBackend({ profile: 'gpu' });
    assert.is(gpu.shapeFor(plan).tileRows, 3);
    const xs = cloud(m, D, -0.03, 0.03);
    const ys = cloud(n, D, -0.03, 0.03);
    const ref = Array.from({ length: m }, (_, i) => Array.from({ length: n }, (_, j) => Math.exp(-sq(xs, i, ys, j, D))).reduce((s, v) => s + v, 0));
    close((await gpu.run(plan, [xs, ys], m, n))[0]!, ref, 2e-5, 'wide Gaussian sum');
  });

  test('the autotuner: the first large call times 2-4 shapes and keeps the fastest; later calls compile nothing; kernelShapes() reports it', async () => {
    const gpu = new GpuBackend({ autotune: true, profile: 'gpu' });
    const m = 2048;
    const n = 2048;
    const xs = cloud(m, 3);
    const ys = cloud(n, 3);
    const bs = cloud(n, 2, 0.1, 2);
    const small = await gpu.run(sumPlan, [X, Y, B], M, N); // too small to tune: the profile's shape
    close(small[0]!, want.sum, 1e-5, 'untuned');
    const [out] = await gpu.run(sumPlan, [xs, ys, bs], m, n);
    const info = kernelShapes().find((s) => s.chosenBy === 'tuned' && s.kernel.startsWith('Sum'));
    assert.ok(info !== undefined, JSON.stringify(kernelShapes()));
    assert.is(info!.profile, 'gpu');
    assert.equal(info!.tunedOn, [m, n]);
    const c = info!.candidates!;
    assert.ok(c.length >= 2 && c.length <= 4, `${c.length} candidates`);
    assert.ok(c.every((k, i) => Number.isFinite(k.ms) && k.ms > 0 && (i === 0 || k.ms >= c[i - 1]!.ms)), JSON.stringify(c));
    assert.equal(info!.shape, c[0]!.shape);
    // The tuned call's result is right; the next call uses the winner's cached pipeline.
    for (const i of [0, 777, 2047]) {
      const ref = [0, 1].map((k) => Array.from({ length: n }, (_, j) => Math.exp(-sq(xs, i, ys, j, 3)) * bs[j * 2 + k]!).reduce((s, v) => s + v, 0));
      close([out![2 * i]!, out![2 * i + 1]!], ref, 1e-5, `tuned row ${i}`);
    }
    resetStats();
    await gpu.run(sumPlan, [xs, ys, bs], m, n);
    assert.is(stats().pipelinesCompiled, 0);
  });

  test('init({ gpuProfile, kernelShape }) reaches the WebGPU backend of the public API', async () => {
    await init({ backend: 'webgpu', gpuProfile: 'gpu', autotune: false });
    const before = stats().bytesAllocated; // what earlier suites still hold
    resetStats();
    const xs = source(X.slice(), [M, 3]);
    const ys = source(Y.slice(), [N, 3]);
    const got = await Vi(xs).sqdist(Vj(ys)).neg().logsumexp(1).read();
    close(got.data, want.lse, 1e-5, 'public LogSumExp');
    assert.is(stats().dispatches, 1);
    assert.ok(kernelShapes().some((s) => s.profile === 'gpu' && s.chosenBy === 'profile' && s.shape.tileRows === 128 && s.kernel.startsWith('LogSumExp')), JSON.stringify(kernelShapes()));
    await init({ backend: 'webgpu', kernelShape: { rowsPerThread: 1, workgroupSize: 32, tileRows: 9 } });
    resetStats();
    const sources = [source(X.slice(), [M, 3]), source(Y.slice(), [N, 3])];
    const again = await Vi(sources[0]!).sqdist(Vj(sources[1]!)).neg().logsumexp(1).read();
    assert.is(stats().pipelinesCompiled, 1, JSON.stringify([stats(), kernelShapes()])); // a new backend with the pinned shape
    close(again.data, want.lse, 1e-5, 'pinned LogSumExp');
    assert.ok(kernelShapes().some((s) => s.chosenBy === 'pinned' && s.shape.tileRows === 9 && s.shape.workgroupSize === 32));
    // Leave nothing allocated for the suites after this one (they check that every buffer is freed).
    for (const n of [xs, ys, ...sources]) n.dispose();
    assert.is(stats().bytesAllocated, before);
    await init({ backend: 'cpu', gpuProfile: 'auto', autotune: 'auto' });
  });
}
