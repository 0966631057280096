import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../src/cpu/backend.js';
import { renderKernelJs } from '../../src/cpu/codegen.js';
import { LimitError } from '../../src/errors.js';
import { mkVar } from '../../src/graph/formula.js';
import { makePlan } from '../../src/kernel/plan.js';
import { op } from '../../src/ops/build.js';
import { encodeTensorDotParams } from '../../src/ops/linalg.js';
import { acceptanceCases, checkCase, opCases } from '../helpers/wide.js';
import { assertCpuKernelsRan, expectedCpuKernels } from '../helpers/backend.js';

// Wide formulas on the CPU backend: loops over components instead of one expression each.
const cpu = new CpuBackend(1, expectedCpuKernels());

for (const c of [...acceptanceCases(), ...opCases()]) {
  test(`CPU, ${c.name}: equals the float64 brute force`, async () => {
    const ms = await checkCase(cpu, c, 1e-5);
    if (process.env.KF_TIMES === '1') console.log(`  cpu ${c.name}: first result ${ms.toFixed(0)} ms`);
  });
}

test('wide vectors print loops: no component-by-component code, arrays allocated outside the kernel', () => {
  const plan = makePlan(op('SqDist', [mkVar(0, 1000, 0), mkVar(1, 1000, 1)]), { reduction: 'ArgKMin', axis: 1, K: 200 });
  const src = renderKernelJs(plan);
  assert.ok(src.length < 12_000, `source of ${src.length} characters`);
  assert.match(src, /for \(let k_\w+ = 0; k_\w+ < 1000; k_\w+\+\+\)/);
  assert.match(src, /while \(/, 'the K-list insertion is a loop');
  assert.not.match(src.slice(src.indexOf('return function kernel')), /new Float64Array\(1000\)/);
});

test('an op without a loop form refuses a width it would unroll past its limit, naming itself', () => {
  const a = mkVar(0, 300, 0);
  const b = mkVar(1, 300, 1);
  const plan = makePlan(op('TensorDot', [a, b], encodeTensorDotParams([300], [300], [0], [0])), { reduction: 'Sum', axis: 1 });
  assert.throws(() => renderKernelJs(plan), (e: unknown) => e instanceof LimitError && e.limit === 'unrolledDim' && /TensorDot: dimension 300/.test(e.message));
});

test('every wide case ran on the CPU kernels of this pass (WASM by default: none fell back to JavaScript)', () => {
  assertCpuKernelsRan(cpu.info(), 'the wide table');
});

test.after(async () => {
  await cpu.dispose();
});

test.run();
