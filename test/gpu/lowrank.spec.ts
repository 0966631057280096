import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { acquireDevice, releaseDevice } from '../../src/gpu/device.js';
import { GpuLowRank } from '../../src/gpu/lowrank.js';
import { GpuVectors } from '../../src/gpu/vectors.js';
import { stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * The Nyström preconditioner's device half (issue 19): F^T r and (r - F t) / alpha on the device
 * agree with float64 products computed here, with F in one binding and in blocks of landmarks,
 * k a multiple of 4 or not (padded).
 */

if (webgpuTestable(test, 'the device low-rank tests')) register();

test.after(() => releaseDevice());
test.run();

function register(): void {
  const r = rng(72);
  for (const [n, k, cols, blockBytes] of [[777, 20, 2, Infinity], [777, 20, 2, 777 * 4 * 6], [300, 7, 1, 300 * 4], [1, 1, 3, Infinity]] as const) {
    // Blocks hold a multiple of 4 landmarks (vec4s, zero-padded), at least 4.
    const blocks = Math.ceil(k / Math.max(4, Math.floor(Math.min(blockBytes, 2 ** 40) / (n * 16)) * 4));
    test(`low rank [${n}, ${k}] x ${cols} columns in ${blocks} block(s): F^T r and (r - F t)/alpha agree with float64 products`, async () => {
      const before = stats().bytesAllocated;
      const F = Float32Array.from(uniform(r, n * k, -1, 1));
      const rv = Float64Array.from(Float32Array.from(uniform(r, n * cols, -1, 1)));
      const vec = await GpuVectors.create(await acquireDevice(), n, cols);
      const lr = await GpuLowRank.create(vec, F, k, blockBytes);
      try {
        const R = vec.fromHost(rv);
        const t = await lr.projectOnto(R);
        for (let c = 0; c < cols; c++)
          for (let j = 0; j < k; j++) {
            let s = 0;
            let abs = 0;
            for (let i = 0; i < n; i++) {
              s += F[i * k + j]! * rv[i * cols + c]!;
              abs += Math.abs(F[i * k + j]! * rv[i * cols + c]!);
            }
            // Products rounded once, sums compensated (TwoSum): within float32's rounding of the terms; a plain
            // float32 sum of n terms drifts by about sqrt(n) times that.
            assert.ok(Math.abs(t[c * k + j]! - s) <= 1e-7 * abs + 1e-30, `t[${c}, ${j}]: ${t[c * k + j]} vs ${s}`);
          }
        const tt = Float64Array.from(Float32Array.from(uniform(r, k * cols, -1, 1)));
        const alpha = 0.3;
        const Z = vec.zeros();
        lr.subtract(R, tt, alpha, Z);
        const z = await vec.toHost(Z);
        for (let i = 0; i < n; i++)
          for (let c = 0; c < cols; c++) {
            let s = rv[i * cols + c]!;
            let abs = Math.abs(s);
            for (let j = 0; j < k; j++) {
              s -= F[i * k + j]! * tt[c * k + j]!;
              abs += Math.abs(F[i * k + j]! * tt[c * k + j]!);
            }
            assert.ok(Math.abs(z[i * cols + c]! - s / alpha) <= (2e-6 * abs) / alpha, `z[${i}, ${c}]: ${z[i * cols + c]} vs ${s / alpha}`);
          }
      } finally {
        lr.dispose();
        vec.dispose();
      }
      assert.is(stats().bytesAllocated, before, 'every buffer freed');
    });
  }
}
