import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendError, OptionError } from '../../src/errors.js';
import { mkVar } from '../../src/graph/formula.js';
import { loseDeviceForTesting, releaseDevice } from '../../src/gpu/device.js';
import { MAX_COLS } from '../../src/gpu/vectors.js';
import { op } from '../../src/ops/build.js';
import { solveKernel, type KernelSolveOptions } from '../../src/solve/kernel-solve.js';
import { stats } from '../../src/stats.js';
import { testBackend, useTestBackend } from '../helpers/backend.js';
import { choleskySolve, gaussianMatrix, relErr } from '../helpers/dense.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * Resident conjugate gradient (issue 19): on WebGPU the CG vectors stay on the device and only
 * per-column scalars (and the preconditioner's k x cols projection) are read back per iteration;
 * the solution matches a dense float64 solve as the host path's does, in about as many
 * iterations; a device lost mid-solve is a typed error and the next solve works. On the CPU
 * backend `resident: true` is an OptionError saying why, and 'auto' keeps the host path.
 */

const D = 2;
const g = 50; // sigma 0.1
const alpha = 0.01;
const K = op('Exp', [op('Minus', [op('Mult', [mkVar(2, 1, 2), op('SqDist', [mkVar(0, D, 0), mkVar(1, D, 1)])])])]);

function problem(n: number, Dv: number, seed: number) {
  const r = rng(seed);
  const x = Float32Array.from(uniform(r, n * D, 0, 1));
  const b = Float32Array.from(uniform(r, n * Dv, 0, 1));
  const vals = [{ data: x, shape: [n, D] }, { data: x, shape: [n, D] }, { data: Float32Array.of(g), shape: [1] }];
  return { x, b, vals, B: { data: b, shape: [n, Dv] } };
}

const solve = (n: number, Dv: number, seed: number, opts: KernelSolveOptions) => {
  const { vals, B } = problem(n, Dv, seed);
  return solveKernel(K, vals, B, { alpha, rank: 128, ...opts });
};

test.before(useTestBackend);
test.after(() => releaseDevice());

if (testBackend() === 'webgpu') {
  for (const [precond, Dv] of [['nystrom', 2], ['none', 1], ['nystrom', 3]] as const) {
    test(`resident solve (n = 600, ${Dv} column(s), precond ${precond}): matches dense float64 like the host path, in as many iterations (within 2; 3% without a preconditioner)`, async () => {
      const n = 600;
      const before = stats().bytesAllocated;
      const { x, b } = problem(n, Dv, 21);
      const want = choleskySolve(gaussianMatrix(x, n, D, g, alpha), n, b, Dv);
      const host = await solve(n, Dv, 21, { precond, resident: false });
      const dev = await solve(n, Dv, 21, { precond });
      assert.is(host.info.resident, false);
      assert.is(dev.info.resident, true, "'auto' is resident on WebGPU");
      // Float32 vectors round the recurrences: the same count within 2 over tens of iterations; over
      // hundreds (no preconditioner) a few percent more (measured 315 vs 312 here, 800 vs 781 at n = 5000).
      const slack = precond === 'nystrom' ? 2 : Math.ceil(0.03 * host.iterations);
      assert.ok(Math.abs(dev.iterations - host.iterations) <= slack, `${dev.iterations} resident vs ${host.iterations} host iterations`);
      assert.ok(dev.residual <= 1e-6, `residual ${dev.residual}`);
      const e = relErr(dev.c.data, want);
      assert.ok(e < 2 * relErr(host.c.data, want) + 1e-5, `resident error ${e} vs host ${relErr(host.c.data, want)}`);
      assert.ok(e < 1e-3, `error vs dense float64 ${e}`);
      assert.is(stats().bytesAllocated, before, 'every device buffer freed');
    });
  }

  test('resident solve: per iteration only per-column scalars and the k x cols projection are read back', async () => {
    const n = 2000;
    const Dv = 2;
    for (const precond of ['nystrom', 'none'] as const) {
      const dev = await solve(n, Dv, 22, { precond });
      const host = await solve(n, Dv, 22, { precond, resident: false });
      const k = dev.info.rank;
      // Each iteration: p·Ap, r·r (and r·z), one float per column each, F^T r as float32 pairs (k rounded up
      // to 4, per column) and the reduction's two timestamps (16 bytes, aligned to 8); once: the solution (float32 and its kept errors).
      const perIter = (3 * Dv + 2 * 4 * Math.ceil(k / 4) * Dv) * 4 + 24;
      const bound = dev.iterations * perIter + 2 * n * Dv * 4;
      assert.ok(dev.info.readbackBytes > 0 && dev.info.readbackBytes <= bound, `${precond}: ${dev.info.readbackBytes} bytes read back in ${dev.iterations} iterations (rank ${k}), bound ${bound}`);
      // The host path reads every reduction's n x cols result.
      assert.ok(host.info.readbackBytes >= host.iterations * n * Dv * 4, `host path: ${host.info.readbackBytes} bytes`);
    }
  });

  test('resident solve: a warm start converges in fewer iterations to the same solution', async () => {
    const n = 600;
    const Dv = 2;
    const { vals, B, x, b } = problem(n, Dv, 23);
    const first = await solveKernel(K, vals, B, { alpha, precond: 'none', tol: 1e-3 });
    const again = await solveKernel(K, vals, B, { alpha, precond: 'none', x0: first.c });
    const cold = await solveKernel(K, vals, B, { alpha, precond: 'none' });
    assert.ok(again.info.resident && again.iterations < cold.iterations, `${again.iterations} warm vs ${cold.iterations} cold`);
    const want = choleskySolve(gaussianMatrix(x, n, D, g, alpha), n, b, Dv);
    assert.ok(relErr(again.c.data, want) < 1e-3, `error ${relErr(again.c.data, want)}`);
  });

  test('resident solve with refinement: the corrections run resident and reach the float64 tolerance', async () => {
    const n = 800;
    const Dv = 2;
    const { x, b } = problem(n, Dv, 24);
    const want = choleskySolve(gaussianMatrix(x, n, D, g, alpha), n, b, Dv);
    const plain = await solve(n, Dv, 24, {});
    const refined = await solve(n, Dv, 24, { refine: 2 });
    assert.ok(refined.info.resident && refined.info.refinements >= 1, `${refined.info.refinements} corrections`);
    assert.ok(refined.info.float64Residual <= 1e-4, `float64 residual ${refined.info.float64Residual}`);
    // The float64 solution is rounded to float32 on output: refinement gets within a few float32 ulps of it.
    assert.ok(relErr(refined.c.data, want) < relErr(plain.c.data, want), `refined ${relErr(refined.c.data, want)} vs ${relErr(plain.c.data, want)}`);
    assert.ok(relErr(refined.c.data, want) < 1e-5, `refined error ${relErr(refined.c.data, want)}`);
  });

  test('resident solve: a device lost mid-solve rejects with the typed device-lost error; the next solve works', async () => {
    const n = 1500;
    const before = stats().bytesAllocated;
    let lost = false;
    const failed = await solve(n, 1, 25, {
      precond: 'none',
      onProgress: (p) => {
        if (p.phase === 'iterate' && p.iter === 5 && !lost) {
          lost = true;
          void loseDeviceForTesting();
        }
      },
    }).then(
      () => undefined,
      (e: unknown) => e,
    );
    assert.ok(lost, 'the device was lost during the iterations');
    assert.instance(failed, BackendError);
    assert.match((failed as Error).message, /device lost/);
    assert.is(stats().bytesAllocated, before, 'the failed solve freed its buffers');
    const next = await solve(600, 1, 25, { precond: 'nystrom' });
    assert.ok(next.info.resident && next.residual <= 1e-6, `next solve: residual ${next.residual}`);
  });
  test(`resident auto with more columns than a resident block takes stays on the host; true says why`, async () => {
    const n = 200;
    const Dv = MAX_COLS + 1;
    const { x, b } = problem(n, Dv, 28);
    const auto = await solve(n, Dv, 28, {});
    assert.is(auto.info.resident, false);
    const want = choleskySolve(gaussianMatrix(x, n, D, g, alpha), n, b, Dv);
    assert.ok(relErr(auto.c.data, want) < 1e-3, `error ${relErr(auto.c.data, want)}`);
    try {
      await solve(n, Dv, 28, { resident: true });
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, OptionError);
      assert.match((e as Error).message, new RegExp(`b has ${Dv} columns`));
    }
  });
} else {
  test('on the CPU backend: resident true is an OptionError saying why; auto keeps the host path', async () => {
    const auto = await solve(300, 2, 26, {});
    assert.is(auto.info.resident, false);
    assert.is(auto.info.readbackBytes, 0, 'nothing read back from a device');
    try {
      await solve(300, 2, 26, { resident: true });
      assert.unreachable('should throw');
    } catch (e) {
      assert.instance(e, OptionError);
      assert.is((e as OptionError).option, 'resident');
      assert.match((e as Error).message, /resident: true cannot apply: the reductions run on the cpu backend/);
    }
  });
}

test('resident true with float64 data is an OptionError (float64 solves run on the CPU backend)', async () => {
  const n = 100;
  const { x, b } = problem(n, 1, 27);
  const vals = [{ data: Float64Array.from(x), shape: [n, D] }, { data: Float64Array.from(x), shape: [n, D] }, { data: Float64Array.of(g), shape: [1] }];
  try {
    await solveKernel(K, vals, { data: Float64Array.from(b), shape: [n, 1] }, { alpha, resident: true, backend: 'cpu' });
    assert.unreachable('should throw');
  } catch (e) {
    assert.instance(e, OptionError);
    assert.match((e as Error).message, /float64/);
  }
});

test.run();
