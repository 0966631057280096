import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acquireDevice, releaseDevice } from '../../src/gpu/device.js';
import { GpuVectors } from '../../src/gpu/vectors.js';
import { stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * Device-resident vector blocks [n, cols] (issue 19): axpy, xpby and per-column dot products on
 * the device agree with float64 references computed here from the same (float32) values, for n
 * not a multiple of the workgroup, n = 1 and n = 0; every buffer is returned to stats().
 */

if (webgpuTestable(test, 'the device vector tests')) register();

test.after(() => releaseDevice());
test.run();

function register(): void {
  const r = rng(71);
  const f32 = (n: number, lo = -1, hi = 1): Float64Array => Float64Array.from(Float32Array.from(uniform(r, n, lo, hi)));

  /** |got - want| <= tol (1 + |want|) elementwise. */
  const close = (got: ArrayLike<number>, want: ArrayLike<number>, tol: number, what: string): void => {
    assert.is(got.length, want.length, `${what}: length`);
    for (let k = 0; k < want.length; k++) {
      assert.ok(Math.abs(got[k]! - want[k]!) <= tol * (1 + Math.abs(want[k]!)), `${what}[${k}]: ${got[k]} vs ${want[k]}`);
    }
  };

  for (const [n, cols] of [[1000, 3], [257, 1], [1, 2], [9999, 2], [0, 2]] as const) {
    test(`vectors [${n}, ${cols}]: axpy, xpby, copy and round trips agree with float64 references`, async () => {
      const before = stats().bytesAllocated;
      const vec = await GpuVectors.create(await acquireDevice(), n, cols);
      try {
        const x = f32(n * cols);
        const y = f32(n * cols);
        const a = Float64Array.from({ length: cols }, (_, c) => 0.5 - c);
        const X = vec.fromHost(x);
        const Y = vec.fromHost(y);
        close(await vec.toHost(X), x, 0, 'round trip');
        vec.axpy(Y, a, X);
        const axpy = y.map((v, k) => v + a[k % cols]! * x[k]!);
        close(await vec.toHost(Y), axpy, 1e-6, 'axpy');
        vec.xpby(X, a, Y);
        const xpby = axpy.map((v, k) => x[k]! + a[k % cols]! * v);
        close(await vec.toHost(Y), xpby, 1e-6, 'xpby');
        const Z = vec.zeros();
        close(await vec.toHost(Z), new Float64Array(n * cols), 0, 'zeros');
        vec.copy(Y, Z);
        close(await vec.toHost(Z), await vec.toHost(Y), 0, 'copy');
        vec.free(Z);
      } finally {
        vec.dispose();
      }
      assert.is(stats().bytesAllocated, before, 'every buffer freed');
    });

    test(`vectors [${n}, ${cols}]: dot products per column of several pairs in one readback, within float32 rounding of float64 sums`, async () => {
      const vec = await GpuVectors.create(await acquireDevice(), n, cols);
      try {
        const a = f32(n * cols);
        const b = f32(n * cols, 0, 2);
        const A = vec.fromHost(a);
        const B = vec.fromHost(b);
        const read0 = vec.readBytes;
        const [ab, aa, bb] = await vec.dots([[A, B], [A, A], [B, B]]);
        const ref = (u: Float64Array, v: Float64Array) => {
          const s = new Float64Array(cols);
          const abs = new Float64Array(cols);
          for (let k = 0; k < u.length; k++) {
            s[k % cols]! += u[k]! * v[k]!;
            abs[k % cols]! += Math.abs(u[k]! * v[k]!);
          }
          return { s, abs };
        };
        for (const [got, [u, v], what] of [[ab!, [a, b], 'a·b'], [aa!, [a, a], 'a·a'], [bb!, [b, b], 'b·b']] as const) {
          const { s, abs } = ref(u, v);
          for (let c = 0; c < cols; c++) {
            // Products in float32 (one rounding each), compensated sums of partial sums.
            assert.ok(Math.abs(got[c]! - s[c]!) <= 1e-7 * abs[c]! + 1e-30, `${what} column ${c}: ${got[c]} vs ${s[c]}`);
          }
        }
        // Partial sums are added on the device: one float per column and pair crosses.
        assert.is(vec.readBytes - read0, n === 0 ? 0 : 3 * cols * 4, 'bytes read back');
      } finally {
        vec.dispose();
      }
    });
  }

  test('vectors: accumulate keeps the rounding errors of many updates (the solution of a resident CG)', async () => {
    const n = 1000;
    const cols = 2;
    const before = stats().bytesAllocated;
    const vec = await GpuVectors.create(await acquireDevice(), n, cols);
    try {
      const x = f32(n * cols, 0, 1);
      const X = vec.fromHost(x);
      const Y = vec.fromHost(new Float64Array(n * cols).fill(1));
      const Z = vec.fromHost(new Float64Array(n * cols).fill(1));
      const a = Float64Array.of(1e-3, -7e-4);
      const want = new Float64Array(n * cols).fill(1);
      for (let step = 0; step < 300; step++) {
        vec.accumulate(Y, a, X);
        vec.axpy(Z, a, X);
        // The device multiplies in float32: a rounded, each product rounded once (1e-3 · 6e-8 at most, 300 times).
        for (let k = 0; k < want.length; k++) want[k]! += Math.fround(Math.fround(a[k % cols]!) * x[k]!);
      }
      const y = await vec.toHost(Y);
      const z = await vec.toHost(Z);
      let errY = 0;
      let errZ = 0;
      for (let k = 0; k < want.length; k++) {
        errY = Math.max(errY, Math.abs(y[k]! - want[k]!));
        errZ = Math.max(errZ, Math.abs(z[k]! - want[k]!));
      }
      assert.ok(errY < 1e-9, `accumulate: max error ${errY}`);
      assert.ok(errZ > 10 * errY, `plain float32 axpy drifts more: ${errZ} vs ${errY}`);
    } finally {
      vec.dispose();
    }
    assert.is(stats().bytesAllocated, before, 'every buffer freed, the kept errors too');
  });

  test('vectors: a block larger than one storage binding is a BackendError naming its shape', async () => {
    const ctx = await acquireDevice();
    const n = Math.floor(ctx.device.limits.maxStorageBufferBindingSize / 4) + 1;
    try {
      await GpuVectors.create(ctx, n, 1);
      assert.unreachable('should throw');
    } catch (e) {
      assert.match((e as Error).message, new RegExp(`\\[${n}, 1\\]`));
    }
  });
}
