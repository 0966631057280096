import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Pm, Vi, Vj } from '../../src/api/lazy.js';
import { printGraph } from '../../src/api/pipeline.js';
import { source } from '../../src/api/source.js';
import { CpuBackend } from '../../src/cpu/backend.js';
import { BackendError, OptionError, ReductionError } from '../../src/errors.js';
import { GpuBackend } from '../../src/gpu/backend.js';
import { grad } from '../../src/grad/grad.js';
import { Cat, mkVar } from '../../src/graph/formula.js';
import { makeFusedPlan, makePlan, type KernelPlan } from '../../src/kernel/plan.js';
import { disposeAll, type Node } from '../../src/nodes/node.js';
import { op } from '../../src/ops/build.js';
import { getBackend, init, shutdown, type Backend } from '../../src/scheduler/backends.js';
import { fusionGroups, setFusionLimitsForTesting } from '../../src/scheduler/fusion.js';
import type { FusionKernel } from '../../src/scheduler/slots.js';
import { resetStats, stats } from '../../src/stats.js';
import type { Tensor } from '../../src/tensor.js';
import { testBackend, useTestBackend } from '../helpers/backend.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * Fusion of sibling reductions (issue 17): reductions due in the same flush that reduce over the
 * same axis of the same sources run as one kernel, on both backends (KF_TEST_BACKEND=webgpu runs
 * this suite on WebGPU), with the same results as separate kernels, and each member still settles
 * as it would alone.
 */

const backend = testBackend();
const gpu = backend === 'webgpu';
const r = rng(1717);
const f32 = (n: number): Float32Array => Float32Array.from(uniform(r, n));

test.before(useTestBackend);
test.after.each(async () => {
  disposeAll();
  setFusionLimitsForTesting({});
  await init({ backend, fuse: true });
});
test.after(() => shutdown());

/** Reads nodes with fusion on or off, from a clean count; returns their values and the stats of the run. */
async function readAll(nodes: readonly Node[], fuse = true): Promise<{ values: Tensor[]; s: ReturnType<typeof stats> }> {
  await init({ backend, fuse });
  resetStats();
  const values = await Promise.all(nodes.map((n) => n.read()));
  return { values, s: stats() };
}

/** Bit-for-bit on the CPU backend (the same float64 arithmetic), within float32 rounding on WebGPU (another compilation may contract differently). */
function same(got: Tensor, want: Tensor, what: string): void {
  assert.equal(got.shape, want.shape, `${what}: shape`);
  assert.is(got.data.constructor, want.data.constructor, `${what}: dtype`);
  for (let k = 0; k < want.data.length; k++) {
    const [a, b] = [got.data[k]!, want.data[k]!];
    const ok = gpu && want.data instanceof Float32Array && Number.isFinite(b) ? Math.abs(a - b) <= 1e-6 * Math.max(1, Math.abs(b)) : Object.is(a, b);
    if (!ok) assert.unreachable(`${what}[${k}]: fused ${a}, separate ${b}`);
  }
}

/** Float64 brute force over a cloud pair: per row i, sum_j exp(-|x_i - y_j|^2), min_j |x_i - y_j|^2, and the 3 smallest with their indices. */
function brute(x: Float32Array, y: Float32Array) {
  const M = x.length / 3;
  const N = y.length / 3;
  const sums: number[] = [];
  const mins: number[] = [];
  const k3: number[] = [];
  const k3i: number[] = [];
  for (let i = 0; i < M; i++) {
    const d: { v: number; j: number }[] = [];
    let s = 0;
    for (let j = 0; j < N; j++) {
      let d2 = 0;
      for (let k = 0; k < 3; k++) d2 += (x[i * 3 + k]! - y[j * 3 + k]!) ** 2;
      s += Math.exp(-d2);
      d.push({ v: d2, j });
    }
    d.sort((a, b) => a.v - b.v || a.j - b.j);
    sums.push(s);
    mins.push(d[0]!.v);
    for (let q = 0; q < 3; q++) {
      k3.push(d[q]!.v);
      k3i.push(d[q]!.j);
    }
  }
  return { sums, mins, k3, k3i };
}

