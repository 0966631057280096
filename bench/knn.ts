/**
 * K nearest neighbours: ArgKMin (K = 10; others with --K) of SqDist(x_i, y_j), D = 3, float32, M = N, on the CPU
 * backend and on WebGPU, this checkout ("after") against a baseline checkout ("before", e.g. a git
 * worktree of the main-branch commit) loaded into the same process and run alternately, beside a
 * plain single-threaded JavaScript loop. Peer: pykeops CPU (g++ -O3, OpenMP) on this machine,
 * 0.74 s at M = N = 3e4, 1.2 G pairs/s (issue 16; pykeops cannot be installed here).
 * Each time is the best of `reps` alternated calls after a warm-up call (which compiles).
 * Prints a table, writes bench/results/<out>.json (default knn).
 * Usage: npx tsx bench/knn.ts [--sizes 30000] [--reps 3] [--K 10,64] [--base /tmp/kf-base] [--backends cpu,webgpu] [--out knn]
 *   (--base none: no baseline; make one with `git worktree add --detach /tmp/kf-base <commit>`
 *   and a node_modules symlink)
 */
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { cpus, loadavg } from 'node:os';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const flag = (name: string): string | undefined => {
  const i = process.argv.indexOf(name);
  return i > 0 ? process.argv[i + 1] : undefined;
};
const sizes = (flag('--sizes') ?? '30000').split(',').map(Number);
const reps = Number(flag('--reps') ?? 3);
const Ks = (flag('--K') ?? '10').split(',').map(Number);
const backends = (flag('--backends') ?? 'cpu,webgpu').split(',');
const baseArg = flag('--base') ?? '/tmp/kf-base';
const out = flag('--out') ?? 'knn';
const base = baseArg !== 'none' && existsSync(resolve(baseArg, 'src/index.ts')) ? resolve(baseArg) : undefined;
const D = 3;
const commit = (dir: string): string => execSync(`git -C ${dir} rev-parse --short HEAD`).toString().trim();
/** pykeops CPU, ArgKMin K = 10, D = 3, M = N = 3e4 on this machine (issue 16). */
const PYKEOPS_GPS = 1.2;

type Outs = (Float32Array | Int32Array)[];
interface Runner {
  run(K: number, ins: Float32Array[], M: number, N: number): Promise<Outs>;
  close(): Promise<void>;
}

/** The CPU and WebGPU backends of a checkout at `root`, driven through kernel plans. */
async function checkout(root: string, which: string): Promise<Runner> {
  const imp = (p: string): Promise<Record<string, unknown>> => import(pathToFileURL(resolve(root, 'src', p)).href) as Promise<Record<string, unknown>>;
  const { mkVar } = (await imp('graph/formula.ts')) as { mkVar: (i: number, d: number, c: number) => unknown };
  const { op } = (await imp('ops/build.ts')) as { op: (n: string, a: unknown[]) => unknown };
  const { makePlan } = (await imp('kernel/plan.ts')) as { makePlan: (f: unknown, o: unknown) => unknown };
  const plan = (K: number): unknown => makePlan(op('SqDist', [mkVar(0, D, 0), mkVar(1, D, 1)]), { reduction: 'ArgKMin', axis: 1, K });
  type Backend = { run(p: unknown, ins: Float32Array[], M: number, N: number): Promise<Outs>; dispose?: () => Promise<void> };
  if (which === 'cpu') {
    const { CpuBackend } = (await imp('cpu/backend.ts')) as { CpuBackend: new () => Backend };
    const b = new CpuBackend();
    return { run: (K, ins, M, N) => b.run(plan(K), ins, M, N), close: async () => b.dispose?.() };
  }
  const { GpuBackend } = (await imp('gpu/backend.ts')) as { GpuBackend: new () => Backend };
  const { releaseDevice } = (await imp('gpu/device.ts')) as { releaseDevice: () => Promise<void> };
  const b = new GpuBackend();
  return { run: (K, ins, M, N) => b.run(plan(K), ins, M, N), close: releaseDevice };
}

