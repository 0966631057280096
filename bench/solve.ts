/**
 * The KernelSolve seed problem at the sizes dense methods cannot reach (issue 19): n random points
 * in the unit square, D = 2, Dv = 2, Gaussian kernel sigma = 0.1, alpha = 0.01, tol 1e-6, at
 * n = 5000, 2e4 and 1e5 on each backend. Conjugate gradient with the Nyström preconditioner
 * (default options: RPCholesky landmarks, at most 512, stopped when the residual diagonal is below
 * 0.01·alpha) and, at n = 5000, without; beside a dense float64 solve where it fits: a JavaScript
 * Cholesky at n <= 5000, and at n = 2e4 (a 3.2 GB matrix) bench/dense_solve.py when python3 with
 * numpy is there (optional; nothing else depends on it). Dense solutions are cached in the OS temp
 * directory, keyed by n and seed, with the time their computation took.
 *
 * On WebGPU, at n <= --refine-max (default 2e4), the solve again with one step of iterative
 * refinement (option refine: 1: a float64 residual on the CPU backend, then a float32 correction).
 * Each row: iterations, the landmarks the preconditioner took, where the time went (setup, the
 * kernel reductions K·p, the preconditioner applications, the rest of CG on the host, the float64
 * residuals of refinement), the CG residual and the true one (one more K·c: with float64 kernel
 * values on the CPU backend up to n = 2e4, else on the solve's backend), the error against dense, and
 * stats().peakBytes, asserted below 2·(n·D·4 + rankCap·n·8): memory O(n). The 1-minute load
 * average before and after each solve says how busy the (shared) machine was. A solve that runs
 * past --budget seconds (--budget-none for plain CG) is stopped and reported as such (iterations
 * and residual reached).
 * Resident CG (issue 19): on WebGPU the default solve keeps the CG vectors on the device
 * (option resident 'auto'); at each of --resident-sizes (default 5000,20000) the solve runs with
 * resident: false (host float64 vectors) and resident: true side by side, alternated, --rounds
 * times each (default 2; plain CG at n <= 5000 too, once each), and the `resident` table gives
 * per-iteration time of both (total minus setup, over the iterations), bytes read back per
 * iteration, and `residentSummary` the ratio host / resident of the median per-iteration times.
 * Then, at --compare n (default 2e4) on WebGPU: rank caps 256, 512 and 1024 with the stop rule off
 * (precondTol 0: the cap, or float32's noise floor, ends the search), and the three landmark rules
 * at a cap of 256 with the default stop.
 *
 * Prints a progress line for long solves (stderr), a table, and writes bench/results/solve.json.
 * Usage: npx tsx bench/solve.ts [--sizes 5000,20000,100000] [--cpu-sizes (default: --sizes)] [--backends webgpu,cpu] [--refine-max 20000] [--out solve]
 *        [--resident-sizes 5000,20000|none] [--rounds 2]
 *        [--compare 20000|none] [--budget 1500] [--budget-none 300] [--tol 1e-6] [--no-dense] [--python python3]
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, resetStats, shutdown, stats, type BackendName, type LandmarkRule, type SolveProgress } from '../src/index.js';
import { Cat, mkVar } from '../src/graph/formula.js';
import { adapterInfo } from '../src/gpu/device.js';
import { op } from '../src/ops/build.js';
import { executeReduction } from '../src/scheduler/execute.js';
import { solveKernel, type KernelSolveOptions } from '../src/solve/kernel-solve.js';
import { choleskySolve, gaussianMatrix, relErr } from '../test/helpers/dense.js';
import { progressLine, solveProgressText } from '../examples/lib/progress.js';

const flag = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const sizes = (flag('sizes') ?? '5000,20000,100000').split(',').map(Number);
const backends = (flag('backends') ?? 'webgpu,cpu').split(',') as BackendName[];
const cpuSizes = flag('cpu-sizes')?.split(',').map(Number) ?? sizes;
/** Sizes with a second WebGPU solve refined once (option refine: 1). */
const refineMax = Number(flag('refine-max') ?? 20000);
/** Results file name under bench/results/ (a partial rerun can go beside the full one). */
const outName = flag('out') ?? 'solve';
const compareAt = flag('compare') === 'none' ? null : Number(flag('compare') ?? 20000);
const budgetS = Number(flag('budget') ?? 1500);
const residentSizes = flag('resident-sizes') === 'none' ? [] : (flag('resident-sizes') ?? '5000,20000').split(',').map(Number);
const rounds = Number(flag('rounds') ?? 2);
const budgetNoneS = Number(flag('budget-none') ?? 300);
const python = process.argv.includes('--no-dense') ? null : (flag('python') ?? 'python3');
const denseJs = !process.argv.includes('--no-dense');
const D = 2;
const Dv = 2;
const g = Math.fround(0.5 / 0.1 ** 2); // the float32 value the kernels see, used by the dense solve too
const alpha = 0.01;
const tol = Number(flag('tol') ?? 1e-6);
const SEED = 7;
const JS_DENSE_MAX = 5000;
const PY_DENSE_MAX = 20000;

