/**
 * The WebGPU backend beside the CPU backend, driven directly through kernel plans (the public API
 * is wired to the backend separately): Gaussian sum a_i = sum_j exp(-g |x_i - y_j|^2) b_j (D = 3,
 * Dv = 1 and 3), ArgKMin K = 10 on SqDist, and the time from a new formula to its first result.
 * Each timing is the best of several calls after a warm-up (the WebGPU backend paces its waits
 * from earlier calls, see src/gpu/pace.ts). Prints a table, writes bench/results/gpu-backend.json.
 * Usage: npx tsx bench/gpu-backend.ts [--sizes 10000,30000] [--reps 4] [--no-cpu]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { CpuBackend } from '../src/cpu/backend.js';
import { mkConst, mkVar } from '../src/graph/formula.js';
import { GpuBackend } from '../src/gpu/backend.js';
import { acquireDevice, releaseDevice } from '../src/gpu/device.js';
import { op } from '../src/ops/build.js';
import { makePlan, type KernelPlan } from '../src/kernel/plan.js';

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const sizes = (flag('--sizes') ?? '10000,30000').split(',').map(Number);
const reps = Number(flag('--reps') ?? 4);
const withCpu = !process.argv.includes('--no-cpu');

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648));
}

type Backend = { run(plan: KernelPlan, ins: readonly (Float32Array | undefined)[], M: number, N: number): Promise<(Float32Array | Float64Array | Int32Array)[]> };

/** Best seconds of `reps` calls after one warm-up call, and the last result. */
async function best(b: Backend, plan: KernelPlan, ins: Float32Array[], M: number, N: number): Promise<[number, (Float32Array | Float64Array | Int32Array)[]]> {
  let out = await b.run(plan, ins, M, N);
  let t = Infinity;
  for (let r = 0; r < reps; r++) {
    const t0 = performance.now();
    out = await b.run(plan, ins, M, N);
    t = Math.min(t, (performance.now() - t0) / 1000);
  }
  return [t, out];
}

const gpu = new GpuBackend();
const cpu = new CpuBackend();
const t0 = performance.now();
const ctx = await acquireDevice();
const deviceMs = performance.now() - t0;
const x = mkVar(0, 3, 0);
const y = mkVar(1, 3, 1);
const g = mkVar(3, 1, 2);
const rows: Record<string, number | string>[] = [];

const cases: { name: string; plan: (Dv: number) => KernelPlan; Dvs: number[]; sizes: number[] }[] = [
  {
    name: 'Gaussian sum',
    plan: (Dv) => makePlan(op('Mult', [op('Exp', [op('Minus', [op('Mult', [g, op('SqDist', [x, y])])])]), mkVar(2, Dv, 1)]), { reduction: 'Sum', axis: 1 }),
    Dvs: [1, 3],
    sizes,
  },
  { name: 'ArgKMin K=10', plan: () => makePlan(op('SqDist', [x, y]), { reduction: 'ArgKMin', axis: 1, K: 10 }), Dvs: [0], sizes: [sizes[0]!] },
];
for (const c of cases) {
  for (const Dv of c.Dvs) {
    const plan = c.plan(Dv);
    for (const n of c.sizes) {
      const ins = [random(n * 3, 1), random(n * 3, 2), random(n * Math.max(Dv, 1), 3), Float32Array.of(0.5)];
      const [tg, og] = await best(gpu, plan, ins, n, n);
      const row: Record<string, number | string> = { case: c.name, Dv, 'M=N': n, 'webgpu s': +tg.toFixed(4), 'webgpu G/s': +((n * n) / tg / 1e9).toFixed(3) };
      if (withCpu) {
        const [tc, oc] = await best(cpu, plan, ins, n, n);
        let diff = 0;
        for (let k = 0; k < oc[0]!.length; k++) {
          const want = oc[0]![k]!;
          diff = Math.max(diff, og[0] instanceof Int32Array ? (og[0]![k] === want ? 0 : 1) : Math.abs(og[0]![k]! - want) / Math.max(1e-30, Math.abs(want)));
        }
        Object.assign(row, { 'cpu s': +tc.toFixed(4), 'cpu G/s': +((n * n) / tc / 1e9).toFixed(3), 'webgpu/cpu': +(tc / tg).toFixed(2), [og[0] instanceof Int32Array ? 'index mismatch' : 'max rel diff']: +diff.toExponential(2) });
      }
      rows.push(row);
      console.log(JSON.stringify(row));
    }
  }
}

// A formula never compiled before (a fresh constant), then the same formula again: pipeline
// creation plus the driver's compile at first dispatch, then the cached path. "Cold" is cold for
// Mesa's on-disk shader cache only if that constant was never used on this machine.
const fresh = mkConst(0.25 + Math.random());
const newPlan = makePlan(op('Mult', [op('Exp', [op('Minus', [op('Mult', [fresh, op('SqDist', [x, y])])])]), mkVar(2, 1, 1)]), { reduction: 'Sum', axis: 1 });
const small = [random(3000, 4), random(3000, 5), random(1000, 6)];
let t = performance.now();
await gpu.run(newPlan, small, 1000, 1000);
const cold = performance.now() - t;
t = performance.now();
await new GpuBackend().run(newPlan, small, 1000, 1000); // a new backend: pipeline created again, driver cache warm
const cached = performance.now() - t;
const firstResult = { 'device acquisition ms': +deviceMs.toFixed(1), 'new formula first result ms': +cold.toFixed(1), 'same formula, new pipeline ms': +cached.toFixed(1) };
console.table(rows);
console.log(firstResult);

const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, adapter: ctx.adapter.info?.description || ctx.adapter.info?.device || 'unknown' };
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/gpu-backend.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, reps, rows, firstResult }, null, 2));
console.log('wrote bench/results/gpu-backend.json');
await cpu.dispose();
await releaseDevice();
