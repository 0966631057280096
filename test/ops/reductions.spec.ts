import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { executeReduction } from '../../src/scheduler/execute.js';
import { mkConst, mkVar, type Formula } from '../../src/graph/formula.js';
import { op } from '../../src/ops/build.js';
import { REDUCTIONS } from '../../src/ops/reductions.js';
import { bruteReduce, type Cloud } from '../helpers/brute.js';
import { rng, uniform } from '../helpers/random.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { releaseDevice } from '../../src/gpu/device.js';
import { cpuKernels } from '../../src/scheduler/backends.js';
import { assertCpuKernelsRan } from '../helpers/backend.js';

// The same table runs on every backend this machine has (CI installs lavapipe for WebGPU).
const backends = webgpuTestable(test, 'the reductions table on WebGPU') ? (['cpu', 'webgpu'] as const) : (['cpu'] as const);

const r = rng(7);
const cloud = (rows: number, dim: number, lo = -1, hi = 1): Cloud => ({ rows, dim, values: uniform(r, rows * dim, lo, hi) });
const tensor = (c: Cloud) => ({ data: Float32Array.from(c.values), shape: [c.rows, c.dim] });

// x_i (dim 3), y_j (dim 3), w_j (dim 2): a scalar and a vector formula over the same pairs.
const M = 23;
const N = 31;
const X = cloud(M, 3);
const Y = cloud(N, 3);
const W = cloud(N, 2, 0.1, 2);
const x = mkVar(0, 3, 0);
const y = mkVar(1, 3, 1);
const w = mkVar(2, 2, 1);
const diff = op('Subtract', [x, y]);
const sq = op('Square', [diff]);
const scalar = op('Mult', [op('Exp', [op('Minus', [op('Mult', [op('Square', [op('Subtract', [mkVar(0, 1, 0), mkVar(1, 1, 1)])]), mkConst(2)])])]), mkConst(3)]);
const XS = { rows: M, dim: 1, values: X.values.slice(0, M) };
const YS = { rows: N, dim: 1, values: Y.values.slice(0, N) };

interface Case {
  readonly name: string;
  readonly f: Formula;
  readonly g: Formula | null;
  readonly data: readonly Cloud[];
}
const cases = (red: string): Case[] => {
  if (red === 'SumSoftMaxWeight' ) return [{ name: 'scalar F, vector weight', f: scalar, g: op('Mult', [w, mkConst(1)]), data: [XS, YS, W] }];
  const out: Case[] = [
    { name: 'scalar', f: scalar, g: null, data: [XS, YS] },
    { name: 'vector', f: sq, g: null, data: [X, Y] },
  ];
  if (red === 'LogSumExp') out.push({ name: 'weighted', f: scalar, g: w, data: [XS, YS, W] });
  return out;
};

function close(got: ArrayLike<number>, want: readonly number[], tol: number, what: string): void {
  assert.is(got.length, want.length, `${what}: length`);
  for (let k = 0; k < want.length; k++) {
    const err = Math.abs(got[k]! - want[k]!);
    if (!(err <= tol * Math.max(1, Math.abs(want[k]!)))) assert.unreachable(`${what}[${k}]: got ${got[k]} want ${want[k]}`);
  }
}

for (const backend of backends)
for (const [name, def] of REDUCTIONS) {
  for (const c of cases(name)) {
    for (const axis of [0, 1] as const) {
      test(`${name} over axis ${axis}, ${c.name} formula, on ${backend}, equals float64 brute force`, async () => {
        const K = def.usesK ? 4 : 0;
        const vars = [mkVar(0, c.data[0]!.dim, 0), mkVar(1, c.data[1]!.dim, 1)];
        const got = await executeReduction(c.f, { reduction: name, axis, K, weight: c.g, backend }, c.data.map(tensor));
        const want = bruteReduce(c.f, c.g, name, axis, c.data, vars, K);
        const kept = axis === 1 ? M : N;
        const outs = def.outputs(c.f.dim, c.g?.dim ?? 0, K);
        assert.is(got.length, outs.length);
        outs.forEach((o, n) => {
          assert.equal(got[n]!.shape, [kept, ...o.rowShape]);
          assert.ok(o.int ? got[n]!.data instanceof Int32Array : got[n]!.data instanceof Float32Array);
          close(got[n]!.data, want.flatMap((row) => row[n]!), o.int ? 0 : backend === 'cpu' ? 2e-6 : 2e-5, `${name} output ${n}`);
        });
      });
    }
  }
}

