import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../src/cpu/backend.js';
import { BackendError } from '../../src/errors.js';
import { Cat, mkConst, mkVar, type Formula, type VarNode } from '../../src/graph/formula.js';
import { GpuBackend } from '../../src/gpu/backend.js';
import { MERGE_SHAPE, renderMergeWgsl, renderPartialWgsl, type KernelShape } from '../../src/gpu/codegen.js';
import { releaseDevice } from '../../src/gpu/device.js';
import { schedule, type Dispatch, type ScheduleInput } from '../../src/gpu/schedule.js';
import { op } from '../../src/ops/build.js';
import { makePlan, type KernelPlan } from '../../src/kernel/plan.js';
import type { ReductionSpec } from '../../src/ops/reductions.js';
import { REDUCTIONS, type ReductionName } from '../../src/ops/reductions.js';
import { resetStats, stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { bruteReduce, type Cloud } from '../helpers/brute.js';
import { rng } from '../helpers/random.js';

// Split of the reduced axis (pass 1: partial states per block, pass 2: merge; KeOps GpuReduc2D)
// and chunking of problems larger than one storage binding.

// ---- the schedule (no adapter needed) ----

const shape = (rowsPerThread: number, workgroupSize = 16): KernelShape => ({ rowsPerThread, workgroupSize });
const base: ScheduleInput = {
  M: 4,
  N: 200_000,
  iDims: [3],
  jDims: [3, 1],
  outWidths: [1],
  stateWidth: 2,
  full: shape(8),
  partial: shape(4),
  merge: MERGE_SHAPE,
  bindBytes: 2 ** 27,
  unit: 64,
  maxGroups: 65535,
  parallelism: 256,
  minBlock: 512,
};

/** Checks that a pass covers every (row, block) pair exactly once. */
function coverage(ds: readonly Dispatch[], M: number, blocks: number, s: ScheduleInput): void {
  const seen = new Uint8Array(M * blocks);
  for (const d of ds) {
    const [rb] = d.rows;
    const [n, , row0, , , , blk0] = d.uniform as number[];
    const groups = typeof d.groups === 'number' ? [d.groups, 1] : d.groups;
    const R = blocks > 1 ? s.partial.rowsPerThread * s.partial.workgroupSize : s.full.rowsPerThread * s.full.workgroupSize;
    for (let y = 0; y < groups[1]!; y++)
      for (let r = row0!; r < Math.min(n!, row0! + groups[0]! * R); r++) seen[(rb + r) * blocks + (blocks > 1 ? blk0! + y : 0)]! += 1;
  }
  assert.ok(seen.every((c) => c === 1), 'every row and block is reduced exactly once');
}

test('schedule: few kept rows and a long reduced axis split into blocks; many rows do not', () => {
  const small = schedule(base);
  assert.ok(small.split !== null);
  assert.is(small.split!.reason, 'parallelism');
  assert.is(small.split!.J % 64, 0, 'blocks start at aligned offsets');
  assert.ok(small.split!.B >= 2 && small.split!.J >= 512);
  assert.is(small.pass1.length, 1);
  assert.is(small.pass2.length, 1);
  assert.equal(small.pass1[0]!.groups, [1, small.split!.B]);
  assert.is(schedule({ ...base, M: 100_000 }).split, null);
  assert.is(schedule({ ...base, N: 900 }).split, null, 'too short to split');
  assert.is(schedule({ ...base, split: 'off' }).split, null);
  const forced = schedule({ ...base, M: 100_000, N: 5000, split: 100 });
  assert.equal([forced.split!.J, forced.split!.B, forced.split!.reason], [128, 40, 'forced']);
});

test('schedule: inputs larger than one binding are cut into aligned ranges', () => {
  // Kept side: 1000 rows of 3 floats in 4096-byte bindings: 320 rows (a multiple of 64) each.
  const kept = schedule({ ...base, M: 1000, N: 40, bindBytes: 4096 });
  assert.is(kept.split, null);
  assert.equal(kept.pass1.map((d) => d.rows), [[0, 320], [320, 640], [640, 960], [960, 1000]]);
  coverage(kept.pass1, 1000, 1, base);
  // Reduced side: 1000 terms of 3 floats: blocks of 320 terms, one binding each, merged in pass 2.
  const reduced = schedule({ ...base, M: 40, N: 1000, bindBytes: 4096 });
  assert.equal([reduced.split!.J, reduced.split!.B, reduced.split!.reason], [320, 4, 'binding']);
  assert.equal(reduced.pass1.map((d) => d.terms), [[0, 320], [320, 640], [640, 960], [960, 1000]]);
  assert.is(reduced.pass2.length, 1);
  coverage(reduced.pass1, 40, 4, base);
  // Both, with a cap on workgroups per dispatch: still every (row, block) once.
  const s = { ...base, M: 1000, N: 1000, bindBytes: 4096, maxGroups: 3 };
  const both = schedule(s);
  coverage(both.pass1, 1000, both.split!.B, s);
  for (const d of both.pass1) assert.is((d.rows[0] * 3 * 4) % 256, 0, 'aligned kept-side offset');
  assert.throws(() => schedule({ ...base, M: 1000, N: 40, bindBytes: 512 }), (e: unknown) => e instanceof BackendError);
});

test('pass 1 and pass 2 kernels: partial states instead of outputs, sizes from the uniform', () => {
  const plan = makePlan(op('SqDist', [mkVar(0, 3, 0), mkVar(1, 3, 1)]), { reduction: 'ArgKMin', axis: 1, K: 3 });
  const p1 = renderPartialWgsl(plan);
  assert.equal(p1.bindings, [{ kind: 'packed', cat: Cat.i }, { kind: 'packed', cat: Cat.j }, { kind: 'state', write: true }]);
  assert.is(p1.stateWidth, 6);
  assert.match(p1.source, /wid\.y/);
  assert.not.match(p1.source, /O0\[/);
  const p2 = renderMergeWgsl(plan);
  assert.equal(p2.bindings, [{ kind: 'state', write: false }, { kind: 'out', index: 0 }]);
  assert.match(p2.source, /b < P\.B/);
});

// ---- on the device ----

if (webgpuTestable(test, 'the WebGPU split tests')) registerDeviceTests();

test.after(async () => {
  await releaseDevice();
});

test.run();

function registerDeviceTests(): void {
  // The automatic split's dispatch counts below are those of the CPU-driver profile on lavapipe (test/gpu/profile.spec.ts splits the GPU profile's kernels).
  const gpu = new GpuBackend({ profile: 'cpu' });
  const cpu = new CpuBackend(1);
  const x = mkVar(0, 3, 0);
  const y = mkVar(1, 3, 1);
  const w = mkVar(2, 2, 1);
  const x1 = mkVar(0, 1, 0);
  const y1 = mkVar(1, 1, 1);
  // Ties planted for every kept row, in different blocks: y = 0 (the smallest distances) and y = 8 (the largest).
  const MIN_TIES = [37, 600, 1201, 3333, 4998];
  const MAX_TIES = [100, 1500, 2900, 4999];

  /**
   * Data on a grid of quarters (squared differences are exact in float32, so ties are ties on
   * both backends): x in [-0.5, 0.5], y in [2, 4] but for the planted ties, weights in (0.1, 2).
   */
  function data(M: number, N: number, seed: number): Cloud[] {
    const r = rng(seed);
    const q = (lo: number, hi: number): number => lo + Math.round(r() * (hi - lo) * 4) / 4;
    const ys = Array.from({ length: N * 3 }, () => q(2, 4));
    for (const j of MIN_TIES) if (j < N) ys.fill(0, j * 3, j * 3 + 3);
    for (const j of MAX_TIES) if (j < N) ys.fill(8, j * 3, j * 3 + 3);
    return [
      { rows: M, dim: 3, values: Array.from({ length: M * 3 }, () => q(-0.5, 0.5)) },
      { rows: N, dim: 3, values: ys },
      { rows: N, dim: 2, values: Array.from({ length: N * 2 }, () => 0.1 + 1.9 * r()) },
    ];
  }
  /** The data of a formula's variables: the first coordinate only where it uses scalar x, y. */
  function inputs(clouds: readonly Cloud[], vars: readonly (VarNode | undefined)[]): Cloud[] {
    return clouds.map((c, k) => {
      const v = vars[k];
      if (v === undefined || v.dim === c.dim) return c;
      return { rows: c.rows, dim: 1, values: c.values.filter((_, n) => n % c.dim === 0) };
    });
  }

  interface Case {
    readonly name: string;
    readonly f: Formula;
    readonly g: Formula | null;
  }
  const sq = op('SqDist', [x, y]);
  const gauss = op('Exp', [op('Minus', [op('Mult', [mkConst(0.25), sq])])]);
  function cases(name: ReductionName): Case[] {
    switch (name) {
      case 'Sum':
        return [
          { name: 'scalar', f: op('Exp', [op('Minus', [op('Square', [op('Subtract', [x1, y1])])])]), g: null },
          { name: 'vector', f: op('Mult', [gauss, w]), g: null },
        ];
      case 'LogSumExp':
        return [
          { name: 'scalar', f: op('Minus', [sq]), g: null },
          { name: 'vector', f: op('Minus', [op('Square', [op('Subtract', [x, y])])]), g: null },
          { name: 'weighted', f: op('Minus', [sq]), g: w },
        ];
      case 'SumSoftMaxWeight':
        return [{ name: 'scalar F, vector weight', f: op('Minus', [sq]), g: w }];
      default:
        return [
          { name: 'scalar', f: op('Square', [op('Subtract', [x1, y1])]), g: null },
          { name: 'vector', f: op('Square', [op('Subtract', [x, y])]), g: null },
        ];
    }
  }

  function close(got: ArrayLike<number>, want: readonly number[], tol: number, what: string): void {
    assert.is(got.length, want.length, `${what}: length`);
    for (let k = 0; k < want.length; k++) {
      if (got[k] === want[k]) continue;
      const err = Math.abs(got[k]! - want[k]!);
      if (!(err <= tol * Math.max(1, Math.abs(want[k]!)))) assert.unreachable(`${what}[${k}]: got ${got[k]} want ${want[k]} (tolerance ${tol})`);
    }
  }

  /** Runs a plan on a backend and checks every output against the float64 brute force. */
  async function check(b: GpuBackend, plan: KernelPlan, c: Case, opts: ReductionSpec, clouds: readonly Cloud[], what: string): Promise<void> {
    const ins = inputs(clouds, plan.vars);
    const M = ins[0]!.rows;
    const N = ins[1]!.rows;
    const got = await b.run(plan, ins.map((d) => Float32Array.from(d.values)), M, N);
    const vars = [mkVar(0, ins[0]!.dim, 0), mkVar(1, ins[1]!.dim, 1)];
    const want = bruteReduce(c.f, c.g, opts.reduction, 1, ins, vars, opts.K ?? 0);
    got.forEach((o, n) => {
      const flat = want.flatMap((row) => row[n]!);
      close(o, flat, plan.outputs[n]!.int ? 0 : 2e-5, `${what} output ${n}`);
    });
  }

  for (const [name, def] of REDUCTIONS) {
    for (const c of cases(name)) {
      test(`split ${name}, ${c.name} formula, M=3 N=5000, then M=2 N=7000: two dispatches, equals float64 brute force (ties: lowest index); new sizes compile nothing`, async () => {
        const opts: ReductionSpec = { reduction: name, axis: 1, K: def.usesK ? 4 : undefined, weight: c.g };
        const plan = makePlan(c.f, opts);
        resetStats();
        await check(gpu, plan, c, opts, data(3, 5000, 1), `${name} ${c.name}`);
        assert.is(stats().dispatches, 2, 'pass 1 and pass 2');
        assert.is(stats().pipelinesCompiled, 2);
        // Pass 1 has two shapes (see defaultSplitShape): one row per invocation below the
        // one-pass kernel's rows per invocation (4 or 8 here), that shape from there on.
        resetStats();
        await check(gpu, plan, c, opts, data(2, 7000, 2), `${name} ${c.name} resized`);
        assert.is(stats().dispatches, 2);
        assert.is(stats().pipelinesCompiled, 0, 'the second call with new sizes compiles nothing');
        assert.is(stats().bytesAllocated, 0, 'every buffer is freed');
      });
    }
  }

  test('ties across many block boundaries (blocks of 64 terms): Min_ArgMin, Max_ArgMax, KMin_ArgKMin keep the lowest index', async () => {
    const b = new GpuBackend({ split: 64 });
    for (const reduction of ['Min_ArgMin', 'Max_ArgMax', 'KMin_ArgKMin'] as const) {
      for (const f of [op('Square', [op('Subtract', [x1, y1])]), op('Square', [op('Subtract', [x, y])])]) {
        const opts: ReductionSpec = { reduction, axis: 1, K: reduction === 'KMin_ArgKMin' ? 5 : undefined };
        const plan = makePlan(f, opts);
        resetStats();
        await check(b, plan, { name: '', f, g: null }, opts, data(3, 5000, 3), `${reduction} blocks of 64`);
        assert.is(stats().dispatches, 2);
      }
    }
    const [idx] = await b.run(makePlan(op('Square', [op('Subtract', [x1, y1])]), { reduction: 'ArgKMin', axis: 1, K: 4 }), inputs(data(2, 5000, 4), [x1, y1]).map((d) => Float32Array.from(d.values)), 2, 5000);
    assert.equal([...idx!], [...MIN_TIES.slice(0, 4), ...MIN_TIES.slice(0, 4)]);
  });

  test('pass 1 with several rows per invocation (M >= its rows): new sizes compile nothing either', async () => {
    for (const [reduction, K] of [['Sum', undefined], ['ArgKMin', 3]] as const) {
      const f = reduction === 'Sum' ? op('Mult', [gauss, w]) : sq;
      const opts: ReductionSpec = { reduction, axis: 1, K };
      const plan = makePlan(f, opts);
      assert.ok(gpu.splitShapeFor(plan, 40).rowsPerThread > 1);
      await check(gpu, plan, { name: '', f, g: null }, opts, data(40, 5000, 10), `${reduction} M=40`);
      resetStats();
      await check(gpu, plan, { name: '', f, g: null }, opts, data(60, 6000, 11), `${reduction} M=60`);
      assert.is(stats().dispatches, 2);
      assert.is(stats().pipelinesCompiled, 0);
    }
  });

  test('a split with few workgroups per dispatch: pass 1 chunked over blocks, same results', async () => {
    const b = new GpuBackend({ split: 64, maxWorkgroupsPerDispatch: 7 });
    const f = op('Square', [op('Subtract', [x, y])]);
    const opts: ReductionSpec = { reduction: 'KMin_ArgKMin', axis: 1, K: 3 };
    resetStats();
    await check(b, makePlan(f, opts), { name: '', f, g: null }, opts, data(40, 3000, 5), 'chunked split');
    assert.is(stats().dispatches, Math.ceil(Math.ceil(3000 / 64) / 7) + 1);
  });

  test('the CPU backend agrees with a split Sum of 2e5 terms at M=4 (compensated partial sums)', async () => {
    const r = rng(9);
    const N = 200_000;
    const ys = Float32Array.from({ length: N }, () => r());
    const xs = Float32Array.from([1, 2, 3, 4]);
    const plan = makePlan(op('Mult', [x1, op('Exp', [y1])]), { reduction: 'Sum', axis: 1 });
    resetStats();
    const [s] = await gpu.run(plan, [xs, ys], 4, N);
    assert.is(stats().dispatches, 2);
    const ref = ys.reduce((a, v) => a + Math.exp(v), 0);
    close(s!, [ref, 2 * ref, 3 * ref, 4 * ref], 1e-6, 'long split sum');
    close(s!, [...(await cpu.run(plan, [xs, ys], 4, N))[0]!], 1e-6, 'cpu');
  });

  // ---- problems larger than one binding (a tiny binding limit stands in for 128 MiB) ----

  const tiny = new GpuBackend({ maxBindingBytes: 4096 });
  const asF32 = (cs: readonly Cloud[]): Float32Array[] => cs.map((c) => Float32Array.from(c.values));

  async function agree(b: GpuBackend, f: Formula, opts: ReductionSpec, clouds: readonly Cloud[], dispatches: number): Promise<void> {
    const plan = makePlan(f, opts);
    const ins = asF32(inputs(clouds, plan.vars));
    const [M, N] = [clouds[0]!.rows, clouds[1]!.rows];
    resetStats();
    const got = await b.run(plan, ins, M, N);
    assert.is(stats().dispatches, dispatches, `${opts.reduction}: dispatches`);
    assert.is(stats().bytesAllocated, 0);
    const want = await cpu.run(plan, ins, M, N);
    got.forEach((o, k) => {
      if (o instanceof Int32Array) assert.equal([...o], [...want[k]!], `${opts.reduction} output ${k}`);
      else close(o, [...want[k]!], 2e-5, `${opts.reduction} output ${k}`);
    });
  }

  test('kept-side arrays larger than a binding: rows in aligned chunks (offsets), one dispatch each', async () => {
    // 1000 rows of x (12 bytes each) in 4096-byte bindings: 320 rows per chunk, 4 chunks.
    const D = data(1000, 40, 6);
    await agree(tiny, op('Mult', [gauss, w]), { reduction: 'Sum', axis: 1 }, D, 4);
    await agree(tiny, sq, { reduction: 'KMin_ArgKMin', axis: 1, K: 3 }, D, 4);
    await agree(tiny, op('Minus', [sq]), { reduction: 'SumSoftMaxWeight', axis: 1, weight: w }, D, 4);
  });

  test('reduced-side arrays larger than a binding: the reduced axis is split, partial states merged', async () => {
    // 1000 terms of y (12 bytes each): 4 blocks of 320 terms, each bound alone; pass 2 merges.
    // With the weight w, y and w are packed (20 bytes a term): 6 blocks of 192 terms.
    const D = data(40, 1000, 7);
    await agree(tiny, op('Mult', [gauss, w]), { reduction: 'Sum', axis: 1 }, D, 7);
    await agree(tiny, sq, { reduction: 'KMin_ArgKMin', axis: 1, K: 3 }, D, 5);
    await agree(tiny, op('Minus', [sq]), { reduction: 'LogSumExp', axis: 1, weight: w }, D, 7);
    await agree(tiny, op('Square', [op('Subtract', [x, y])]), { reduction: 'Max_ArgMax', axis: 1 }, D, 5);
  });

  test('both sides larger than a binding: rows and terms chunked together', async () => {
    // 1500 terms in 8192-byte bindings: 3 blocks of 640; the partial states (3 blocks x 6 floats
    // per row) then fit 64 rows per binding: 11 row chunks in both passes.
    const small = new GpuBackend({ maxBindingBytes: 8192 });
    const D = data(700, 1500, 8);
    const plan = makePlan(sq, { reduction: 'ArgKMin', axis: 1, K: 3 });
    const limits = { maxStorageBufferBindingSize: 2 ** 27, minStorageBufferOffsetAlignment: 256, maxComputeWorkgroupsPerDimension: 65535 };
    const s = small.scheduleFor(plan, 700, 1500, { software: true, cores: 2, limits });
    assert.equal([s.split?.B, s.pass1.length, s.pass2.length], [3, 33, 11]);
    await agree(small, sq, { reduction: 'ArgKMin', axis: 1, K: 3 }, D, 44);
  });
}
