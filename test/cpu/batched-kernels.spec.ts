/**
 * Batched kernels on the CPU backend: the WASM kernels run a batch as one kernel run too (the
 * plain WASM kernel per batch segment, on views at the batch offsets), with the same values as the
 * JavaScript kernels' batched variant and a float64 brute force, on the calling thread and on the
 * worker pool alike.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAliases, parseFormula } from '../../src/api/parse.js';
import { CpuBackend } from '../../src/cpu/backend.js';
import { batchRun } from '../../src/kernel/batch.js';
import { makePlan } from '../../src/kernel/plan.js';
import { rng, uniform } from '../helpers/random.js';

const aliases = parseAliases(['x = Vi(3)', 'y = Vj(3)']);
const plan = makePlan(parseFormula('Exp(-SqDist(x,y))', aliases), { reduction: 'Sum', axis: 1 });

/** x: B batches of M rows; y: one cloud of N rows broadcast to every batch. sum_j exp(-|x_i - y_j|^2) in float64. */
function reference(x: Float32Array, y: Float32Array, B: number, M: number, N: number): Float64Array {
  const out = new Float64Array(B * M);
  for (let r = 0; r < B * M; r++) {
    let s = 0;
    for (let j = 0; j < N; j++) {
      let d = 0;
      for (let k = 0; k < 3; k++) d += (x[r * 3 + k]! - y[j * 3 + k]!) ** 2;
      s += Math.exp(-d);
    }
    out[r] = s;
  }
  return out;
}

for (const [B, M, N, threads] of [
  [3, 37, 29, 1],
  [4, 300, 500, undefined],
] as const) {
  test(`batch of ${B} x ${M} rows against ${N} (broadcast y), ${threads === 1 ? 'calling thread' : 'worker pool'}: WASM = JS = float64`, async () => {
    const r = rng(B * M + N);
    const x = Float32Array.from(uniform(r, B * M * 3, -1, 1));
    const y = Float32Array.from(uniform(r, N * 3, -1, 1));
    const run = batchRun([B], [{ name: 'x', batch: [B], rows: M }, { name: 'y', batch: [], rows: N }]);
    const want = reference(x, y, B, M, N);
    for (const kernels of ['wasm', 'js'] as const) {
      const cpu = new CpuBackend(threads, kernels);
      const [out] = await cpu.run(plan, [x, y], M, N, undefined, run);
      assert.is(out!.length, B * M);
      for (let i = 0; i < B * M; i++) {
        const err = Math.abs(out![i]! - want[i]!) / Math.abs(want[i]!);
        if (!(err < 1e-5)) assert.unreachable(`${kernels} row ${i}: ${out![i]} vs ${want[i]} (rel. err ${err})`);
      }
      if (kernels === 'wasm') assert.equal([cpu.info().wasmCompiled, cpu.info().jsFallbacks], [1, 0], 'the batched kernel is a WASM kernel');
      await cpu.dispose();
    }
  });
}

test.run();
