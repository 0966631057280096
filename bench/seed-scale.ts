/**
 * Issue 3, acceptance 3: the seed-scale problem on WebGPU (lavapipe here). M = 1e5, N = 2e5, D = 3:
 * Sum of SqDist, LogSumExp of -SqDist, ArgKMin K = 5 of SqDist and a vector Min of (x - y)^2,
 * each timed (one warm call after compiling at a small size) with its peak device bytes, which
 * must stay O(M + N): asserted well below M*N*4 bytes. Then a few kept rows against a long
 * reduced axis (M = 4, N = 2e5; also N = 2e6 and M = 64, N = 1e6): the split of the reduced axis
 * (pass 1 partial states per block, pass 2 merge) against the one-pass kernel, best of several calls.
 * Prints tables, writes bench/results/seed-scale.json.
 * Usage: npx tsx bench/seed-scale.ts [--M 100000] [--N 200000] [--reps 7] [--no-big]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { mkVar } from '../src/graph/formula.js';
import { GpuBackend } from '../src/gpu/backend.js';
import { acquireDevice, releaseDevice } from '../src/gpu/device.js';
import { op } from '../src/ops/build.js';
import { makePlan, type KernelPlan } from '../src/kernel/plan.js';
import { resetStats, stats } from '../src/stats.js';

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const M = Number(flag('--M') ?? 100_000);
const N = Number(flag('--N') ?? 200_000);
const reps = Number(flag('--reps') ?? 7);
const big = !process.argv.includes('--no-big');

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

const x = mkVar(0, 3, 0);
const y = mkVar(1, 3, 1);
const sq = op('SqDist', [x, y]);
const cases: { name: string; plan: KernelPlan }[] = [
  { name: 'SqDist Sum', plan: makePlan(sq, { reduction: 'Sum', axis: 1 }) },
  { name: 'LogSumExp(-SqDist)', plan: makePlan(op('Minus', [sq]), { reduction: 'LogSumExp', axis: 1 }) },
  { name: 'ArgKMin K=5', plan: makePlan(sq, { reduction: 'ArgKMin', axis: 1, K: 5 }) },
  { name: 'vector Min (x-y)^2', plan: makePlan(op('Square', [op('Subtract', [x, y])]), { reduction: 'Min', axis: 1 }) },
];

const ctx = await acquireDevice();
const gpu = new GpuBackend();
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, adapter: ctx.adapter.info?.description || ctx.adapter.info?.device || 'unknown' };
console.log(machine);

const seed: Record<string, number | string | boolean>[] = [];
if (big) {
  const X = random(M * 3, 1);
  const Y = random(N * 3, 2);
  const bound = M * N * 4;
  for (const c of cases) {
    await gpu.run(c.plan, [X.subarray(0, 3000), Y.subarray(0, 3000)], 1000, 1000); // compile (and the driver's first-dispatch compile)
    resetStats();
    const t0 = performance.now();
    const out = await gpu.run(c.plan, [X, Y], M, N);
    const s = (performance.now() - t0) / 1000;
    const st = stats();
    const row = {
      case: c.name,
      M,
      N,
      's': +s.toFixed(2),
      'G pairs/s': +((M * N) / s / 1e9).toFixed(3),
      dispatches: st.dispatches,
      'peak bytes': st.peakBytes,
      'peak / (M*N*4)': +(st.peakBytes / bound).toExponential(2),
      'finite': out.every((o) => o.every((v) => Number.isFinite(v))),
    };
    if (!(st.peakBytes < bound / 1000)) throw new Error(`${c.name}: peak ${st.peakBytes} bytes is not O(M+N) (M*N*4 = ${bound})`);
    seed.push(row);
    console.log(JSON.stringify(row));
  }
  console.table(seed);
}

// A few kept rows, a long reduced axis: split (auto) against the one-pass kernel. M = 4, N = 2e5
// is issue 3's case; at that size a call is a few ms, near the per-call floor (submit, map,
// read back), measured first. Longer axes show the split itself.
const splitRows: Record<string, number | string>[] = [];
const unsplit = new GpuBackend({ split: 'off' });
const floorPlan = cases[0]!.plan;
let floor = Infinity;
for (let r = 0; r < reps * 3; r++) {
  const t0 = performance.now();
  await gpu.run(floorPlan, [random(12, 5), random(300, 6)], 4, 100);
  floor = Math.min(floor, performance.now() - t0);
}
console.log(`per-call floor (M = 4, N = 100): ${floor.toFixed(2)} ms`);
for (const [m, n] of [
  [4, 200_000],
  [4, 2_000_000],
  [64, 1_000_000],
] as const) {
  const Xs = random(m * 3, 3);
  const Ys = random(n * 3, 4);
  for (const c of cases) {
    const time = async (b: GpuBackend): Promise<[number, number, (Float32Array | Int32Array)[]]> => {
      let out = await b.run(c.plan, [Xs, Ys], m, n);
      let best = Infinity;
      let dispatches = 0;
      for (let r = 0; r < reps; r++) {
        resetStats();
        const t0 = performance.now();
        out = await b.run(c.plan, [Xs, Ys], m, n);
        best = Math.min(best, performance.now() - t0);
        dispatches = stats().dispatches;
      }
      return [best, dispatches, out];
    };
    const [ts, ds, os] = await time(gpu);
    const [tu, du, ou] = await time(unsplit);
    let diff = 0;
    os.forEach((o, k) => o.forEach((v, i) => (diff = Math.max(diff, Math.abs(v - ou[k]![i]!) / Math.max(1, Math.abs(ou[k]![i]!))))));
    const sch = gpu.scheduleFor(c.plan, m, n, { ...ctx, limits: ctx.device.limits });
    const row = {
      case: c.name,
      M: m,
      N: n,
      'split ms': +ts.toFixed(2),
      'split dispatches': ds,
      blocks: sch.split?.B ?? 1,
      'rows/inv': gpu.splitShapeFor(c.plan, m).rowsPerThread,
      'one-pass ms': +tu.toFixed(2),
      'one-pass dispatches': du,
      speedup: +(tu / ts).toFixed(2),
      'split G/s': +((m * n) / ts / 1e6).toFixed(3),
      'one-pass G/s': +((m * n) / tu / 1e6).toFixed(3),
      'max rel diff': +diff.toExponential(2),
    };
    splitRows.push(row);
    console.log(JSON.stringify(row));
  }
}
console.table(splitRows);

mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/seed-scale.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, reps, seed, 'per-call floor ms': +floor.toFixed(2), split: splitRows }, null, 2));
console.log('wrote bench/results/seed-scale.json');
await releaseDevice();
