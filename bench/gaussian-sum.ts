/**
 * Gaussian kernel sum a_i = sum_j exp(-g |x_i - y_j|^2) b_j, D = 3, Dv = 1 and 3, on the CPU
 * backend, beside a plain single-threaded JavaScript loop and a dense baseline (materialise K,
 * then multiply) where K fits. Prints a table and writes bench/results/gaussian-sum.json.
 * Usage: npm run bench [-- --sizes 10000,30000,100000]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { genred, init, shutdown } from '../src/index.js';

const arg = process.argv.indexOf('--sizes');
const sizes = arg > 0 ? process.argv[arg + 1]!.split(',').map(Number) : [10_000, 30_000, 100_000];
const D = 3;
const g = 0.5;

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648));
}

/** The straightforward loop a user would write: Math.exp, one thread, float64 accumulation. */
function plainLoop(x: Float32Array, y: Float32Array, b: Float32Array, rows: number, N: number, Dv: number): Float32Array {
  const out = new Float32Array(rows * Dv);
  for (let i = 0; i < rows; i++) {
    for (let j = 0; j < N; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) {
        const t = x[i * D + k]! - y[j * D + k]!;
        d2 += t * t;
      }
      const w = Math.exp(-g * d2);
      for (let v = 0; v < Dv; v++) out[i * Dv + v]! += w * b[j * Dv + v]!;
    }
  }
  return out;
}

/** Dense baseline: K materialised as an M×N Float32Array, then K @ b. */
function dense(x: Float32Array, y: Float32Array, b: Float32Array, M: number, N: number, Dv: number): Float32Array {
  const K = new Float32Array(M * N);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) {
        const t = x[i * D + k]! - y[j * D + k]!;
        d2 += t * t;
      }
      K[i * N + j] = Math.exp(-g * d2);
    }
  const out = new Float32Array(M * Dv);
  for (let i = 0; i < M; i++)
    for (let j = 0; j < N; j++) {
      const kij = K[i * N + j]!;
      for (let v = 0; v < Dv; v++) out[i * Dv + v]! += kij * b[j * Dv + v]!;
    }
  return out;
}

const time = async <T>(fn: () => T | Promise<T>): Promise<[T, number]> => {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
};

await init({ backend: 'cpu' });
const rows: Record<string, number | string>[] = [];
for (const Dv of [1, 3]) {
  const op = genred('Exp(-g*SqDist(x,y))*b', [`x = Vi(${D})`, `y = Vj(${D})`, `b = Vj(${Dv})`, 'g = Pm(1)'], { reduction: 'Sum', axis: 1 });
  for (const n of sizes) {
    const M = n;
    const N = n;
    const x = random(M * D, 1);
    const y = random(N * D, 2);
    const b = random(N * Dv, 3);
    const ya = { data: y, shape: [N, D] };
    const ba = { data: b, shape: [N, Dv] };
    const ga = { data: Float32Array.of(g), shape: [1] };
    // Warm-up on 64 rows: compiles the kernel on every worker (pykeops's compile is excluded likewise).
    await op({ data: x.subarray(0, 64 * D), shape: [64, D] }, ya, ba, ga);
    const [got, tKf] = await time(() => op({ data: x, shape: [M, D] }, ya, ba, ga));
    // The plain loop on a row sample (it is ~10x slower); its rate is per pair, so it scales.
    const sample = Math.min(M, Math.max(64, Math.round(2e8 / N)));
    const [ref, tLoop] = await time(() => plainLoop(x, y, b, sample, N, Dv));
    let maxRel = 0;
    for (let k = 0; k < sample * Dv; k++) maxRel = Math.max(maxRel, Math.abs(got.data[k]! - ref[k]!) / Math.abs(ref[k]!));
    const row: Record<string, number | string> = {
      Dv,
      'M=N': n,
      'kernelflow s': +tKf.toFixed(3),
      'kernelflow G/s': +((M * N) / tKf / 1e9).toFixed(3),
      'plain loop G/s': +((sample * N) / tLoop / 1e9).toFixed(3),
      'speedup vs loop': +(((M * N) / tKf) / ((sample * N) / tLoop)).toFixed(2),
      'max rel err vs loop': +maxRel.toExponential(2),
    };
    if (M * N * 4 <= 1e9) {
      const [, tDense] = await time(() => dense(x, y, b, M, N, Dv));
      row['dense G/s'] = +((M * N) / tDense / 1e9).toFixed(3);
      row['speedup vs dense'] = +(tDense / tKf).toFixed(2);
    } else {
      row['dense G/s'] = 'no fit';
    }
    rows.push(row);
    console.log(JSON.stringify(row));
  }
}
console.table(rows);
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, backend: 'cpu' };
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL('./results/gaussian-sum.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2));
console.log('wrote bench/results/gaussian-sum.json');
await shutdown();
