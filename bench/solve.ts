/**
 * The KernelSolve seed problem: random n points in the unit square, D = 2, Dv = 2, Gaussian kernel
 * sigma = 0.1, alpha = 0.01. Conjugate gradient with and without the Nyström preconditioner,
 * beside a dense float64 Cholesky solve in JavaScript where it fits. Prints a table and writes
 * bench/results/solve.json. Usage: npx tsx bench/solve.ts [--sizes 5000,20000] [--backend cpu]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { init, shutdown, type BackendChoice } from '../src/index.js';
import { mkVar } from '../src/graph/formula.js';
import { op } from '../src/ops/build.js';
import { solveKernel } from '../src/solve/kernel-solve.js';
import { choleskySolve, gaussianMatrix, relErr } from '../test/helpers/dense.js';

const flag = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const sizes = (flag('sizes') ?? '5000,20000').split(',').map(Number);
const backend = (flag('backend') ?? 'cpu') as BackendChoice;
const D = 2;
const Dv = 2;
const g = 0.5 / 0.1 ** 2;
const alpha = 0.01;
const DENSE_MAX = 5000;

let seed = 7;
const rand = (n: number): Float32Array => Float32Array.from({ length: n }, () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648));
const K = op('Exp', [op('Minus', [op('Mult', [mkVar(2, 1, 2), op('SqDist', [mkVar(0, D, 0), mkVar(1, D, 1)])])])]);

await init({ backend });
const rows: Record<string, string | number>[] = [];
// Warm-up on 600 points compiles every kernel once (pykeops's compile time is excluded likewise).
{
  const w = 600;
  const xw = rand(w * D);
  const vw = [{ data: xw, shape: [w, D] }, { data: xw, shape: [w, D] }, { data: Float32Array.of(g), shape: [1] }];
  for (const precond of ['nystrom', 'none'] as const) await solveKernel(K, vw, { data: rand(w * Dv), shape: [w, Dv] }, { alpha, precond, rank: 256, backend });
}
for (const n of sizes) {
  const x = rand(n * D);
  const b = rand(n * Dv);
  const vals = [{ data: x, shape: [n, D] }, { data: x, shape: [n, D] }, { data: Float32Array.of(g), shape: [1] }];
  let dense: Float64Array | undefined;
  let tDense = NaN;
  if (n <= DENSE_MAX) {
    const t0 = performance.now();
    dense = choleskySolve(gaussianMatrix(x, n, D, g, alpha), n, b, Dv);
    tDense = (performance.now() - t0) / 1000;
  }
  for (const precond of ['nystrom', 'none'] as const) {
    // Unpreconditioned CG at 2e4 needs thousands of steps of 4e8 pairs: bounded, and reported as such.
    const maxIter = precond === 'none' && n > 10_000 ? 100 : 5000;
    const t0 = performance.now();
    let row: Record<string, string | number>;
    try {
      const r = await solveKernel(K, vals, { data: b, shape: [n, Dv] }, { alpha, precond, maxIter, backend });
      const t = (performance.now() - t0) / 1000;
      row = { n, precond, 'time s': +t.toFixed(2), iterations: r.iterations, 'rel. residual': +r.residual.toExponential(2) };
      if (dense !== undefined) {
        row['rel. err vs dense'] = +relErr(r.c.data, dense).toExponential(2);
        row['dense Cholesky s'] = +tDense.toFixed(2);
        row['speedup vs dense'] = +(tDense / t).toFixed(2);
      }
    } catch (e) {
      row = { n, precond, 'time s': +((performance.now() - t0) / 1000).toFixed(2), iterations: `> ${maxIter}`, note: String((e as Error).message).slice(0, 80) };
    }
    rows.push({ backend, ...row });
    console.log(JSON.stringify(rows[rows.length - 1]));
  }
}
console.table(rows);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };
writeFileSync(new URL('./results/solve.json', import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, rows }, null, 2));
console.log('wrote bench/results/solve.json');
await shutdown();
