/**
 * The cluster backend on this machine: a Gaussian sum a_i = sum_j exp(-g |x_i - y_j|^2) b_j
 * (D = 3, Dv = 1) through nats-server and 1, 2, 3 `kernelflow-worker` processes, beside the same
 * reduction on the local backend. Starts its own nats-server (JetStream, temporary store) and
 * workers, like the tests. Writes bench/results/cluster.json (one entry per `--label`, so runs
 * with other worker backends add to it).
 *
 * Usage: npx tsx bench/cluster.ts [--label cpu] [--worker-backend cpu|webgpu] [--workers 1,2,3]
 *   [--small 1000] [--reps 20] [--mid 30000] [--big 100000] [--big-workers 1,2] [--no-big-local]
 *   [--skip-small] [--skip-mid]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { genred, init, shutdown, type Tensor, type TensorLike } from '../src/index.js';
import { startCluster } from '../test/helpers/nats-cluster.js';

const flag = (name: string, def: string): string => {
  const k = process.argv.indexOf(`--${name}`);
  return k > 0 ? process.argv[k + 1]! : def;
};
const has = (name: string): boolean => process.argv.includes(`--${name}`);
const list = (s: string): number[] => (s === '' ? [] : s.split(',').map(Number));

const label = flag('label', 'cpu');
const workerBackend = flag('worker-backend', 'cpu') as 'cpu' | 'webgpu';
const workerCounts = list(flag('workers', '1,2,3'));
const small = Number(flag('small', '1000'));
const reps = Number(flag('reps', '20'));
const mid = Number(flag('mid', '30000'));
const big = Number(flag('big', '100000'));
const bigWorkers = list(flag('big-workers', '1,2'));
const D = 3;
const g = 0.5;

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

const problem = (M: number, N: number, seed = 1) => ({
  x: { data: random(M * D, seed), shape: [M, D] } as TensorLike,
  y: { data: random(N * D, seed + 1), shape: [N, D] } as TensorLike,
  b: { data: random(N, seed + 2), shape: [N, 1] } as TensorLike,
  gp: { data: Float32Array.of(g), shape: [1] } as TensorLike,
});
const op = (backend: 'cpu' | 'webgpu' | 'cluster') =>
  genred('Exp(-g*SqDist(x,y))*b', [`x = Vi(${D})`, `y = Vj(${D})`, 'b = Vj(1)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1, backend });

const seconds = async (fn: () => Promise<Tensor>): Promise<[Tensor, number]> => {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
};
const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const relErr = (got: Tensor, want: Tensor, rows = want.data.length): number => {
  let worst = 0;
  for (let k = 0; k < rows; k++) worst = Math.max(worst, Math.abs(got.data[k]! - want.data[k]!) / Math.max(1e-30, Math.abs(want.data[k]!)));
  return +worst.toExponential(2);
};

/** Rows enough for a warm-up run to start the CPU backend's worker threads (2^18 pairs and up). */
const warmRows = (M: number, N: number): number => Math.min(M, Math.max(64, Math.ceil(2 ** 19 / N)));
const head = (p: ReturnType<typeof problem>, rows: number): TensorLike => ({ data: p.x.data.subarray(0, rows * D), shape: [rows, D] });

/**
 * Warm-up on the cluster: two cheap calls that leave x, y and b cached on every worker, the plan
 * compiled and the workers' threads started, so the timed call measures the reduction.
 */
async function warm(remote: ReturnType<typeof op>, p: ReturnType<typeof problem>, n: number, W: number): Promise<void> {
  const r = Math.min(n, 64 * W);
  await remote(p.x, { data: p.y.data.subarray(0, r * D), shape: [r, D] }, { data: p.b.data.subarray(0, r), shape: [r, 1] }, p.gp);
  await remote(head(p, warmRows(n, n) * W), p.y, p.b, p.gp);
}

/** The local reference for the first `rows` rows only (cheap): the rows of a sum are independent. */
async function sampleRef(p: ReturnType<typeof problem>, rows: number, backend: 'cpu' | 'webgpu'): Promise<Tensor> {
  return op(backend)({ data: p.x.data.subarray(0, rows * D), shape: [rows, D] }, p.y, p.b, p.gp);
}

const localBackend: 'cpu' | 'webgpu' = workerBackend;
await init({ backend: localBackend });
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, loadavgAtStart: loadavg().map((l) => +l.toFixed(2)) };
const overhead: Record<string, number | string>[] = [];
const scaling: Record<string, number | string>[] = [];
const bigRows: Record<string, number | string>[] = [];