function close(got: ArrayLike<number>, want: readonly number[], tol: number, what: string): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let k = 0; k < want.length; k++) {
    if (!(Math.abs(got[k]! - want[k]!) <= tol * Math.max(1, Math.abs(want[k]!)))) assert.unreachable(`${what}[${k}]: got ${got[k]}, want ${want[k]}`);
  }
}

test('three reductions over j sharing x and y run in one dispatch, with the values of separate runs and of a float64 brute force', async () => {
  // 520 x 510 pairs: past the CPU backend's threshold, so the fused kernel runs in chunks over the worker pool.
  const [M, N] = [520, 510];
  const xs = f32(M * 3);
  const ys = f32(N * 3);
  const x = source(xs, [M, 3], 'x');
  const y = source(ys, [N, 3], 'y');
  const D = Vi(x).sqdist(Vj(y));
  const sum = D.neg().exp().sum(1);
  const min = D.min(1);
  const [kv, ki] = D.kminArgKmin(3, 1);
  const nodes = [sum, min, kv!, ki!];

  const fused = await readAll(nodes);
  assert.is(fused.s.dispatches, 1, 'one kernel launch for the three reductions');
  assert.is(fused.s.fusedPasses, 1);
  assert.is(fused.s.fusedReductions, 3, 'the kMin/argKMin pair is one reduction');
  assert.equal(
    nodes.map((n) => n.computeCount),
    [1, 1, 1, 1],
  );
  const graph = printGraph(nodes);
  assert.match(graph, new RegExp(`#${sum.id} reduction = Sum_Reduction.* fused with #${min.id}, #${kv!.id}, #${ki!.id}`));
  assert.match(graph, new RegExp(`#${ki!.id} reduction = .*\\[output 1\\].* fused with #${sum.id}, #${min.id}, #${kv!.id}`));

  x.set(xs); // the same data again: everything recomputes, separately
  const again = await readAll(nodes, false);
  assert.is(again.s.dispatches, 3, 'without fusion: one kernel per reduction');
  assert.is(again.s.fusedPasses, 0);
  assert.not.match(printGraph(nodes), /fused with/, 'the records say the nodes last computed alone');
  nodes.forEach((n, k) => same(fused.values[k]!, again.values[k]!, `output ${k}`));

  const want = brute(xs, ys);
  close(fused.values[0]!.data, want.sums, 1e-5, 'sum');
  close(fused.values[1]!.data, want.mins, 1e-5, 'min');
  close(fused.values[2]!.data, want.k3, 1e-5, 'kmin values');
  assert.equal([...fused.values[3]!.data], want.k3i, 'kmin indices');
});

test('gradient nodes made by grad() fuse with the forward reductions beside them', async () => {
  const [M, N] = [60, 70];
  const x = source(f32(M * 3), [M, 3], 'x');
  const y = source(f32(N * 3), [N, 3], 'y');
  const D = Vi(x).sqdist(Vj(y));
  const rows = D.mul(Pm(-2)).exp().sum(1);
  const [dx] = grad(rows, [x]); // a Sum over j reading x and y, like rows
  let run = await readAll([rows, dx!]);
  assert.is(run.s.dispatches, 1, 'the forward sum and its gradient in one kernel');
  assert.is(run.s.fusedReductions, 2);
  x.set(x.value!);
  const alone = await readAll([rows, dx!], false);
  assert.is(alone.s.dispatches, 2);
  same(run.values[0]!, alone.values[0]!, 'rows');
  same(run.values[1]!, alone.values[1]!, 'dx');

  // The streaming registration graph: correspondences, a Gaussian energy (a Sum over j, then over
  // i) and its gradient. The gradient of the sum over i reaches the rows as ones, so dE/dx reads x
  // and y only: it fuses with the correspondences and the rows; the energy, which reads the rows, follows.
  const [kd, kix] = D.kminArgKmin(3, 1);
  const energy = Vi(rows).sum(0);
  const [dE] = grad(energy, [x]);
  const nodes = [kd!, kix!, energy, dE!];
  x.set(f32(M * 3));
  run = await readAll(nodes);
  assert.is(run.s.dispatches, 2, 'the fused pass, then the energy');
  assert.is(run.s.fusedReductions, 3, 'kMin/argKMin, the rows and the gradient');
  assert.match(printGraph([rows, dE!]), new RegExp(`#${rows.id} reduction = .* fused with .*#${kd!.id}`));
  x.set(x.value!);
  const separate = await readAll(nodes, false);
  assert.is(separate.s.fusedPasses, 0);
  nodes.forEach((n, k) => same(run.values[k]!, separate.values[k]!, `output ${k}`));
});