function random(n: number, seed: number): Float32Array {
  let s = seed;
  return Float32Array.from({ length: n }, () => (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648);
}

/** The loop a user would write: per row, squared distances in float64 and a sorted K-list by insertion (ties: lower j first). */
function plainLoop(K: number, x: Float32Array, y: Float32Array, rows: number, N: number): Int32Array {
  const out = new Int32Array(rows * K);
  const dist = new Float64Array(K);
  const idx = new Int32Array(K);
  for (let i = 0; i < rows; i++) {
    dist.fill(Infinity);
    idx.fill(-1);
    for (let j = 0; j < N; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) {
        const t = x[i * D + k]! - y[j * D + k]!;
        d2 += t * t;
      }
      if (!(d2 < dist[K - 1]!)) continue;
      let w = K - 1;
      while (w > 0 && d2 < dist[w - 1]!) {
        dist[w] = dist[w - 1]!;
        idx[w] = idx[w - 1]!;
        w--;
      }
      dist[w] = d2;
      idx[w] = j;
    }
    out.set(idx, i * K);
  }
  return out;
}

const mismatches = (a: Int32Array, b: Int32Array, n = Math.min(a.length, b.length)): number => {
  let m = 0;
  for (let k = 0; k < n; k++) if (a[k] !== b[k]) m++;
  return m;
};

const time = async <T>(fn: () => Promise<T> | T): Promise<[T, number]> => {
  const t0 = performance.now();
  const r = await fn();
  return [r, (performance.now() - t0) / 1000];
};

const gps = (pairs: number, s: number): number => +(pairs / s / 1e9).toFixed(3);
const load = (): string => loadavg().map((l) => l.toFixed(2)).join(' ');

const rows: Record<string, number | string>[] = [];
const here = resolve(new URL('..', import.meta.url).pathname);
for (const n of sizes) {
  const x = random(n * D, 1);
  const y = random(n * D, 2);
  for (const K of Ks) {
    // The plain loop on a row sample (its rate is per pair, so it scales).
    const sample = Math.min(n, Math.max(64, Math.round(3e8 / n)));
    const [ref, tLoop] = await time(() => plainLoop(K, x, y, sample, n));
    for (const which of backends) {
      const after = await checkout(here, which);
      const before = base === undefined ? undefined : await checkout(base, which);
      const loadBefore = load();
      // Warm-up (compiles on every worker / the driver), then alternated calls.
      const [[oa], firstAfter] = await time(() => after.run(K, [x, y], n, n));
      const [ob, firstBefore] = before === undefined ? [undefined, NaN] : await time(() => before.run(K, [x, y], n, n));
      let [ta, tb] = [Infinity, Infinity];
      for (let r = 0; r < reps; r++) {
        ta = Math.min(ta, (await time(() => after.run(K, [x, y], n, n)))[1]);
        if (before !== undefined) tb = Math.min(tb, (await time(() => before.run(K, [x, y], n, n)))[1]);
      }
      const row: Record<string, number | string> = {
        backend: which,
        K,
        'M=N': n,
        'after s': +ta.toFixed(3),
        'after G/s': gps(n * n, ta),
        'after / pykeops': K === 10 ? +(n * n / ta / 1e9 / PYKEOPS_GPS).toFixed(2) : '',
        'after first call s': +firstAfter.toFixed(2),
      };
      if (before !== undefined) {
        Object.assign(row, {
          'before s': +tb.toFixed(3),
          'before G/s': gps(n * n, tb),
          'after / before': +(tb / ta).toFixed(2),
          'before first call s': +firstBefore.toFixed(2),
          'index mismatch after vs before': mismatches(oa as Int32Array, ob![0] as Int32Array),
        });
      }
      Object.assign(row, {
        'plain loop G/s': gps(sample * n, tLoop),
        'after / plain loop': +(tLoop / sample / (ta / n)).toFixed(1),
        // Float32 (WebGPU) distances may order near-ties differently from the float64 loop.
        'index mismatch vs loop': `${mismatches(oa as Int32Array, ref, sample * K)} (${sample} rows)`,
        load: `${loadBefore} -> ${load()}`,
      });
      rows.push(row);
      console.log(JSON.stringify(row));
      await after.close();
      await before?.close();
    }
  }
}
console.table(rows);
const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version };
const peer = { 'pykeops CPU G/s (issue 16, M=N=3e4, K=10)': PYKEOPS_GPS, 'pykeops CPU s': 0.74 };
mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
writeFileSync(new URL(`./results/${out}.json`, import.meta.url), JSON.stringify({ date: new Date().toISOString(), machine, reps, after: commit(here), before: base === undefined ? 'none' : commit(base), rows, peer }, null, 2));
console.log(`wrote bench/results/${out}.json`);
