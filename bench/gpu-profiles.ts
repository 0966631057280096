/**
 * The WebGPU kernel profiles side by side (issue 15): the CPU-driver profile, the GPU profile (one
 * row per invocation, workgroups of 128, j tiles in workgroup memory) and the autotuned shape, on
 * the same adapter in one run, alternated round by round. Cases: Gaussian sum D = 3 (sum_j
 * exp(-|x_i - y_j|^2) b_j, b of dim 1), LogSumExp of -SqDist, ArgKMin K = 10, and the KernelSolve
 * seed problem (bench/solve.ts: D = 2, Dv = 2, sigma 0.1, alpha 0.01, tol 1e-6, Nyström CG).
 * Each reduction: one call untimed (compiles; for 'tuned' it also times the candidates: its
 * `first s`), then --rounds timed calls per variant, alternated; best and median seconds, G
 * pairs/s from the best, and the largest relative difference of the variant's output from the
 * CPU-driver profile's (a check that both compute the same thing). Solves: one timed solve per
 * variant (after a warm-up solve at n = 500), iterations and residual.
 *
 * --sizes small: lavapipe (Gaussian sum 1e4 and 3e4, LogSumExp and ArgKMin 1e4, solve 2000);
 * --sizes gpu: a real GPU (Gaussian sum 1e4, 1e5, 1e6; LogSumExp and ArgKMin 1e5; solve 5000, 1e5);
 * --sizes tiny: an end-to-end check of the GPU script in seconds.
 * Prints a table, writes --out (default bench/results/gpu-profiles-<sizes>.json).
 * Usage: npx tsx bench/gpu-profiles.ts [--sizes small|gpu|tiny] [--variants cpu,gpu,tuned] [--rounds 3] [--out FILE] [--no-solve]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname } from 'node:path';
import { Cat, mkVar } from '../src/graph/formula.js';
import { GpuBackend, type GpuBackendOptions } from '../src/gpu/backend.js';
import { acquireDevice, releaseDevice } from '../src/gpu/device.js';
import { shapeName } from '../src/gpu/profile.js';
import { makePlan, type KernelPlan } from '../src/kernel/plan.js';
import { op } from '../src/ops/build.js';
import { init, shutdown } from '../src/scheduler/backends.js';
import { solveKernel } from '../src/solve/kernel-solve.js';

const flag = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const sizes = flag('sizes') ?? 'small';
const rounds = Number(flag('rounds') ?? 3);
const variants = (flag('variants') ?? 'cpu,gpu,tuned').split(',');
const out = flag('out') ?? `bench/results/gpu-profiles-${sizes}.json`;
const withSolve = !process.argv.includes('--no-solve');

const SIZES: Record<string, { gauss: number[]; lse: number[]; knn: number[]; solve: number[] }> = {
  tiny: { gauss: [2000, 5000], lse: [2000], knn: [2000], solve: [800] },
  small: { gauss: [10_000, 30_000], lse: [10_000], knn: [10_000], solve: [2000] },
  gpu: { gauss: [10_000, 100_000, 1_000_000], lse: [100_000], knn: [100_000], solve: [5000, 100_000] },
};
const S = SIZES[sizes];
if (S === undefined) throw new Error(`--sizes ${sizes}: use ${Object.keys(SIZES).join(', ')}`);

const OPTIONS: Record<string, GpuBackendOptions> = {
  cpu: { profile: 'cpu', autotune: false },
  gpu: { profile: 'gpu', autotune: false },
  tuned: { autotune: true },
};

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}
const load = (): number => +loadavg()[0]!.toFixed(2);

const x = mkVar(0, 3, Cat.i);
const y = mkVar(1, 3, Cat.j);
const b = mkVar(2, 1, Cat.j);
const sq = op('SqDist', [x, y]);
const CASES: { name: string; plan: KernelPlan; sizes: number[] }[] = [
  { name: 'Gaussian sum D=3', plan: makePlan(op('Mult', [op('Exp', [op('Minus', [sq])]), b]), { reduction: 'Sum', axis: 1 }), sizes: S.gauss },
  { name: 'LogSumExp(-SqDist) D=3', plan: makePlan(op('Minus', [sq]), { reduction: 'LogSumExp', axis: 1 }), sizes: S.lse },
  { name: 'ArgKMin K=10 D=3', plan: makePlan(sq, { reduction: 'ArgKMin', axis: 1, K: 10 }), sizes: S.knn },
];

const ctx = await acquireDevice();
const info = ctx.adapter.info;
const machine = {
  adapter: [info?.vendor, info?.architecture, info?.device, info?.description].filter((s) => s !== undefined && s !== '').join(' '),
  software: ctx.software,
  cpu: cpus()[0]?.model ?? 'unknown',
  cores: cpus().length,
  node: process.version,
  workgroupStorage: ctx.device.limits.maxComputeWorkgroupStorageSize,
  timestamps: ctx.device.features.has('timestamp-query'),
};
console.log(machine);

type Row = Record<string, string | number>;
const rows: Row[] = [];
const median = (v: number[]): number => [...v].sort((p, q) => p - q)[Math.floor(v.length / 2)]!;
const relDiff = (a: ArrayLike<number>, r: ArrayLike<number>): number => {
  let m = 0;
  for (let k = 0; k < r.length; k++) m = Math.max(m, Math.abs(a[k]! - r[k]!) / Math.max(1e-30, Math.abs(r[k]!)));
  return m;
};

for (const c of CASES) {
  for (const n of c.sizes) {
    const X = random(n * 3, 1);
    const Y = random(n * 3, 2);
    const B = random(n, 3);
    const ins = [X, Y, B];
    const backends = variants.map((v) => ({ v, gpu: new GpuBackend(OPTIONS[v]), times: [] as number[], first: 0, outs: undefined as Float32Array | Int32Array | undefined }));
    const loadBefore = load();
    for (const e of backends) {
      const t0 = performance.now();
      e.outs = (await e.gpu.run(c.plan, ins, n, n))[0];
      e.first = (performance.now() - t0) / 1000;
    }
    for (let r = 0; r < rounds; r++) {
      for (const e of backends) {
        const t0 = performance.now();
        await e.gpu.run(c.plan, ins, n, n);
        e.times.push((performance.now() - t0) / 1000);
      }
    }
    const ref = backends[0]!.outs!;
    for (const e of backends) {
      const best = Math.min(...e.times);
      const shape = (await e.gpu.tunedShape(c.plan, ctx)) ?? e.gpu.shapeFor(c.plan, ctx);
      rows.push({
        case: c.name,
        'M=N': n,
        variant: e.v,
        shape: shapeName(shape),
        'first s': +e.first.toFixed(3),
        'best s': +best.toFixed(4),
        'median s': +median(e.times).toFixed(4),
        'G pairs/s': +((n * n) / best / 1e9).toFixed(2),
        'max rel diff vs first variant': c.plan.reduction.name === 'ArgKMin' ? (e.outs as Int32Array).filter((v, k) => v !== ref[k]).length : +relDiff(e.outs!, ref).toExponential(1),
        'load before': loadBefore,
        'load after': load(),
      });
      console.log(JSON.stringify(rows.at(-1)));
    }
  }
}

if (withSolve) {
  const D = 2;
  const K = op('Exp', [op('Minus', [op('Mult', [mkVar(2, 1, Cat.param), op('SqDist', [mkVar(0, D, Cat.i), mkVar(1, D, Cat.j)])])])]);
  const g = Math.fround(0.5 / 0.1 ** 2);
  const problem = (n: number) => {
    let s = 7 + n;
    const rand = (m: number): Float32Array => Float32Array.from({ length: m }, () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
    return { x: rand(n * D), b: rand(n * 2) };
  };
  const solve = async (n: number) => {
    const { x: xs, b: bs } = problem(n);
    const vals = [{ data: xs, shape: [n, D] }, { data: xs, shape: [n, D] }, { data: Float32Array.of(g), shape: [1] }];
    return solveKernel(K, vals, { data: bs, shape: [n, 2] }, { alpha: 0.01, tol: 1e-6, backend: 'webgpu', maxIter: 2000 });
  };
  for (const n of S.solve) {
    for (const v of variants) {
      const o = OPTIONS[v]!;
      await init({ backend: 'webgpu', quiet: true, gpuProfile: o.profile ?? 'auto', autotune: o.autotune ?? 'auto' });
      await solve(500); // compiles (and tunes what is large enough)
      const loadBefore = load();
      const t0 = performance.now();
      const r = await solve(n);
      const s = (performance.now() - t0) / 1000;
      rows.push({
        case: 'KernelSolve seed D=2 Dv=2',
        'M=N': n,
        variant: v,
        'best s': +s.toFixed(3),
        iterations: r.info.iterations,
        'K·p s': +(r.info.matvecMs / 1000).toFixed(3),
        'rel. residual': +r.residual.toExponential(2),
        'load before': loadBefore,
        'load after': load(),
      });
      console.log(JSON.stringify(rows.at(-1)));
    }
  }
  await shutdown();
}

const cols = [...new Set(rows.flatMap((r) => Object.keys(r)))];
console.log(`\n| ${cols.join(' | ')} |\n| ${cols.map(() => '---').join(' | ')} |`);
for (const r of rows) console.log(`| ${cols.map((k) => r[k] ?? '').join(' | ')} |`);
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify({ bench: 'gpu-profiles', sizes, rounds, machine, date: new Date().toISOString(), rows }, null, 2));
console.log(`wrote ${out}`);
await releaseDevice();