test('reductions over i (axis 0) fuse alike, weighted ones included', async () => {
  const x = source(f32(45 * 3), [45, 3], 'x');
  const y = source(f32(35 * 3), [35, 3], 'y');
  const b = source(f32(45 * 2), [45, 2], 'b');
  const D = Vi(x).sqdist(Vj(y));
  const nodes = [D.neg().exp().sum(0), ...D.minArgmin(0), D.neg().sumSoftmaxWeight(Vi(b), 0), D.neg().exp().mul(Vi(b)).sum(0)];
  const fused = await readAll(nodes);
  assert.is(fused.s.dispatches, 1);
  assert.is(fused.s.fusedPasses, 1);
  x.set(x.value!);
  const separate = await readAll(nodes, false);
  assert.is(separate.s.fusedPasses, 0);
  nodes.forEach((n, k) => same(fused.values[k]!, separate.values[k]!, `output ${k}`));
  assert.equal(fused.values[0]!.shape, [35, 1]);
});

test('reductions over different axes, or of different sources, or reading one another, are not fused', async () => {
  const x = source(f32(40 * 3), [40, 3], 'x');
  const y = source(f32(50 * 3), [50, 3], 'y');
  const z = source(f32(50 * 3), [50, 3], 'z'); // the same shape as y, other data
  const D = Vi(x).sqdist(Vj(y));
  let run = await readAll([D.sum(1), D.sum(0)]);
  assert.is(run.s.fusedPasses, 0, 'over j and over i');
  assert.is(run.s.dispatches, 2);
  run = await readAll([D.min(1), Vi(x).sqdist(Vj(z)).min(1)]);
  assert.is(run.s.fusedPasses, 0, 'over j of y and over j of z');
  assert.is(run.s.dispatches, 2);
  const rows = D.sum(1);
  run = await readAll([rows, Vi(x).sqdist(Vj(y)).mul(Vi(rows)).sum(1)]);
  assert.is(run.s.fusedPasses, 0, 'the second reads the first');
  assert.is(run.s.dispatches, 2);
});

test('a fused kernel that would exceed the storage buffers per stage is cut into kernels that fit, or not fused', async () => {
  const [M, N] = [30, 41];
  const x = source(f32(M * 3), [M, 3], 'x');
  const y = source(f32(N * 3), [N, 3], 'y');
  const D = Vi(x).sqdist(Vj(y));
  // Three pair reductions: 2 packed inputs (i, j) and 2 outputs each.
  const nodes = [...D.minArgmin(1), ...D.maxArgmax(1), ...D.kminArgKmin(2, 1)];
  const separate = await readAll(nodes, false);
  assert.is(separate.s.dispatches, 3);

  setFusionLimitsForTesting({ storageBuffers: 6 }); // two pairs: 2 + 4 bindings; three: 2 + 6
  x.set(x.value!);
  let run = await readAll(nodes);
  assert.is(run.s.dispatches, 2, 'the first two fused, the third alone');
  assert.is(run.s.fusedPasses, 1);
  assert.is(run.s.fusedReductions, 2);
  nodes.forEach((n, k) => same(run.values[k]!, separate.values[k]!, `output ${k}`));

  setFusionLimitsForTesting({ storageBuffers: 5 }); // not even two fit
  x.set(x.value!);
  run = await readAll(nodes);
  assert.is(run.s.dispatches, 3, 'separate passes');
  assert.is(run.s.fusedPasses, 0);
  nodes.forEach((n, k) => same(run.values[k]!, separate.values[k]!, `output ${k}`));

  // State width: the K-lists (6 floats) and a sum would exceed 4 floats per row.
  setFusionLimitsForTesting({ stateWidth: 4 });
  x.set(x.value!);
  run = await readAll([D.kminArgKmin(3, 1)[0]!, D.sum(1)]);
  assert.is(run.s.fusedPasses, 0, 'over the state width');
});