/** The seed problem of size n: the same points and b for a given n on every backend and run. */
function problem(n: number): { x: Float32Array; b: Float32Array } {
  let s = SEED + n;
  const rand = (m: number): Float32Array => Float32Array.from({ length: m }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648));
  return { x: rand(n * D), b: rand(n * Dv) };
}

const K = op('Exp', [op('Minus', [op('Mult', [mkVar(2, 1, Cat.param), op('SqDist', [mkVar(0, D, Cat.i), mkVar(1, D, Cat.j)])])])]);
const valsOf = (x: Float32Array, n: number) => [{ data: x, shape: [n, D] }, { data: x, shape: [n, D] }, { data: Float32Array.of(g), shape: [1] }];

/** Up to this n the true residual is computed with float64 kernel values (the CPU backend); above, with the solve's backend. */
const TRUE_F64_MAX = 20000;

/** ||b - (alpha I + K) c|| / ||b|| (largest over the columns) with K on `backend` (float64 kernel values on the CPU backend, float32 on WebGPU). */
async function trueResidual(backend: BackendName, x: Float32Array, b: Float32Array, c: Float32Array, n: number): Promise<number> {
  const Kc = op('Mult', [K, mkVar(3, Dv, Cat.j)]);
  const [out] = await executeReduction(Kc, { reduction: 'Sum', axis: 1, backend }, [...valsOf(x, n), { data: c, shape: [n, Dv] }]);
  const num = new Float64Array(Dv);
  const den = new Float64Array(Dv);
  for (let k = 0; k < n * Dv; k++) {
    num[k % Dv]! += (b[k]! - out!.data[k]! - alpha * c[k]!) ** 2;
    den[k % Dv]! += b[k]! ** 2;
  }
  return Math.max(...Array.from(num, (v, col) => Math.sqrt(v / den[col]!)));
}

interface Dense {
  readonly c: Float64Array;
  readonly seconds: number;
  readonly method: string;
}

