import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Cat, mkVar, type Formula } from '../../src/graph/formula.js';
import { GpuBackend, type GpuBackendOptions } from '../../src/gpu/backend.js';
import { releaseDevice } from '../../src/gpu/device.js';
import { GpuVectors } from '../../src/gpu/vectors.js';
import { makePlan } from '../../src/kernel/plan.js';
import { op } from '../../src/ops/build.js';
import { stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * A reduction bound to the device (issue 19): `apply(p, out)` leaves in `out` what `run` returns
 * for the same plan with p as the data of variable pVar, and both match a float64 sum computed
 * here: p sharing its packed buffer with another variable (scattered into its columns) or alone
 * in it (copied), several columns, a forced split of the reduced axis, chunked dispatches, and a
 * second apply to another direction. Every buffer is returned to stats().
 */

if (webgpuTestable(test, 'the bound reduction tests')) register();

test.after(() => releaseDevice());
test.run();

function register(): void {
  const r = rng(73);
  const D = 2;
  const g = 20;
  // sum_j exp(-g |x_i - y_j|^2) p_j: x Vi(0, 2), y Vj(1, 2), p Vj(2, cols), g Pm(3, 1); y and p share the j buffer.
  const gauss = (cols: number): Formula =>
    op('Mult', [op('Exp', [op('Minus', [op('Mult', [mkVar(3, 1, Cat.param), op('SqDist', [mkVar(0, D, Cat.i), mkVar(1, D, Cat.j)])])])]), mkVar(2, cols, Cat.j)]);
  // sum_j exp(-|x_i - q|^2) p_j: p alone among the j-variables (its packed buffer is p itself).
  const lone = (cols: number): Formula =>
    op('Mult', [op('Exp', [op('Minus', [op('SqDist', [mkVar(0, D, Cat.i), mkVar(3, D, Cat.param)])])]), mkVar(2, cols, Cat.j)]);

  /** float64 reference of either formula. */
  function reference(kind: 'gauss' | 'lone', x: Float32Array, y: Float32Array, q: Float32Array, p: Float64Array, M: number, N: number, cols: number): Float64Array {
    const out = new Float64Array(M * cols);
    for (let i = 0; i < M; i++)
      for (let j = 0; j < N; j++) {
        let d2 = 0;
        for (let k = 0; k < D; k++) d2 += kind === 'gauss' ? (x[i * D + k]! - y[j * D + k]!) ** 2 : (x[i * D + k]! - q[k]!) ** 2;
        const w = Math.exp(kind === 'gauss' ? -g * d2 : -d2);
        for (let c = 0; c < cols; c++) out[i * cols + c]! += w * p[j * cols + c]!;
      }
    return out;
  }

  const cases: [string, 'gauss' | 'lone', number, number, number, GpuBackendOptions][] = [
    ['one pass, p scattered among the j-variables', 'gauss', 700, 900, 3, { split: 'off' }],
    ['split of the reduced axis forced (blocks of 256 terms)', 'gauss', 300, 1500, 2, { split: 256 }],
    ['chunked dispatches (2 workgroups each)', 'gauss', 1000, 333, 1, { split: 'off', maxWorkgroupsPerDispatch: 2 }],
    ['p alone in its packed buffer (copied)', 'lone', 513, 257, 2, {}],
  ];
  for (const [what, kind, M, N, cols, opts] of cases) {
    test(`bound reduction, ${what} (M = ${M}, N = ${N}, ${cols} columns): apply = run = float64 sum`, async () => {
      const before = stats().bytesAllocated;
      const backend = new GpuBackend({ ...opts, autotune: false });
      const plan = makePlan(kind === 'gauss' ? gauss(cols) : lone(cols), { reduction: 'Sum', axis: 1 });
      const x = Float32Array.from(uniform(r, M * D));
      const y = Float32Array.from(uniform(r, N * D));
      const q = Float32Array.from(uniform(r, D));
      const ins = [x, kind === 'gauss' ? y : undefined, undefined, kind === 'gauss' ? Float32Array.of(g) : q];
      const bound = await backend.bind(plan, ins, M, N, 2);
      const sched = backend.scheduleFor(plan, M, N, { ...bound.ctx, limits: bound.ctx.device.limits });
      if (typeof opts.split === 'number') assert.ok(sched.split !== null && sched.split.B > 1, 'the reduced axis is split');
      if (opts.maxWorkgroupsPerDispatch !== undefined) assert.ok(sched.pass1.length > 1, `${sched.pass1.length} dispatches`);
      // The output has M rows; the direction N: vectors of M rows hold the output, a second set of N rows the directions.
      const outs = await GpuVectors.create(bound.ctx, M, cols);
      const dirs = await GpuVectors.create(bound.ctx, N, cols);
      try {
        for (const round of [0, 1]) {
          const p = Float64Array.from(Float32Array.from(uniform(r, N * cols, round === 0 ? 0 : -1, 1)));
          const P = dirs.fromHost(p);
          const O = outs.zeros();
          bound.apply(P, O, outs);
          const got = await outs.toHost(O);
          const insRun = [...ins];
          insRun[2] = Float32Array.from(p);
          const [want32] = await backend.run(plan, insRun, M, N);
          assert.equal(Array.from(got), Array.from(want32!), `round ${round}: apply and run agree exactly`);
          const want = reference(kind, x, y, q, p, M, N, cols);
          let err = 0;
          let scale = 0;
          want.forEach((w, k) => {
            err = Math.max(err, Math.abs(got[k]! - w));
            scale = Math.max(scale, Math.abs(w));
          });
          assert.ok(err <= 1e-5 * scale, `round ${round}: max error ${err} vs scale ${scale}`);
          if (kind === 'gauss' && round === 1) {
            // The other j-variable survived the scatter of two directions.
            const again = await backend.run(plan, insRun, M, N);
            assert.equal(Array.from(again[0]!), Array.from(got));
          }
          dirs.free(P);
          outs.free(O);
        }
      } finally {
        outs.dispose();
        dirs.dispose();
        bound.dispose();
      }
      assert.is(stats().bytesAllocated, before, 'every buffer freed');
    });
  }

  test('bind: a plan that cannot be bound is a BackendError saying why', async () => {
    const backend = new GpuBackend();
    const plan = makePlan(gauss(1), { reduction: 'Max', axis: 1 });
    const plan2 = makePlan(gauss(1), { reduction: 'ArgMin', axis: 1 });
    for (const [p, v, why] of [[plan, 3, /not an i- or j-variable/], [plan2, 2, /other than one float output/]] as const) {
      try {
        await backend.bind(p, [], 4, 4, v);
        assert.unreachable('should throw');
      } catch (e) {
        assert.match((e as Error).message, why);
      }
    }
  });
}
