/**
 * Batch dimensions (issue 14, acceptance 2): a Gaussian sum over B = 16 clouds of M points
 * against their own N points (x [B, M, 3], y [B, N, 3], b [B, N, 1]) as one batched call (one
 * dispatch) beside the same 16 reductions as 16 separate calls, on each backend in one run,
 * alternated (batched then separate, then separate then batched, ...) so that load changes hit both. Each row: the best
 * time of each over the repetitions, their ratio (separate / batched: above 1 means the batched
 * call is faster), the largest relative difference between the two results, dispatches per
 * variant, and the 1-minute load average before and after (the machine is shared).
 *
 * Sizes: M = N = each of --sizes (default 1000 and 10000: small clouds, where per-call costs
 * dominate, and the acceptance size of issue 14).
 * Both variants run once at full size before the timed repetitions (compiles, pacing estimates).
 * Usage: npx tsx bench/batch.ts [--B 16] [--sizes 1000,10000] [--reps 3] [--backends webgpu,cpu]
 * Writes bench/results/batch.json.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { genred, init, resetStats, shutdown, stats, type BackendName } from '../src/index.js';
import { adapterInfo } from '../src/gpu/device.js';

const flag = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const B = Number(flag('B') ?? 16);
const sizes = (flag('sizes') ?? '1000,10000').split(',').map(Number);
const reps = Number(flag('reps') ?? 3);
const backends = (flag('backends') ?? 'webgpu,cpu').split(',') as BackendName[];
const D = 3;

let seed = 12345;
const rand = (): number => ((seed = (seed * 1103515245 + 12345) >>> 0) / 2 ** 32);
const cloud = (n: number, d: number): Float32Array => Float32Array.from({ length: n }, () => rand() * (d === 1 ? 1 : 0.5));
const g = { data: Float32Array.of(0.5 / 0.1 ** 2), shape: [1] };
const slice = (t: { data: Float32Array; shape: number[] }, k: number) => {
  const rows = t.shape[1]!;
  const w = t.shape[2]!;
  return { data: t.data.subarray(k * rows * w, (k + 1) * rows * w), shape: [rows, w] };
};
const load = (): number => Math.round(loadavg()[0]! * 100) / 100;

const rows: Record<string, unknown>[] = [];
for (const backend of backends) for (const size of sizes) {
  const [M, N] = [size, size];
  const x = { data: cloud(B * M * D, D), shape: [B, M, D] };
  const y = { data: cloud(B * N * D, D), shape: [B, N, D] };
  const b = { data: cloud(B * N, 1), shape: [B, N, 1] };
  await init({ backend, quiet: true });
  const op = genred('Exp(-g*SqDist(x,y))*b', ['x = Vi(3)', 'y = Vj(3)', 'b = Vj(1)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1, backend });
  // Warm-up: compile both kernels (plain and batched) on small inputs.
  const small = { data: x.data.subarray(0, 2 * 8 * D), shape: [2, 8, D] };
  await op(small, { data: y.data.subarray(0, 2 * 8 * D), shape: [2, 8, D] }, { data: b.data.subarray(0, 16), shape: [2, 8, 1] }, g);
  await op(slice(small, 0), { data: y.data.subarray(0, 8 * D), shape: [8, D] }, { data: b.data.subarray(0, 8), shape: [8, 1] }, g);
  // And one full-size call of each untimed, so that both pipelines' pacing (gpu/pace.ts) has an estimate.
  await op(x, y, b, g);
  for (let k = 0; k < B; k++) await op(slice(x, k), slice(y, k), slice(b, k), g);
  const loadBefore = load();
  const best = { batched: Infinity, separate: Infinity };
  const dispatches = { batched: 0, separate: 0 };
  let diff = 0;
  for (let r = 0; r < reps; r++) {
    const batched = async () => {
      resetStats();
      const t0 = performance.now();
      const out = await op(x, y, b, g);
      best.batched = Math.min(best.batched, performance.now() - t0);
      dispatches.batched = stats().dispatches;
      return out;
    };
    const separate = async () => {
      resetStats();
      const t0 = performance.now();
      const out = [];
      for (let k = 0; k < B; k++) out.push(await op(slice(x, k), slice(y, k), slice(b, k), g));
      best.separate = Math.min(best.separate, performance.now() - t0);
      dispatches.separate = stats().dispatches;
      return out;
    };
    // Alternated order: odd repetitions run the separate calls first.
    const [one, parts] = r % 2 === 0 ? [await batched(), await separate()] : await separate().then(async (p) => [await batched(), p] as const);
    let scale = 0;
    let err = 0;
    parts.forEach((p, k) => {
      for (let i = 0; i < M; i++) {
        const want = p.data[i]!;
        scale = Math.max(scale, Math.abs(want));
        err = Math.max(err, Math.abs(one.data[k * M + i]! - want));
      }
    });
    diff = Math.max(diff, err / scale);
    process.stderr.write(`${backend} M=N=${size} rep ${r + 1}/${reps}: batched ${best.batched.toFixed(0)} ms, separate ${best.separate.toFixed(0)} ms\n`);
  }
  const pairs = B * M * N;
  rows.push({
    backend,
    B,
    M,
    N,
    'batched ms': Math.round(best.batched),
    'separate ms': Math.round(best.separate),
    'separate / batched': Math.round((best.separate / best.batched) * 100) / 100,
    'batched G pairs/s': Math.round((pairs / best.batched / 1e6) * 100) / 100,
    'max rel diff': Number(diff.toExponential(2)),
    'dispatches batched': dispatches.batched,
    'dispatches separate': dispatches.separate,
    'load before': loadBefore,
    'load after': load(),
  });
  await shutdown();
}
console.table(rows);
const info = backends.includes('webgpu') ? await adapterInfo().catch(() => undefined) : undefined;
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(
  new URL('./results/batch.json', import.meta.url),
  `${JSON.stringify({ date: new Date().toISOString(), machine: { cpus: cpus().length, cpu: cpus()[0]?.model, adapter: info === undefined ? undefined : JSON.stringify(info) }, reps, rows }, null, 2)}\n`,
);
