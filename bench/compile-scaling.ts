/**
 * How the kernel compiler scales with the formula: the Gaussian sum a_i = sum_j exp(-|x_i - y_j|^2) b_j
 * for D = 3 ... 1000, on the CPU and WebGPU backends. Per (backend, D): the first-result time of
 * a new formula (parse, plan, codegen, compile, a 64 x 64 run; Mesa's shader cache is off so
 * lavapipe compiles for real) and the throughput of the compiled kernel at n x n (best of --reps
 * after a warm-up), n chosen so that n^2 D is about --work. Prints a table and writes
 * bench/results/compile-scaling.json.
 *
 * `--compare <checkout>` also times another checkout of kernelflow (e.g. a worktree of an older
 * commit) at the same dims, alternating old and new in child processes, and prints the ratios.
 *
 * Usage: npx tsx bench/compile-scaling.ts [--dims 3,16,64,128,300,1000] [--backends cpu,webgpu]
 *        [--work 2e9] [--reps 3] [--compare /tmp/kernelflow-base --compare-dims 3 --rounds 3]
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

process.env.MESA_SHADER_CACHE_DISABLE ??= 'true';

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(flag('--root') ?? join(here, '..'));
const dims = (flag('--dims') ?? '3,16,64,128,300,1000').split(',').map(Number);
const backends = (flag('--backends') ?? 'cpu,webgpu').split(',') as ('cpu' | 'webgpu')[];
const work = Number(flag('--work') ?? 2e9);
const reps = Number(flag('--reps') ?? 3);

interface Row {
  backend: string;
  D: number;
  'first result ms': number;
  n: number;
  'G pairs/s': number;
  'max rel err': number;
}

/** The kernelflow API this run measures (this checkout, or --root). */
interface Api {
  init(o: { backend: string }): Promise<unknown>;
  shutdown(): Promise<void>;
  genred(f: string, a: string[], o: { reduction: 'Sum'; axis: 1 }): (...args: { data: Float32Array; shape: number[] }[]) => Promise<{ data: Float32Array }>;
}

function random(n: number, seed: number, scale: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => (((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1) * scale);
}

/** Float64 Gaussian sum of the first `rows` rows. */
function reference(x: Float32Array, y: Float32Array, b: Float32Array, rows: number, N: number, D: number): Float64Array {
  const out = new Float64Array(rows);
  for (let i = 0; i < rows; i++)
    for (let j = 0; j < N; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (x[i * D + k]! - y[j * D + k]!) ** 2;
      out[i]! += Math.exp(-d2) * b[j]!;
    }
  return out;
}

async function measure(api: Api, backend: string, D: number): Promise<Row> {
  await api.init({ backend });
  const n = Math.max(256, Math.min(30_000, Math.round(Math.sqrt(work / D))));
  // Coordinates of size 1/sqrt(D): squared distances stay O(1), so the sum is not all zeros.
  const [x, y, b] = [random(n * D, 1, 1 / Math.sqrt(D)), random(n * D, 2, 1 / Math.sqrt(D)), random(n, 3, 1)];
  const arg = (data: Float32Array, rows: number, dim: number) => ({ data: data.subarray(0, rows * dim), shape: [rows, dim] });
  const t0 = performance.now();
  const op = api.genred('Exp(-SqDist(x,y))*b', [`x = Vi(${D})`, `y = Vj(${D})`, 'b = Vj(1)'], { reduction: 'Sum', axis: 1 });
  await op(arg(x, 64, D), arg(y, 64, D), arg(b, 64, 1));
  const first = performance.now() - t0;
  await op(arg(x, n, D), arg(y, n, D), arg(b, n, 1));
  let best = Infinity;
  let got: ArrayLike<number> = [];
  for (let r = 0; r < reps; r++) {
    const t1 = performance.now();
    got = (await op(arg(x, n, D), arg(y, n, D), arg(b, n, 1))).data;
    best = Math.min(best, performance.now() - t1);
  }
  const want = reference(x, y, b, 4, n, D);
  let err = 0;
  for (let i = 0; i < 4; i++) err = Math.max(err, Math.abs(got[i]! - want[i]!) / Math.abs(want[i]!));
  await api.shutdown();
  return { backend, D, 'first result ms': Math.round(first), n, 'G pairs/s': +((n * n) / (best / 1000) / 1e9).toFixed(3), 'max rel err': +err.toExponential(2) };
}

/** One (checkout, backend, D) measurement in a child process (a fresh device, nothing cached). */
function child(checkout: string, backend: string, D: number): Row {
  const args = ['tsx', fileURLToPath(import.meta.url), '--root', checkout, '--backends', backend, '--dims', String(D), '--work', String(work), '--reps', String(reps), '--child'];
  const r = spawnSync('npx', args, { encoding: 'utf8', cwd: join(here, '..'), env: process.env, timeout: 900_000 });
  const line = r.stdout.split('\n').find((l) => l.startsWith('{"backend"'));
  if (line === undefined) throw new Error(`child ${checkout} ${backend} D=${D} failed:\n${r.stdout}\n${r.stderr}`);
  return JSON.parse(line) as Row;
}

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[xs.length >> 1]!;

if (process.argv.includes('--child')) {
  const api = (await import(join(root, 'src/index.ts'))) as Api;
  for (const be of backends) for (const D of dims) console.log(JSON.stringify(await measure(api, be, D)));
} else {
  const rows: Row[] = [];
  for (const be of backends) for (const D of dims) rows.push(child(root, be, D));
  console.table(rows);
  const result: Record<string, unknown> = { date: new Date().toISOString(), machine: { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version }, work, rows };
  const base = flag('--compare');
  if (base !== undefined) {
    // Old and new alternate, so both see the same load on the machine; medians of the rounds.
    const rounds = Number(flag('--rounds') ?? 3);
    const compare: Record<string, number | string>[] = [];
    for (const be of backends)
      for (const D of (flag('--compare-dims') ?? '3').split(',').map(Number)) {
        const [olds, news] = [[] as Row[], [] as Row[]];
        for (let r = 0; r < rounds; r++) {
          olds.push(child(resolve(base), be, D));
          news.push(child(root, be, D));
        }
        const g = (rs: Row[]) => median(rs.map((x) => x['G pairs/s']));
        const f = (rs: Row[]) => median(rs.map((x) => x['first result ms']));
        compare.push({ backend: be, D, 'old G pairs/s': g(olds), 'new G pairs/s': g(news), 'new/old': +(g(news) / g(olds)).toFixed(2), 'old first ms': f(olds), 'new first ms': f(news), 'rounds (G pairs/s old | new)': `${olds.map((x) => x['G pairs/s']).join(' ')} | ${news.map((x) => x['G pairs/s']).join(' ')}` });
      }
    console.table(compare);
    result.compare = { base: resolve(base), rounds, rows: compare };
  }
  mkdirSync(join(here, 'results'), { recursive: true });
  writeFileSync(join(here, 'results/compile-scaling.json'), JSON.stringify(result, null, 2));
  console.log('wrote bench/results/compile-scaling.json');
}
