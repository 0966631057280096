import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { kernelSolve, OptionError, resetStats, stats, type SolveProgress } from '../../src/index.js';
import { mkVar } from '../../src/graph/formula.js';
import { op } from '../../src/ops/build.js';
import { executeReduction } from '../../src/scheduler/execute.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { choleskySolve, gaussianMatrix, relErr } from '../helpers/dense.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * Progress of a solve through the function API (issue 19): kernelSolve's onProgress reports the
 * preconditioner's setup, then every iteration, with iteration numbers that never decrease and a
 * last residual below tol; on the CPU backend and, where an adapter exists, on WebGPU.
 */

const backends = webgpuTestable(test, 'the WebGPU progress tests') ? (['cpu', 'webgpu'] as const) : (['cpu'] as const);

const D = 2;
const Dv = 2;
const g = 50;
const alpha = 0.01;
const F = 'Exp(-g*SqDist(x,y))*b';
const A = ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)', 'g = Pm(1)'];

function problem(n: number, seed: number) {
  const r = rng(seed);
  const x = Float32Array.from(uniform(r, n * D, 0, 1));
  const b = Float32Array.from(uniform(r, n * Dv, 0, 1));
  return { x, b, X: { data: x, shape: [n, D] }, B: { data: b, shape: [n, Dv] }, G: { data: Float32Array.of(g), shape: [1] } };
}

/** Checks a solve's progress events: setup first, then iterations 1, 2, ..., k with the last residual below tol. */
function checkEvents(events: readonly SolveProgress[], tol: number, preconditioned: boolean): void {
  assert.ok(events.length > 0, 'some progress was reported');
  for (let k = 1; k < events.length; k++) {
    assert.ok(events[k]!.iter >= events[k - 1]!.iter, `iteration numbers never decrease (${events[k - 1]!.iter} then ${events[k]!.iter})`);
    assert.ok(events[k]!.elapsedMs >= events[k - 1]!.elapsedMs, 'elapsed time never decreases');
  }
  for (const e of events) assert.ok(e.fraction >= 0 && e.fraction <= 1, `fraction ${e.fraction}`);
  const setup = events.filter((e) => e.phase === 'setup');
  const iterations = events.filter((e) => e.phase === 'iterate');
  assert.ok(iterations.length > 0, 'iterations were reported');
  assert.equal(
    iterations.map((e) => e.iter),
    iterations.map((_, k) => k + 1),
    'one event per iteration, numbered 1, 2, ...',
  );
  const last = iterations[iterations.length - 1]!;
  assert.ok(last.residual <= tol, `final residual ${last.residual} <= ${tol}`);
  assert.ok(iterations.slice(0, -1).every((e) => e.residual > tol), 'earlier iterations had not converged');
  if (preconditioned) {
    assert.ok(setup.length >= 2, `setup reported (${setup.length} events)`);
    assert.ok(events.indexOf(setup[setup.length - 1]!) < events.indexOf(iterations[0]!), 'setup comes before the iterations');
    assert.ok(setup.every((e) => e.iter === 0 && e.residual === 1), 'setup events: no iteration yet, residual 1 (zero start)');
    assert.ok(last.rank > 0 && last.setupMs > 0, `rank ${last.rank}, setup ${last.setupMs} ms`);
    assert.ok(iterations.every((e) => e.rank === last.rank && e.setupMs === last.setupMs), 'rank and setup time are final during the iterations');
  } else {
    assert.is(setup.length, 0);
    assert.is(last.rank, 0);
  }
}

for (const backend of backends) {
  test(`kernelSolve on ${backend}: onProgress reports setup, then monotone iterations down to tol; c matches dense`, async () => {
    const n = 600;
    const { x, b, X, B, G } = problem(n, 31);
    const events: SolveProgress[] = [];
    const Kinv = kernelSolve(F, A, 'b', { axis: 1, backend, rank: 64 });
    const c = await Kinv(X, X, B, G, { alpha, onProgress: (p) => events.push(p) });
    checkEvents(events, 1e-6, true);
    const want = choleskySolve(gaussianMatrix(x, n, D, g, alpha), n, b, Dv);
    assert.ok(relErr(c.data, want) < 1e-3, `relative error ${relErr(c.data, want)}`);
  });

  test(`kernelSolve on ${backend}: onProgress given as a default, without a preconditioner, and with tol 1e-4`, async () => {
    const n = 300;
    const { X, B, G } = problem(n, 32);
    const events: SolveProgress[] = [];
    const Kinv = kernelSolve(F, A, 'b', { axis: 1, backend, alpha, precond: 'none', tol: 1e-4, onProgress: (p) => events.push(p) });
    await Kinv(X, X, B, G);
    checkEvents(events, 1e-4, false);
    // A per-call callback replaces the default one.
    const mine: SolveProgress[] = [];
    const before = events.length;
    await Kinv(X, X, B, G, { onProgress: (p) => mine.push(p) });
    assert.is(events.length, before);
    checkEvents(mine, 1e-4, false);
  });
}

