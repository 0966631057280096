import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { filter, firstValueFrom } from 'rxjs';
import { grad, kernelSolve, source, Vi, Vj, type Tensor } from '../../src/index.js';
import { disposeAll } from '../../src/nodes/node.js';
import { choleskySolve, gaussianMatrix, relErr } from '../helpers/dense.js';
import { rng, uniform } from '../helpers/random.js';
import { useTestBackend } from '../helpers/backend.js';

const D = 2;
const Dv = 2;
const g = 0.5 / 0.1 ** 2;
const alpha = 0.01;
const cloud = (n: number, seed: number) => {
  const r = rng(seed);
  return { x: Float32Array.from(uniform(r, n * D, 0, 1)), b: Float32Array.from(uniform(r, n * Dv, 0, 1)) };
};
const kernelOf = (x: ReturnType<typeof source>) => Vi(x).sqdist(Vj(x)).mul(-g).exp();

test.after(disposeAll);


test.before(useTestBackend);
test('kernelSolve reproduces the seed call Kinv(x, x, b, g, alpha) against a dense solve', async () => {
  const n = 500;
  const { x, b } = cloud(n, 21);
  const Kinv = kernelSolve('Exp(- g * SqDist(x,y)) * b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)', 'g = Pm(1)'], 'b', { axis: 1 });
  const c = await Kinv({ data: x, shape: [n, D] }, { data: x, shape: [n, D] }, { data: b, shape: [n, Dv] }, { data: Float32Array.of(g), shape: [1] }, { alpha });
  assert.equal(c.shape, [n, Dv]);
  const want = choleskySolve(gaussianMatrix(x, n, D, g, alpha), n, b, Dv);
  assert.ok(relErr(c.data, want) < 1e-3, `relative error ${relErr(c.data, want)}`);
});

test('grad of sum(c^2) with respect to x and b matches the dense float64 adjoint (n = 400)', async () => {
  const n = 400;
  const { x: xd, b: bd } = cloud(n, 22);
  const x = source(xd, [n, D]);
  const b = source(bd, [n, Dv]);
  const c = kernelOf(x).solve(b, { alpha, tol: 1e-7 });
  const loss = Vi(c).square().sum(-1).sum(0);
  const [gx, gb] = grad(loss, [x, b]);
  const [GX, GB] = await Promise.all([gx!.read(), gb!.read()]);
  // Dense reference: c = A^-1 b, a = A^-1 (2c); dL/db = a; dL/dx_i = 2g sum_j (a_i.c_j + a_j.c_i) K_ij (x_i - x_j).
  const A = gaussianMatrix(xd, n, D, g, alpha);
  const cRef = choleskySolve(A, n, bd, Dv);
  const a = choleskySolve(A, n, cRef.map((v) => 2 * v), Dv);
  assert.ok(relErr(GB.data, a) < 1e-2, `d/db relative error ${relErr(GB.data, a)}`);
  const dx = new Float64Array(n * D);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      const kij = A[i * n + j]! - (i === j ? alpha : 0);
      let w = 0;
      for (let v = 0; v < Dv; v++) w += a[i * Dv + v]! * cRef[j * Dv + v]! + a[j * Dv + v]! * cRef[i * Dv + v]!;
      for (let k = 0; k < D; k++) dx[i * D + k]! += 2 * g * w * kij * (xd[i * D + k]! - xd[j * D + k]!);
    }
  assert.equal(GX.shape, [n, D]);
  assert.ok(relErr(GX.data, dx) < 1e-2, `d/dx relative error ${relErr(GX.data, dx)}`);
  // The closed form itself, against central finite differences of the dense solve on a few coordinates.
  const lossAt = (xs: Float32Array | Float64Array): number => choleskySolve(gaussianMatrix(xs, n, D, g, alpha), n, bd, Dv).reduce((s, v) => s + v * v, 0);
  for (const k of [0, 7, 301]) {
    const h = 1e-5;
    const up = Float64Array.from(xd);
    const dn = Float64Array.from(xd);
    up[k]! += h;
    dn[k]! -= h;
    const fd = (lossAt(up) - lossAt(dn)) / (2 * h);
    assert.ok(Math.abs(fd - dx[k]!) <= 1e-4 * Math.max(1, Math.abs(fd)), `coordinate ${k}: fd ${fd} vs ${dx[k]}`);
  }
});

test('changing b after convergence re-emits; the warm start takes fewer iterations', async () => {
  const n = 400;
  const { x: xd, b: bd } = cloud(n, 23);
  const x = source(xd, [n, D]);
  const b = source(bd, [n, Dv]);
  const c = kernelOf(x).solve(b, { alpha, precond: 'none' });
  const values: Tensor[] = [];
  const sub = c.observe().subscribe((t) => values.push(t));
  const first = await firstValueFrom(c.observe());
  const cold = c.lastIterations;
  const b2 = Float32Array.from(bd, (v, k) => v + 0.01 * Math.sin(k));
  b.set(b2);
  const second = await firstValueFrom(c.observe().pipe(filter((t) => t !== first)));
  sub.unsubscribe();
  assert.ok(c.lastIterations < cold, `warm ${c.lastIterations} vs cold ${cold}`);
  const want = choleskySolve(gaussianMatrix(xd, n, D, g, alpha), n, b2, Dv);
  assert.ok(relErr(second.data, want) < 1e-3);
  assert.is(values.length, 2);
});

test('changing x mid-solve cancels the old solve: one emission, for the new input', async () => {
  const n = 500;
  const { x: xd, b: bd } = cloud(n, 24);
  const x2 = Float32Array.from(xd, (v) => 0.9 * v + 0.05);
  const x = source(xd, [n, D]);
  const b = source(bd, [n, Dv]);
  const c = kernelOf(x).solve(b, { alpha, precond: 'none' });
  const emitted: Tensor[] = [];
  const started = firstValueFrom(c.progress().pipe(filter((p) => p.iter >= 5)));
  const sub = c.observe().subscribe((t) => emitted.push(t));
  await started;
  x.set(x2);
  await firstValueFrom(c.observe());
  await new Promise((r) => setTimeout(r, 50));
  sub.unsubscribe();
  assert.is(emitted.length, 1);
  const want = choleskySolve(gaussianMatrix(x2, n, D, g, alpha), n, bd, Dv);
  assert.ok(relErr(emitted[0]!.data, want) < 1e-3, `relative error ${relErr(emitted[0]!.data, want)}`);
});

test.run();