if (gpu) {
  test("WebGPU: a group over the adapter's maxStorageBuffersPerShaderStage runs as kernels within it", async () => {
    const caps = await getBackend('webgpu').fusion!();
    const L = caps.maxBindings;
    const x = source(f32(20 * 3), [20, 3], 'x');
    const y = source(f32(25 * 3), [25, 3], 'y');
    // 2 packed inputs and 2 outputs per pair: this many pairs together would need more than L bindings.
    const n = Math.floor((L - 2) / 2) + 1;
    const nodes = Array.from({ length: n }, (_, k) => Vi(x).sqdist(Vj(y)).mul(k + 1).minArgmin(1)).flat();
    const separate = await readAll(nodes, false);
    x.set(x.value!);
    const run = await readAll(nodes);
    assert.ok(run.s.fusedPasses >= 1, 'some fused');
    assert.ok(run.s.dispatches >= 2, 'not all in one kernel');
    assert.ok(run.s.dispatches < n, 'fewer kernels than reductions');
    nodes.forEach((_, k) => same(run.values[k]!, separate.values[k]!, `output ${k}`));
  });
}

/** Makes the backend's `run` throw `faults` in turn for fused plans (several parts); returns the undo. */
function faultFused(faults: Error[]): () => void {
  const b = getBackend(backend) as Backend & { run: Backend['run'] };
  const run = b.run;
  (b as { run: Backend['run'] }).run = (plan: KernelPlan, ...rest) => {
    const f = plan.parts.length > 1 ? faults.shift() : undefined;
    return f === undefined ? run.call(b, plan, ...rest) : Promise.reject(f);
  };
  return () => void delete (b as { run?: Backend['run'] }).run;
}

test('a fused kernel that fails: each member settles as it would alone (a transient fault is retried by the next read)', async () => {
  const x = source(f32(25 * 3), [25, 3], 'x');
  const y = source(f32(35 * 3), [35, 3], 'y');
  const D = Vi(x).sqdist(Vj(y));
  const a = D.neg().exp().sum(1);
  const b = D.max(1);
  const want = await readAll([a, b], false);
  x.set(x.value!);

  // A fault of the fused kernel itself: the members run their own kernels and give their values.
  let undo = faultFused([new BackendError('injected: the fused kernel failed')]);
  try {
    const run = await readAll([a, b]);
    assert.is(run.s.fusedPasses, 0);
    assert.is(run.s.dispatches, 2, 'each member alone');
    same(run.values[0]!, want.values[0]!, 'a');
    same(run.values[1]!, want.values[1]!, 'b');
  } finally {
    undo();
  }

  // A transient fault (a lost device) is every member's outcome, as it would have been alone; the next read retries.
  x.set(x.value!);
  const lost = new BackendError('injected: device lost', { transient: true });
  undo = faultFused([lost]);
  try {
    await init({ backend, fuse: true });
    const outcomes = await Promise.allSettled([a.read(), b.read()]);
    assert.equal(
      outcomes.map((o) => (o.status === 'rejected' ? o.reason : 'resolved')),
      [lost, lost],
    );
    const retried = await readAll([a, b]);
    assert.is(retried.s.fusedPasses, 1, 'the retry runs fused');
    same(retried.values[0]!, want.values[0]!, 'a');
    same(retried.values[1]!, want.values[1]!, 'b');
  } finally {
    undo();
  }

  // A member that fails on its own (K larger than the reduced extent) fails alone; the others fuse.
  const [kv] = D.kminArgKmin(36, 1);
  x.set(x.value!);
  await init({ backend, fuse: true });
  resetStats();
  const [ra, rb, rk] = await Promise.allSettled([a.read(), b.read(), kv!.read()]);
  assert.is(ra.status, 'fulfilled');
  assert.is(rb.status, 'fulfilled');
  assert.ok(rk.status === 'rejected' && rk.reason instanceof ReductionError && /K = 36 is larger than the reduced extent 35/.test((rk.reason as Error).message));
  assert.is(stats().fusedPasses, 1);
  assert.is(stats().fusedReductions, 2);
});