test('kernelSolve: a warm start reports NaN as the residual until its first is known; onProgress must be a function', async () => {
  const n = 600;
  const { X, B, G } = problem(n, 33);
  const events: SolveProgress[] = [];
  const x0 = { data: B.data.map((v) => v * 0.5), shape: B.shape };
  await kernelSolve(F, A, 'b', { axis: 1 })(X, X, B, G, { alpha, rank: 64, x0, onProgress: (p) => events.push(p) });
  const setup = events.filter((e) => e.phase === 'setup');
  assert.ok(setup.length > 0 && setup.every((e) => Number.isNaN(e.residual)));
  assert.ok(events.filter((e) => e.phase === 'iterate').every((e) => Number.isFinite(e.residual)));
  try {
    await kernelSolve(F, A, 'b', { axis: 1 })(X, X, B, G, { alpha, onProgress: 'yes' as never });
    assert.unreachable('should reject');
  } catch (e) {
    assert.instance(e, OptionError);
    assert.is((e as Error).message, "kernelSolve (per-call options): option 'onProgress' must be a function, got 'yes'");
  }
});

test('a solve counts its workspaces (the Nyström factor, the CG vectors) in stats() while it runs, and releases them', async () => {
  const n = 1200;
  const { X, B, G } = problem(n, 35);
  resetStats();
  const before = stats().bytesAllocated;
  let during = 0;
  let rank = 0;
  await kernelSolve(F, A, 'b', { axis: 1, backend: 'cpu' })(X, X, B, G, {
    alpha,
    rank: 200,
    onProgress: (p) => {
      during = Math.max(during, stats().bytesAllocated - before);
      rank = p.rank;
    },
  });
  const peak = stats().peakBytes - before;
  assert.ok(rank > 100, `rank ${rank}`);
  assert.ok(during >= n * rank * 4, `while iterating, at least F (${n * rank * 4} bytes) is counted: ${during}`);
  assert.ok(peak >= n * 200 * 4 && peak < 2 * (n * D * 4 + 200 * n * 8), `peak ${peak}: F at its cap, O(n)`);
  assert.is(stats().bytesAllocated, before, 'all released');
});

for (const backend of backends) {
  test(`a reduction that reports progress on ${backend} runs in slices of the kept rows: increasing fractions up to 1, the same result`, async () => {
    const M = 1000;
    const N = 700;
    const r = rng(34);
    const f = op('Mult', [op('Exp', [op('Minus', [op('SqDist', [mkVar(0, 2, 0), mkVar(1, 2, 1)])])]), mkVar(2, 3, 1)]);
    const args = [
      { data: Float32Array.from(uniform(r, M * 2)), shape: [M, 2] },
      { data: Float32Array.from(uniform(r, N * 2)), shape: [N, 2] },
      { data: Float32Array.from(uniform(r, N * 3)), shape: [N, 3] },
    ];
    const [whole] = await executeReduction(f, { reduction: 'Sum', axis: 1, backend }, args);
    const fractions: number[] = [];
    const [sliced] = await executeReduction(f, { reduction: 'Sum', axis: 1, backend, onProgress: (p) => fractions.push(p), progressPairs: 100_000 }, args);
    assert.is(fractions.length, 7); // ceil(1000 * 700 / 1e5) slices
    assert.ok(fractions.every((p, k) => p > (fractions[k - 1] ?? 0)), fractions.join(', '));
    assert.is(fractions[fractions.length - 1], 1);
    assert.equal(sliced!.shape, whole!.shape);
    assert.equal(Array.from(sliced!.data), Array.from(whole!.data));
    // Below the threshold, one dispatch and one report.
    const once: number[] = [];
    await executeReduction(f, { reduction: 'Sum', axis: 1, backend, onProgress: (p) => once.push(p) }, args);
    assert.equal(once, [1]);
  });
}

test.run();
