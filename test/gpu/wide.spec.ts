import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkVar } from '../../src/graph/formula.js';
import { GpuBackend } from '../../src/gpu/backend.js';
import { renderKernelWgsl, renderMergeWgsl, renderPartialWgsl } from '../../src/gpu/codegen.js';
import { releaseDevice } from '../../src/gpu/device.js';
import { makePlan } from '../../src/kernel/plan.js';
import { op } from '../../src/ops/build.js';
import { resetStats, stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { acceptanceCases, checkCase, opCases } from '../helpers/wide.js';

// Wide formulas on WebGPU: loops over components (no expression deeper than the loop body, no
// nesting by K), and variables packed into one buffer per category.

test('WGSL of wide vectors and long K-lists is loops: small source, no deep nesting', () => {
  const plan = makePlan(op('SqDist', [mkVar(0, 1000, 0), mkVar(1, 1000, 1)]), { reduction: 'KMin_ArgKMin', axis: 1, K: 200 });
  for (const { source } of [renderKernelWgsl(plan), renderPartialWgsl(plan), renderMergeWgsl(plan)]) {
    const body = source.slice(source.indexOf('fn main'));
    assert.ok(body.length < 8000, `kernel body of ${body.length} characters`);
    assert.match(body, /while \(/);
    let depth = 0;
    let deepest = 0;
    for (const ch of body) {
      if (ch === '{') deepest = Math.max(deepest, ++depth);
      if (ch === '}') depth--;
    }
    assert.ok(deepest < 12, `blocks nested ${deepest} deep`);
  }
});

test('any number of variables binds one buffer per category: 40 variables, 5 bindings', () => {
  const c = acceptanceCases().find((x) => x.name === '40 variables')!;
  const { bindings, source } = renderKernelWgsl(makePlan(c.f, { reduction: 'Sum', axis: 1 }));
  assert.equal(bindings.map((b) => b.kind), ['packed', 'packed', 'packed', 'out']);
  assert.not.match(source, /\bV\d+\[/);
});

if (webgpuTestable(test, 'the WebGPU wide-formula tests')) registerDeviceTests();

test.after(async () => {
  await releaseDevice();
});

test.run();

function registerDeviceTests(): void {
  const gpu = new GpuBackend();
  for (const c of [...acceptanceCases(), ...opCases()]) {
    test(`WebGPU, ${c.name}: equals the float64 brute force`, async () => {
      const ms = await checkCase(gpu, c, 2e-4);
      if (process.env.KF_TIMES === '1') console.log(`  webgpu ${c.name}: first result ${ms.toFixed(0)} ms`);
    });
  }

  test('WebGPU, split reduced axis with wide states (K=64 lists, a 70-wide Sum): partial states saved and merged by loops', async () => {
    const split = new GpuBackend({ split: 64 });
    const cases = [...acceptanceCases(), ...opCases()].filter((c) => c.name === 'KMin_ArgKMin K=64' || c.name.startsWith('Concat') || c.name === 'LogSumExp, wide weight');
    assert.is(cases.length, 3);
    for (const c of cases) {
      resetStats();
      await checkCase(split, { ...c, M: 6, N: 300 }, 2e-4);
      assert.is(stats().dispatches, 2, `${c.name}: pass 1 and pass 2`);
    }
  });

  test('WebGPU, packed variables: a new size reuses the pipeline', async () => {
    const c = acceptanceCases().find((x) => x.name === '40 variables')!;
    await checkCase(gpu, c, 2e-4);
    resetStats();
    await checkCase(gpu, { ...c, M: 33, N: 71 }, 2e-4);
    assert.is(stats().pipelinesCompiled, 0);
  });
}