test('init({ fuse }) is checked; the fused kernel is compiled once and serves every frame and size', async () => {
  let caught: unknown;
  try {
    await init({ fuse: 'yes' } as never);
  } catch (e) {
    caught = e;
  }
  assert.instance(caught, OptionError);
  assert.match(String((caught as Error).message), /option 'fuse' must be true or false/);

  const x = source(f32(30 * 3), [30, 3], 'x');
  const y = source(f32(20 * 3), [20, 3], 'y');
  const D = Vi(x).sqdist(Vj(y));
  const nodes = [D.mul(Pm(-0.5)).exp().sum(1), D.argmin(1)];
  await readAll(nodes);
  x.set(f32(17 * 3), [17, 3]);
  const run = await readAll(nodes);
  assert.is(run.s.pipelinesCompiled, 0, 'a new size, the same kernel');
  assert.is(run.s.fusedPasses, 1);
  assert.equal(run.values[0]!.shape, [17, 1]);
});

test('fusionGroups: same depth, same key, a common source on each index; a pair reduction is one kernel', () => {
  const kernel = (): FusionKernel<number> => ({ fuse: () => Promise.resolve([]) });
  const [k1, k2, k3, k4, k5, k6] = [kernel(), kernel(), kernel(), kernel(), kernel(), kernel()];
  const cand = (id: number, kernel: FusionKernel<number>, kept: number[], reduced: number[], level = 0, key = 'cpu|axis 1') => ({
    id,
    level,
    offer: { key, kept: [], reduced: [], kernel },
    kept: new Set(kept),
    reduced: new Set(reduced),
  });
  assert.equal(
    fusionGroups([
      cand(10, k1, [0], [1]),
      cand(11, k1, [0], [1]), // the second output of k1's pair reduction
      cand(12, k2, [0], [1, 2]),
      cand(13, k3, [0], [2]), // shares 2 with 12
      cand(14, k4, [0], [1], 1), // deeper
      cand(15, k5, [0], [1], 0, 'cpu|axis 0'), // another axis
      cand(16, k6, [3], [1]), // another kept source
      cand(17, k6, [3], []), // nothing reduced
    ]),
    [[10, 11, 12, 13]],
  );
  assert.equal(fusionGroups([cand(1, k1, [0], [1]), cand(2, k1, [0], [1])]), [], 'one kernel alone is no group');
  assert.equal(fusionGroups([cand(1, k1, [], [1]), cand(2, k2, [], [1])]), [[1, 2]], 'reductions to one row');
});

// ---- the kernel plans, on the backends directly ----

