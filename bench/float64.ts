/**
 * What float64 costs on the CPU backend: the Gaussian sum a_i = sum_j exp(-g |x_i - y_j|^2) b_j
 * (D = 3) on the same data given as Float32Array and as Float64Array, the two alternated in one
 * run (best of --reps each after a warm-up), at n x n for each --sizes n. Reports the time ratio
 * float64 / float32 and each one's maximum relative error against a float64 reference (computed
 * here, first 32 rows) on points near 1000 (offsets of 1e-2, where float32 coordinates lose digits).
 * Prints a table and writes bench/results/float64.json.
 *
 * Usage: npx tsx bench/float64.ts [--sizes 2000,5000] [--reps 5] [--threads N]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { genred, init, shutdown } from '../src/index.js';

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const sizes = (flag('--sizes') ?? '2000,5000').split(',').map(Number);
const reps = Number(flag('--reps') ?? 5);
const D = 3;
const g = 200;

function random(n: number, seed: number, lo: number, hi: number): Float64Array {
  let s = seed;
  return Float64Array.from({ length: n }, () => lo + ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * (hi - lo));
}

function reference(x: Float64Array, y: Float64Array, b: Float64Array, rows: number, N: number): number[] {
  return Array.from({ length: rows }, (_, i) => {
    let s = 0;
    for (let j = 0; j < N; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (x[i * D + k]! - y[j * D + k]!) ** 2;
      s += Math.exp(-g * d2) * b[j]!;
    }
    return s;
  });
}

await init({ backend: 'cpu', quiet: true });
const op = genred('Exp(-g*SqDist(x,y))*b', [`x = Vi(${D})`, `y = Vj(${D})`, 'b = Vj(1)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1 });
const rows: Record<string, number | string>[] = [];
for (const n of sizes) {
  const [x, y, b] = [random(n * D, 1, 1000, 1000.1), random(n * D, 2, 1000, 1000.1), random(n, 3, 0.5, 1.5)];
  const want = reference(x, y, b, 32, n);
  const args = {
    float32: [Float32Array.from(x), Float32Array.from(y), Float32Array.from(b), Float32Array.of(g)],
    float64: [x, y, b, Float64Array.of(g)],
  };
  const shapes = [[n, D], [n, D], [n, 1], [1]];
  const run = (dtype: 'float32' | 'float64') => {
    const [a0, a1, a2, a3] = args[dtype].map((data, k) => ({ data, shape: shapes[k]! }));
    return op(a0!, a1!, a2!, a3!);
  };
  const best = { float32: Infinity, float64: Infinity };
  const err = { float32: 0, float64: 0 };
  await run('float32');
  await run('float64');
  for (let r = 0; r < reps; r++) {
    for (const dtype of r % 2 === 0 ? (['float32', 'float64'] as const) : (['float64', 'float32'] as const)) {
      const t0 = performance.now();
      const out = await run(dtype);
      best[dtype] = Math.min(best[dtype], (performance.now() - t0) / 1e3);
      want.forEach((w, i) => (err[dtype] = Math.max(err[dtype], Math.abs(out.data[i]! - w) / Math.abs(w))));
    }
  }
  const row = {
    'M=N': n,
    'float32 s': +best.float32.toFixed(4),
    'float64 s': +best.float64.toFixed(4),
    'float64/float32 time': +(best.float64 / best.float32).toFixed(2),
    'float32 G pairs/s': +((n * n) / best.float32 / 1e9).toFixed(3),
    'float64 G pairs/s': +((n * n) / best.float64 / 1e9).toFixed(3),
    'float32 max rel err': +err.float32.toExponential(2),
    'float64 max rel err': +err.float64.toExponential(2),
  };
  rows.push(row);
  console.log(row);
}
await shutdown();
const out = {
  date: new Date().toISOString(),
  machine: { cpus: cpus().length, cpu: cpus()[0]?.model ?? '?', node: process.version, 'load avg (1 min) at the end': +loadavg()[0]!.toFixed(2) },
  backend: 'cpu',
  formula: 'Exp(-g*SqDist(x,y))*b, D = 3, points in [1000, 1000.1]^3, g = 200',
  reps,
  rows,
};
const file = join(dirname(fileURLToPath(import.meta.url)), 'results', 'float64.json');
mkdirSync(dirname(file), { recursive: true });
writeFileSync(file, `${JSON.stringify(out, null, 2)}\n`);
console.log(`wrote ${file}`);
