/**
 * The CPU backend's float64 kernels: the dtype is part of the plan (and of its cache key), the
 * generated code uses an exact exp (the float32 kernels' polynomial `fexp` has 1e-8 relative
 * error), and Float64Array outputs come back from the calling thread, the worker pool's shared
 * buffers and the row chunks of a reduction that reports progress alike.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAliases, parseFormula } from '../../src/api/parse.js';
import { CpuBackend } from '../../src/cpu/backend.js';
import { renderKernelJs } from '../../src/cpu/codegen.js';
import { makePlan } from '../../src/kernel/plan.js';
import { executeReduction } from '../../src/scheduler/execute.js';
import { rng, uniform } from '../helpers/random.js';

const aliases = parseAliases(['x = Vi(1)', 'y = Vj(1)']);
const gauss = parseFormula('Exp(-SqDist(x,y))', aliases);

test('the dtype is in the plan and its key; a float64 kernel calls Math.exp, not the float32 fexp', () => {
  const p32 = makePlan(gauss, { reduction: 'Sum', axis: 1 });
  const p64 = makePlan(gauss, { reduction: 'Sum', axis: 1 }, 'float64');
  assert.is(p32.dtype, 'float32');
  assert.is(p64.dtype, 'float64');
  assert.is.not(p32.key, p64.key);
  const [s32, s64] = [renderKernelJs(p32), renderKernelJs(p64)];
  assert.match(s32, /fexp\(/);
  assert.not.match(s64.slice(s64.indexOf('return function')), /fexp\(/);
  assert.match(s64, /Math\.exp\(/);
});

test('on the WASM kernels (f32x4), a float64 plan runs the JavaScript kernel; a float32 plan the WASM one', async () => {
  const cpu = new CpuBackend(undefined, 'wasm');
  const p32 = makePlan(gauss, { reduction: 'Sum', axis: 1 });
  const p64 = makePlan(gauss, { reduction: 'Sum', axis: 1 }, 'float64');
  assert.is(cpu.source(p64), renderKernelJs(p64));
  assert.is.not(cpu.source(p32), renderKernelJs(p32));
  // 1 + 1e-12 is not a float32: the float64 kernel keeps it.
  const x = new Float64Array([1 + 1e-12]);
  const [out] = await cpu.run(p64, [x, new Float64Array([1 + 1e-12])], 1, 1);
  assert.ok(out instanceof Float64Array);
  assert.is(out[0], 1);
  assert.is(cpu.info().jsFallbacks, 0);
  await cpu.dispose();
});

/** sum_j exp(-(x_i - y_j)^2) in float64, here. */
const reference = (x: Float64Array, y: Float64Array): number[] =>
  Array.from(x, (xi) => {
    let s = 0;
    for (const yj of y) s += Math.exp(-((xi - yj) ** 2));
    return s;
  });

const maxRel = (got: ArrayLike<number>, want: readonly number[]): number => want.reduce((m, w, k) => Math.max(m, Math.abs(got[k]! - w) / Math.abs(w)), 0);

test('Float64Array outputs on the calling thread and over the worker pool (shared float64 buffers), to 1e-13', async () => {
  const r = rng(5);
  const x = Float64Array.from(uniform(r, 600, -2, 2));
  const y = Float64Array.from(uniform(r, 600, -2, 2));
  const want = reference(x, y);
  const plan = makePlan(gauss, { reduction: 'Sum', axis: 1 }, 'float64');
  // 600 x 600 = 360000 pairs: above the pool's threshold unless one thread is asked for.
  for (const threads of [1, 2]) {
    const cpu = new CpuBackend(threads);
    try {
      const [out] = await cpu.run(plan, [x, y], x.length, y.length);
      assert.instance(out, Float64Array, `${threads} thread(s)`);
      assert.ok(maxRel(out!, want) <= 1e-13, `${threads} thread(s): ${maxRel(out!, want)}`);
    } finally {
      await cpu.dispose();
    }
  }
});

test('a float64 reduction split into row chunks (progress) merges into one Float64Array', async () => {
  const r = rng(6);
  const x = Float64Array.from(uniform(r, 50));
  const y = Float64Array.from(uniform(r, 40));
  const seen: number[] = [];
  const [out] = await executeReduction(
    gauss,
    { reduction: 'Sum', axis: 1, backend: 'cpu', onProgress: (f) => seen.push(f), progressPairs: 400 },
    [{ data: x, shape: [50, 1] }, { data: y, shape: [40, 1] }],
  );
  assert.ok(seen.length > 1, `chunks: ${seen.length}`);
  assert.instance(out!.data, Float64Array);
  assert.ok(maxRel(out!.data, reference(x, y)) <= 1e-13);
});

test('the float32 kernel of the same data stays float32 (and is measurably less exact)', async () => {
  const x = Float64Array.from(uniform(rng(8), 30));
  const y = Float64Array.from(uniform(rng(9), 30));
  const [out] = await executeReduction(gauss, { reduction: 'Sum', axis: 1, backend: 'cpu' }, [
    { data: Float32Array.from(x), shape: [30, 1] },
    { data: Float32Array.from(y), shape: [30, 1] },
  ]);
  assert.instance(out!.data, Float32Array);
  assert.ok(maxRel(out!.data, reference(x, y)) > 1e-9);
});

test.run();