const X = mkVar(0, 3, Cat.i);
const Y = mkVar(1, 3, Cat.j);
const P = mkVar(2, 1, Cat.param);
const D2 = op('SqDist', [X, Y]);
const E = op('Exp', [op('Mult', [D2, P])]);
const SPECS = [
  { formula: D2, spec: { reduction: 'KMin_ArgKMin', axis: 1 as const, K: 3 } },
  { formula: E, spec: { reduction: 'Sum', axis: 1 as const } },
  { formula: op('Mult', [E, op('Subtract', [X, Y])]), spec: { reduction: 'Sum', axis: 1 as const } },
  { formula: E, spec: { reduction: 'LogSumExp', axis: 1 as const, weight: op('Mult', [op('Subtract', [X, Y]), op('Subtract', [X, Y])]) } },
];

test('the plan of a fused set: one kernel, its outputs side by side, keyed by the set', () => {
  const fused = makeFusedPlan(SPECS);
  assert.is(fused.parts.length, 4);
  assert.equal(
    fused.outputs.map((o) => o.width),
    [3, 3, 1, 3, 3],
  );
  assert.is(fused.key, makeFusedPlan(SPECS).key, 'the same set, the same key');
  assert.is.not(fused.key, makeFusedPlan(SPECS.slice(0, 3)).key);
  assert.is.not(fused.key, makeFusedPlan([SPECS[1]!, SPECS[0]!, SPECS[2]!, SPECS[3]!]).key, 'the order of the outputs is part of the structure');
  assert.is(makeFusedPlan([SPECS[1]!]).key, makePlan(E, { reduction: 'Sum', axis: 1 }).key, 'one reduction is the plain plan');
  // The shared temporaries appear once in the kernel: one exp per pair.
  // The JavaScript kernels print the temporaries as text (the WASM kernels compile the same lines).
  const src = new CpuBackend(1, 'js').source(fused);
  // Three parts read Exp(...): the kernel computes it once per row, in its 2-row blocks and its 1-row tail (and defines fexp once).
  assert.is(src.match(/let t\d+_0_\w+ = fexp\(/g)!.length, 2 + 1, 'one exp per row, whichever parts read it');
});

/** The fused plan's outputs on a backend against each part alone. */
async function planParity(b: { run: Backend['run'] }, M: number, N: number, exact: boolean): Promise<void> {
  const ins = [f32(M * 3), f32(N * 3), Float32Array.of(-0.7)];
  const fused = await b.run(makeFusedPlan(SPECS), ins, M, N);
  const parts = (await Promise.all(SPECS.map((s) => b.run(makePlan(s.formula, s.spec), ins, M, N)))).flat();
  assert.is(fused.length, parts.length);
  fused.forEach((got, o) => {
    const want = parts[o]!;
    for (let k = 0; k < want.length; k++) {
      const ok = exact || want instanceof Int32Array || !Number.isFinite(want[k]!) ? Object.is(got[k], want[k]) : Math.abs(got[k]! - want[k]!) <= 1e-6 * Math.max(1, Math.abs(want[k]!));
      if (!ok) assert.unreachable(`output ${o}[${k}]: fused ${got[k]}, alone ${want[k]}`);
    }
  });
}

test('CPU backend: a fused plan over the worker pool (chunks of rows) equals its parts bit for bit', async () => {
  const cpu = new CpuBackend(2);
  try {
    await planParity(cpu, 700, 400, true); // 2.8e5 pairs: chunked over the pool
    await planParity(cpu, 7, 9, true); // on the calling thread, odd rows after the 2-row blocks
  } finally {
    await cpu.dispose();
  }
});

if (gpu) {
  test('WebGPU: a fused plan split over the reduced axis (partial states, then a merge) and chunked equals its parts', async () => {
    await planParity(new GpuBackend(), 300, 200, false);
    await planParity(new GpuBackend({ split: 64 }), 300, 700, false); // 11 blocks: pass 1 stores every part's state side by side
    await planParity(new GpuBackend({ split: 64, maxWorkgroupsPerDispatch: 2 }), 150, 300, false); // and several dispatches per pass
    const b = new GpuBackend({ split: 64 });
    assert.match(b.source(makeFusedPlan(SPECS), 'merge'), /acc_u3_/, 'the merge kernel carries each part under its prefix');
  });
}

test.run();