test('ArgKMin returns ascending neighbours with shape [M, K] and [M, K, D] for vectors', async () => {
  const xs = { data: Float32Array.from([0, 10]), shape: [2, 1] };
  const ys = { data: Float32Array.from([5, 1, 9, 0, 3, 11]), shape: [6, 1] };
  const d = op('Square', [op('Subtract', [mkVar(0, 1, 0), mkVar(1, 1, 1)])]);
  const [vals, idx] = await executeReduction(d, { reduction: 'KMin_ArgKMin', axis: 1, K: 3 }, [xs, ys]);
  assert.equal(idx!.shape, [2, 3]);
  assert.equal([...idx!.data], [3, 1, 4, 2, 5, 0]);
  assert.equal([...vals!.data], [0, 1, 9, 1, 1, 25]);
  const v = await executeReduction(sq, { reduction: 'ArgKMin', axis: 1, K: 7 }, [X, Y].map(tensor));
  assert.equal(v[0]!.shape, [M, 7, 3]);
});

test('ties resolve to the lowest index first (ArgMin, KMin)', async () => {
  const xs = { data: Float32Array.from([0]), shape: [1, 1] };
  const ys = { data: Float32Array.from([2, -1, 1, -1, 1]), shape: [5, 1] };
  const d = op('Square', [op('Subtract', [mkVar(0, 1, 0), mkVar(1, 1, 1)])]);
  const [am] = await executeReduction(d, { reduction: 'ArgMin', axis: 1 }, [xs, ys]);
  assert.equal([...am!.data], [1]);
  const [ak] = await executeReduction(d, { reduction: 'ArgKMin', axis: 1, K: 4 }, [xs, ys]);
  assert.equal([...ak!.data], [1, 2, 3, 4]);
});

for (const backend of backends) {
test(`LogSumExp of values of magnitude 1e3 stays finite and exact on ${backend}`, async () => {
  const xs = { data: Float32Array.from([1000, -1000]), shape: [2, 1] };
  const ys = { data: Float32Array.from([0, 1, 2]), shape: [3, 1] };
  const f = op('Add', [mkVar(0, 1, 0), mkVar(1, 1, 1)]);
  const [lse] = await executeReduction(f, { reduction: 'LogSumExp', axis: 1, backend }, [xs, ys]);
  const want = (a: number) => a + 2 + Math.log(1 + Math.exp(-1) + Math.exp(-2));
  close(lse!.data, [want(1000), want(-1000)], 1e-6, 'lse');
});

test(`a sum over 2e5 terms is within 1e-5 relative error of float64 on ${backend}`, async () => {
  const n = 200_000;
  const vals = uniform(r, n, 0, 1);
  const ys = { data: Float32Array.from(vals), shape: [n, 1] };
  const xs = { data: Float32Array.from([1, 2]), shape: [2, 1] };
  const f = op('Mult', [mkVar(0, 1, 0), op('Exp', [mkVar(1, 1, 1)])]);
  const [s] = await executeReduction(f, { reduction: 'Sum', axis: 1, backend }, [xs, ys]);
  const ref = Float32Array.from(vals).reduce((a, v) => a + Math.exp(v), 0);
  close(s!.data, [ref, 2 * ref], 1e-5, 'long sum');
});
}

test('the parallel path (worker threads) equals the single-threaded result', async () => {
  const A = cloud(700, 3);
  const B = cloud(600, 3);
  const f = op('Exp', [op('Minus', [op('Square', [op('Subtract', [x, y])])])]);
  const par = await executeReduction(f, { reduction: 'Sum', axis: 1 }, [A, B].map(tensor));
  const want = bruteReduce(f, null, 'Sum', 1, [A, B], [x, y]);
  close(par[0]!.data, want.flatMap((row) => row[0]!), 2e-6, 'parallel sum');
});

test('the CPU rows of this table ran on the CPU kernels of this pass (WASM by default: none fell back to JavaScript)', () => {
  assertCpuKernelsRan(cpuKernels(), 'the reductions table');
});

test.after(() => releaseDevice());
test.run();