// Local references, measured once.
const smallP = problem(small, small);
const local = op(localBackend);
let localSmallMs = NaN;
if (!has('skip-small')) {
  await local(smallP.x, smallP.y, smallP.b, smallP.gp);
  const ts: number[] = [];
  for (let k = 0; k < reps; k++) ts.push((await seconds(() => local(smallP.x, smallP.y, smallP.b, smallP.gp)))[1] * 1000);
  localSmallMs = median(ts);
}
const midP = problem(mid, mid, 7);
let midLocal: [Tensor, number] | undefined;
if (!has('skip-mid')) {
  await local(head(midP, warmRows(mid, mid)), midP.y, midP.b, midP.gp);
  midLocal = await seconds(() => local(midP.x, midP.y, midP.b, midP.gp));
  scaling.push({ 'M=N': mid, workers: `local ${localBackend}`, s: +midLocal[1].toFixed(3), 'G pairs/s': +((mid * mid) / midLocal[1] / 1e9).toFixed(3), 'vs local': 1 });
  console.log(JSON.stringify(scaling.at(-1)));
}

for (const W of [...new Set([...workerCounts, ...bigWorkers])].sort()) {
  const cluster = await startCluster(W, ['--backend', workerBackend]);
  try {
    await init({ backend: localBackend, servers: cluster.servers });
    const remote = op('cluster');
    if (workerCounts.includes(W) && !has('skip-small')) {
      // Cold: arrays unknown to the workers, plan not compiled there yet.
      const cold = (await seconds(() => remote(smallP.x, smallP.y, smallP.b, smallP.gp)))[1] * 1000;
      const warm: number[] = [];
      for (let k = 0; k < reps; k++) warm.push((await seconds(() => remote(smallP.x, smallP.y, smallP.b, smallP.gp)))[1] * 1000);
      // A new b every call (as in a CG iteration): one array of N floats travels each time.
      const fresh: number[] = [];
      for (let k = 0; k < reps; k++) {
        const b = { data: random(small, 100 + k), shape: [small, 1] };
        fresh.push((await seconds(() => remote(smallP.x, smallP.y, b, smallP.gp)))[1] * 1000);
      }
      overhead.push({
        'M=N': small,
        workers: W,
        'local ms': +localSmallMs.toFixed(2),
        'cluster cold ms': +cold.toFixed(1),
        'cluster warm ms (median)': +median(warm).toFixed(2),
        'cluster, new b each call ms (median)': +median(fresh).toFixed(2),
        'overhead ms (warm - local)': +(median(warm) - localSmallMs).toFixed(2),
      });
      console.log(JSON.stringify(overhead.at(-1)));
    }
    if (workerCounts.includes(W) && midLocal !== undefined) {
      await warm(remote, midP, mid, W);
      const [got, s] = await seconds(() => remote(midP.x, midP.y, midP.b, midP.gp));
      scaling.push({
        'M=N': mid,
        workers: W,
        s: +s.toFixed(3),
        'G pairs/s': +((mid * mid) / s / 1e9).toFixed(3),
        'vs local': +(midLocal[1] / s).toFixed(2),
        'max rel err vs local': relErr(got, midLocal[0]),
      });
      console.log(JSON.stringify(scaling.at(-1)));
    }
    if (bigWorkers.includes(W) && big > 0) {
      const p = problem(big, big, 11);
      await warm(remote, p, big, W);
      const [got, s] = await seconds(() => remote(p.x, p.y, p.b, p.gp));
      const ref = await sampleRef(p, 256, localBackend);
      bigRows.push({
        'M=N': big,
        workers: W,
        'worker backend': workerBackend,
        s: +s.toFixed(2),
        'G pairs/s': +((big * big) / s / 1e9).toFixed(3),
        'max rel err (256 rows vs local)': relErr(got, ref, 256),
      });
      console.log(JSON.stringify(bigRows.at(-1)));
    }
  } finally {
    await shutdown();
    await cluster.stop();
  }
}

if (big > 0 && !has('no-big-local')) {
  await init({ backend: localBackend });
  const p = problem(big, big, 11);
  await local(head(p, warmRows(big, big)), p.y, p.b, p.gp);
  const [, s] = await seconds(() => local(p.x, p.y, p.b, p.gp));
  bigRows.unshift({ 'M=N': big, workers: `local ${localBackend}`, 'worker backend': '-', s: +s.toFixed(2), 'G pairs/s': +((big * big) / s / 1e9).toFixed(3) });
  console.log(JSON.stringify(bigRows[0]));
  await shutdown();
}

if (overhead.length > 0) console.table(overhead);
if (scaling.length > 0) console.table(scaling);
if (bigRows.length > 0) console.table(bigRows);
const file = new URL('./results/cluster.json', import.meta.url);
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
const all = existsSync(file) ? (JSON.parse(readFileSync(file, 'utf8')) as { runs: Record<string, unknown> }) : { runs: {} };
all.runs[label] = { date: new Date().toISOString(), machine: { ...machine, loadavgAtEnd: loadavg().map((l) => +l.toFixed(2)) }, workerBackend, overhead, scaling, big: bigRows };
writeFileSync(file, JSON.stringify(all, null, 2));
console.log(`wrote bench/results/cluster.json (run '${label}')`);
