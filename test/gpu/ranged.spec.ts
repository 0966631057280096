import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendError } from '../../src/errors.js';
import { mkVar } from '../../src/graph/formula.js';
import { GpuBackend } from '../../src/gpu/backend.js';
import { renderRangedWgsl } from '../../src/gpu/codegen.js';
import { releaseDevice } from '../../src/gpu/device.js';
import { rangedSchedule, type RangedInput } from '../../src/gpu/ranged.js';
import { op } from '../../src/ops/build.js';
import { makePlan } from '../../src/kernel/plan.js';
import { kernelRanges, rangedPlan } from '../../src/kernel/ranges.js';
import { resetStats, stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng } from '../helpers/random.js';

// The block-sparse WebGPU kernel: tiles of one segment per workgroup, dispatches of at most
// maxGroups tiles, everything bound whole.

// ---- the schedule and the shader (no adapter needed) ----

const input: RangedInput = { M: 300, N: 50, iStride: 3, jStride: 4, outWidths: [1], shape: { rowsPerThread: 4, workgroupSize: 16 }, bindBytes: 2 ** 27, maxGroups: 65535 };
// Rows [0, 10) in no block; block [10, 200) over j-ranges 0 and 1; block [200, 300) over none.
const RANGES = kernelRanges([Int32Array.of(10, 200, 200, 300), Int32Array.of(2, 2), Int32Array.of(0, 20, 30, 50), Int32Array.of(0, 50), Int32Array.of(0), new Int32Array(0)], 1, 300, 50);

test('segments cover the rows; tiles hold at most one workgroup of rows, never two segments', () => {
  assert.equal(Array.from(RANGES.seg), [0, 10, 0, 0, 10, 200, 0, 2, 200, 300, 2, 2]);
  assert.is(RANGES.pairs, 190 * 40);
  const { schedule, table } = rangedSchedule(RANGES, input);
  // 64 rows per tile: [0, 10), [10, 74), [74, 138), [138, 200), [200, 264), [264, 300); then the j-ranges.
  assert.equal(Array.from(table.subarray(0, 24)), [0, 10, 0, 0, 10, 74, 0, 2, 74, 138, 0, 2, 138, 200, 0, 2, 200, 264, 2, 2, 264, 300, 2, 2]);
  assert.equal(Array.from(table.subarray(24)), [0, 20, 30, 50]);
  assert.is(schedule.split, null);
  assert.equal(schedule.pass1, [{ rows: [0, 300], terms: [0, 50], uniform: [300, 50, 0, 0, 6, 24], groups: 6 }]);
});

test('more tiles than workgroups per dispatch: consecutive dispatches, each starting at its first tile', () => {
  const { schedule } = rangedSchedule(RANGES, { ...input, maxGroups: 4 });
  assert.equal(schedule.pass1.map((d) => [d.uniform[2], d.groups]), [[0, 4], [4, 2]]);
});

test('inputs larger than one binding are a BackendError (ranged reductions bind whole axes)', () => {
  assert.throws(() => rangedSchedule(RANGES, { ...input, bindBytes: 1000 }), (e: unknown) => e instanceof BackendError && /block-sparse reduction binds the kept-side inputs whole, 3600 bytes/.test((e as Error).message));
});

test('the shader reads its tile from the workgroup id and loops over the tile segment\'s j-ranges', () => {
  const plan = rangedPlan(makePlan(op('Mult', [mkVar(0, 1, 0), mkVar(1, 1, 1)]), { reduction: 'Sum', axis: 1 }));
  const r = renderRangedWgsl(plan, { rowsPerThread: 2, workgroupSize: 8 });
  assert.equal(r.bindings.at(-1), { kind: 'ranges' });
  assert.match(r.source, /let t = P\.tile0 \+ wid\.x;/);
  assert.match(r.source, /for \(var s: u32 = s0; s < s1; s = s \+ 1u\) \{ let ja = RG\[P\.rr \+ 2u \* s\];/);
  assert.match(r.source, /if \(row1 < rend\)/);
});

// ---- on the device ----

if (webgpuTestable(test, 'the WebGPU block-sparse tests')) {
  test('chunked dispatches (1 workgroup each) give the float64 masked sums, rows without pairs 0', async () => {
    const gpu = new GpuBackend({ maxWorkgroupsPerDispatch: 1 });
    const r = rng(9);
    const x = Float32Array.from({ length: 300 }, () => r());
    const y = Float32Array.from({ length: 50 }, () => r());
    const plan = makePlan(op('Exp', [op('Mult', [mkVar(0, 1, 0), mkVar(1, 1, 1)])]), { reduction: 'Sum', axis: 1 });
    resetStats();
    const [out] = await gpu.run(plan, [x, y], 300, 50, RANGES);
    // One dispatch per tile: as many as the schedule of this kernel's shape makes (4 at 8 rows x 16).
    const tiles = rangedSchedule(RANGES, { ...input, iStride: 1, jStride: 1, shape: gpu.shapeFor(rangedPlan(plan)), maxGroups: 1 }).schedule.pass1.length;
    assert.ok(tiles >= 3, `${tiles} tiles`);
    assert.is(stats().dispatches, tiles);
    for (let i = 0; i < 300; i++) {
      let want = 0;
      if (i >= 10 && i < 200) for (const [a, b] of [[0, 20], [30, 50]] as const) for (let j = a; j < b; j++) want += Math.exp(x[i]! * y[j]!);
      assert.ok(Math.abs(out![i]! - want) <= 1e-5 * Math.max(1, want), `row ${i}: ${out![i]} vs ${want}`);
    }
  });
}

test.after(async () => {
  await releaseDevice();
});

test.run();