/** The dense float64 solution for n (cached in the temp directory), or null where none fits. */
function dense(n: number, x: Float32Array, b: Float32Array): Dense | null {
  const key = join(tmpdir(), `kernelflow-bench-solve-dense-${n}-${SEED}`);
  if (existsSync(`${key}.f64`) && existsSync(`${key}.json`)) {
    const meta = JSON.parse(readFileSync(`${key}.json`, 'utf8')) as { seconds: number; method: string };
    const buf = readFileSync(`${key}.f64`);
    return { c: new Float64Array(buf.buffer, buf.byteOffset, n * Dv), seconds: meta.seconds, method: `${meta.method} (cached)` };
  }
  let result: Dense | null = null;
  if (denseJs && n <= JS_DENSE_MAX) {
    process.stderr.write(`dense float64 Cholesky in JavaScript, n = ${n} ...\n`);
    const t0 = performance.now();
    const c = choleskySolve(gaussianMatrix(x, n, D, g, alpha), n, b, Dv);
    result = { c, seconds: (performance.now() - t0) / 1000, method: 'JavaScript Cholesky (float64)' };
  } else if (python !== null && n <= PY_DENSE_MAX) {
    const dir = mkdtempSync(join(tmpdir(), 'kernelflow-dense-'));
    try {
      writeFileSync(join(dir, 'x.f32'), x);
      writeFileSync(join(dir, 'b.f32'), b);
      process.stderr.write(`dense float64 solve with numpy (bench/dense_solve.py), n = ${n}: a ${((n * n * 8) / 1e9).toFixed(1)} GB matrix ...\n`);
      const script = new URL('./dense_solve.py', import.meta.url).pathname;
      const out = execFileSync(python, [script, dir, String(n), String(D), String(Dv), String(g), String(alpha)], { encoding: 'utf8', env: { ...process.env, OPENBLAS_NUM_THREADS: String(cpus().length) } });
      const meta = JSON.parse(out.trim().split('\n').pop()!) as { seconds: number; method: string };
      const buf = readFileSync(join(dir, 'c.f64'));
      result = { c: new Float64Array(buf.buffer, buf.byteOffset, n * Dv).slice(), seconds: meta.seconds, method: `${meta.method}, python` };
    } catch (e) {
      process.stderr.write(`no dense reference at n = ${n}: ${(e as Error).message.split('\n')[0]}\n`);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
  if (result !== null) {
    writeFileSync(`${key}.f64`, new Uint8Array(result.c.buffer, result.c.byteOffset, result.c.byteLength));
    writeFileSync(`${key}.json`, JSON.stringify({ seconds: result.seconds, method: result.method }));
  }
  return result;
}

type Row = Record<string, string | number | boolean>;
const load = (): number => +loadavg()[0]!.toFixed(1);
const sec = (ms: number): number => +(ms / 1000).toFixed(2);
let overBound = 0;

/** One solve of the seed problem of size n with these options; its row. */
async function run(backend: BackendName, n: number, opts: KernelSolveOptions & { label?: string }, ref: Dense | null, withTrue: boolean): Promise<Row> {
  const { x, b } = problem(n);
  const line = progressLine(`${backend} n=${n}${opts.label === undefined ? '' : ` ${opts.label}`}`);
  const loadBefore = load();
  resetStats();
  const t0 = performance.now();
  const cap = Math.min(opts.rank ?? 512, Math.floor(n / 2));
  const { label: _label, ...solveOpts } = opts;
  const budget = opts.precond === 'none' ? budgetNoneS : budgetS;
  const none = opts.precond === 'none';
  let row: Row = { backend, n, landmarks: none ? 'none' : (opts.landmarks ?? 'rpcholesky'), 'rank cap': none ? 0 : cap, precondTol: none ? '' : (opts.precondTol ?? 0.01) };
  try {
    const r = await solveKernel(K, valsOf(x, n), { data: b, shape: [n, Dv] }, {
      alpha,
      tol,
      backend,
      maxIter: 2000,
      ...solveOpts,
      onProgress: (p: SolveProgress) => line.update(solveProgressText(p)),
      cancelled: () => performance.now() - t0 > budget * 1000,
    });
    const peak = stats().peakBytes;
    const i = r.info;
    line.done(`${r.cancelled ? 'stopped at the time budget' : 'done'}: ${i.iterations} iterations, residual ${i.residual.toExponential(2)}, ${sec(i.totalMs)} s`);
    const bound = 2 * (n * D * 4 + cap * n * 8);
    if (peak > bound) overBound++;
    row = {
      ...row,
      rank: i.rank,
      iterations: i.iterations,
      'setup s': sec(i.setupMs),
      'setup kernel s': sec(i.setupKernelMs),
      'K·p s': sec(i.matvecMs),
      'precond s': sec(i.precondMs),
      'CG host s': sec(i.totalMs - i.setupMs - i.matvecMs - i.precondMs - i.refineMs),
      'total s': sec(i.totalMs),
      's/iter': i.iterations > 0 ? +((i.totalMs - i.setupMs - i.refineMs) / 1000 / i.iterations).toFixed(3) : 0,
      resident: i.resident,
      'readback KB/iter': i.iterations > 0 ? +(i.readbackBytes / 1e3 / i.iterations).toFixed(2) : 0,
      refine: i.refinements,
      'refine s': sec(i.refineMs),
      'rel. residual': +r.residual.toExponential(2),
    };
    if (i.refinements > 0) row['float64 residual before correction'] = +i.float64Residual.toExponential(2);
    if (r.cancelled) row.note = `stopped at the ${budget} s budget`;
    if (withTrue && !r.cancelled) {
      const on: BackendName = n <= TRUE_F64_MAX ? 'cpu' : backend;
      row['true rel. residual'] = +(await trueResidual(on, x, b, r.c.data as Float32Array, n)).toExponential(2);
      row['true residual K'] = on === 'cpu' ? 'float64' : 'float32';
    }
    if (ref !== null) {
      row['rel. err vs dense'] = +relErr(r.c.data, ref.c).toExponential(2);
      row['dense s'] = +ref.seconds.toFixed(1);
    }
    row['peak MB'] = +(peak / 1e6).toFixed(1);
    row['bound MB'] = +(bound / 1e6).toFixed(1);
  } catch (e) {
    line.done(`failed: ${(e as Error).message.slice(0, 100)}`);
    row = { ...row, 'total s': sec(performance.now() - t0), note: String((e as Error).message).slice(0, 100) };
  }
  row.load = `${loadBefore}→${load()}`;
  console.log(JSON.stringify(row));
  return row;
}

const rows: Row[] = [];
const comparison: Row[] = [];
const resident: Row[] = [];
const residentSummary: Row[] = [];
const median = (v: readonly number[]): number => {
  const s = [...v].sort((a, b) => a - b);
  return s.length % 2 === 1 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};
const denseRefs: Row[] = [];
let adapter = 'none';
for (const backend of backends) {
  await init({ backend });
  if (backend === 'webgpu') adapter = (await adapterInfo())?.description ?? 'unknown';
  // Warm-up on 600 points compiles every kernel once (the CG step, the diagonal, the landmark columns).
  {
    const w = 600;
    const { x, b } = problem(w);
    await solveKernel(K, valsOf(x, w), { data: b, shape: [w, Dv] }, { alpha, rank: 64, backend });
    await trueResidual(backend, x, b, b, w);
    await trueResidual('cpu', x, b, b, w); // the float64 residuals of refinement and of the true residual column
  }
  for (const n of backend === 'cpu' ? cpuSizes : sizes) {
    const { x, b } = problem(n);
    const ref = dense(n, x, b);
    if (ref !== null && !denseRefs.some((r) => r.n === n)) denseRefs.push({ n, 'dense s': +ref.seconds.toFixed(1), method: ref.method });
    rows.push(await run(backend, n, {}, ref, true));
    if (backend === 'webgpu' && n <= refineMax) rows.push(await run(backend, n, { refine: 1, label: 'refine 1' }, ref, true));
    if (n <= 5000) rows.push(await run(backend, n, { precond: 'none' }, ref, true));
  }
  if (backend === 'webgpu') {
    for (const n of residentSizes) {
      const { x, b } = problem(n);
      const ref = dense(n, x, b);
      // The preconditioned solve (a few iterations); at n <= 5000 also plain CG (hundreds: per-iteration time with little noise), one round.
      for (const precond of n <= 5000 ? (['nystrom', 'none'] as const) : (['nystrom'] as const)) {
        const perIter: Record<string, number[]> = { host: [], resident: [] };
        for (let round = 0; round < (precond === 'none' ? 1 : rounds); round++) {
          // Alternated, host first in even rounds and resident first in odd ones: load drifts hit both.
          const order = round % 2 === 0 ? [false, true] : [true, false];
          for (const on of order) {
            const row = await run(backend, n, { precond, resident: on, label: `${precond} ${on ? 'resident' : 'host vectors'}` }, ref, false);
            row.round = round;
            resident.push(row);
            if (typeof row['s/iter'] === 'number' && row['s/iter'] > 0) perIter[on ? 'resident' : 'host']!.push(row['s/iter']);
          }
        }
        const h = median(perIter.host!);
        const r = median(perIter.resident!);
        residentSummary.push({ n, precond, runs: perIter.host!.length, 'host s/iter (median)': +h.toFixed(4), 'resident s/iter (median)': +r.toFixed(4), 'host / resident': +(h / r).toFixed(2) });
      }
    }
  }
  if (backend === 'webgpu' && compareAt !== null) {
    const { x, b } = problem(compareAt);
    const ref = dense(compareAt, x, b);
    for (const rank of [256, 512, 1024]) comparison.push(await run(backend, compareAt, { rank, precondTol: 0, label: `rank ${rank}` }, ref, false));
    for (const landmarks of ['rpcholesky', 'greedy', 'uniform'] as LandmarkRule[]) comparison.push(await run(backend, compareAt, { rank: 256, landmarks, label: landmarks }, ref, false));
  }
  await shutdown();
}
console.table(rows);
if (comparison.length > 0) console.table(comparison);
if (resident.length > 0) console.table(resident);
if (residentSummary.length > 0) console.table(residentSummary);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, adapter };
writeFileSync(
  new URL(`./results/${outName}.json`, import.meta.url),
  JSON.stringify({ date: new Date().toISOString(), machine, D, Dv, sigma: 0.1, alpha, tol, budget_s: budgetS, budget_none_s: budgetNoneS, rows, comparison, resident, residentSummary, dense: denseRefs }, null, 2),
);
console.log(`wrote bench/results/${outName}.json`);
if (overBound > 0) {
  console.error(`${overBound} solve(s) peaked above 2·(n·D·4 + rankCap·n·8) bytes: memory is not O(n)`);
  process.exitCode = 1;
}
