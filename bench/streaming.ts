/**
 * Streaming registration benchmark: a moving point cloud of n points (a new frame each time, its
 * size varying ±10%) against a fixed reference cloud, through a graph wired once:
 *   KMin_ArgKMin (K = 3) correspondences, the Gaussian energy sum_ij exp(-|x_i - y_j|^2 / (2 s^2))
 *   (a Sum over j, then a Sum over i) and its gradient dE/dx (reverse mode, reductions).
 * Three measurements per size:
 *   - lockstep: a frame is set, its results awaited, then the next: median and p90 frame latency,
 *     frames per second, kernel runs per frame; with the scheduler's fusion of sibling reductions
 *     (issue 17: the correspondences, the row sums and the gradient in one pass) and without it
 *     (`init({ fuse: false })`), frames of the two alternating in the same run;
 *   - direct: the same kernels called one after the other with genred, without the graph (what the
 *     engine costs, or saves, on top of the kernels is the ratio), alternating with the above;
 *   - firehose (fusion on): frames pushed on an rxjs Subject at --rate frames/s (200) for
 *     --seconds: frames computed per second, frames skipped (stats().framesSkipped), and the check
 *     that the last frame pushed is the last one computed.
 * Prints a table and writes bench/results/streaming-<backend>.json, for each backend given.
 * Usage: npx tsx bench/streaming.ts [--points 1000,5000,20000] [--ref 5000] [--frames 10]
 *                                   [--seconds 4] [--rate 200] [--backend cpu|webgpu|auto|cpu,webgpu]
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { Subject, zip } from 'rxjs';
import {
  Pm,
  Vi,
  Vj,
  backendName,
  batch,
  genred,
  grad,
  init,
  shutdown,
  source,
  stats,
  resetStats,
  type BackendChoice,
  type Tensor,
  type TensorLike,
} from '../src/index.js';

const argOf = (name: string): string | undefined => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? process.argv[at + 1] : undefined;
};
const sizes = (argOf('points') ?? '1000,5000,20000').split(',').map(Number);
const REF = Number(argOf('ref') ?? 5000);
const FRAMES = Number(argOf('frames') ?? 10);
const SECONDS = Number(argOf('seconds') ?? 4);
const RATE = Number(argOf('rate') ?? 200);
const backends = (argOf('backend') ?? 'cpu').split(',') as BackendChoice[];
/** The backend being measured (wire() and the direct kernels read it). */
let backend: BackendChoice = backends[0]!;
const K = 3;
const SIGMA = 0.1;
const G = -1 / (2 * SIGMA * SIGMA);

let seed = 7;
const rand = (): number => {
  seed = (seed * 1103515245 + 12345) % 2147483648;
  return seed / 2147483648;
};
function cloud(n: number, shift = 0): Float32Array {
  const out = new Float32Array(n * 3);
  for (let k = 0; k < out.length; k++) out[k] = rand() + (k % 3 === 0 ? shift : 0);
  return out;
}
function frame(n: number, k: number): TensorLike {
  const m = Math.max(K, Math.round(n * (0.9 + 0.2 * rand())));
  return { data: cloud(m, 0.01 * k), shape: [m, 3] };
}
const quantile = (xs: readonly number[], q: number): number => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * s.length))] ?? NaN;
};
const round = (v: number, d = 2): number => Number(v.toFixed(d));

/** The registration graph over a moving source `x` and a reference `y`. */
function wire(x: ReturnType<typeof source>, y: ReturnType<typeof source>) {
  const D = Vi(x).sqdist(Vj(y));
  const [d, idx] = D.kminArgKmin(K, 1, { backend });
  const rows = D.mul(Pm(G)).exp().sum(1, { backend });
  const energy = Vi(rows).sum(0, { backend });
  const [dx] = grad(energy, [x]);
  return [d, idx, energy, dx!] as const;
}

const yData = cloud(REF);
const median = (xs: readonly number[]): number => quantile(xs, 0.5);

for (const b of backends) {
  backend = b;
  try {
    await init({ backend, fuse: true });
  } catch (e) {
    console.error(`backend '${backend}' is not available: ${(e as Error).message}`);
    process.exit(1);
  }
  const rowsOut: Record<string, number | string | boolean>[] = [];
  const direct = {
    kmin: genred('SqDist(x,y)', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'KMin_ArgKMin', K, axis: 1, backend }),
    rows: genred('Exp(g*SqDist(x,y))', ['x = Vi(3)', 'y = Vj(3)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1, backend }),
    grad: genred('Exp(g*SqDist(x,y))*(x-y)', ['x = Vi(3)', 'y = Vj(3)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1, backend }),
  };
  for (const n of sizes) {
    rowsOut.push(await measure(n, direct));
    console.log(JSON.stringify(rowsOut.at(-1)));
  }
  console.table(rowsOut);
  const machine = { cpu: cpus()[0]?.model ?? 'unknown', cores: cpus().length, node: process.version, backend: backendName() };
  mkdirSync(new URL('./results/', import.meta.url), { recursive: true });
  writeFileSync(
    new URL(`./results/streaming-${backendName()}.json`, import.meta.url),
    JSON.stringify({ date: new Date().toISOString(), machine, K, sigma: SIGMA, frames: FRAMES, seconds: SECONDS, rate: RATE, rows: rowsOut }, null, 2),
  );
  console.log(`wrote bench/results/streaming-${backendName()}.json`);
}
await shutdown();
process.exit(0);

type Op = (...args: TensorLike[]) => Promise<unknown>;

/** The three measurements at n moving points. */
async function measure(n: number, direct: { kmin: Op; rows: Op; grad: Op }): Promise<Record<string, number | string | boolean>> {
  // ---- lockstep: set a frame, await its results ----
  const x = source(frame(n, 0), 'moving');
  const y = source(yData, [REF, 3], 'reference');
  const outs = wire(x, y);
  const waiting: ((v: Tensor[]) => void)[] = [];
  const sub = zip(outs.map((o) => o.observe())).subscribe((v) => waiting.shift()?.(v));
  const next = (): Promise<Tensor[]> => new Promise((res) => waiting.push(res));
  /** Sets a frame and awaits its results; returns the kernel runs and fused passes it took. */
  const graphFrame = async (f: TensorLike): Promise<{ runs: number; fused: number }> => {
    const before = stats();
    const got = next();
    batch(() => x.set(f));
    await got;
    const after = stats();
    return { runs: after.dispatches - before.dispatches, fused: after.fusedPasses - before.fusedPasses };
  };
  await next(); // first frame (fused): compiles the fused kernel
  await init({ backend, fuse: false });
  await graphFrame(frame(n, 0)); // the separate kernels
  // direct: the same three big kernels called one after the other with genred, no graph.
  const g = { data: Float32Array.of(G), shape: [1] };
  const yT = { data: yData, shape: [REF, 3] };
  const directFrame = async (f: TensorLike): Promise<void> => {
    await direct.kmin(f, yT);
    const r = (await direct.rows(f, yT, g)) as Tensor;
    let e = 0;
    for (const v of r.data) e += v;
    await direct.grad(f, yT, g);
    if (!Number.isFinite(e)) throw new Error('bad energy');
  };
  await directFrame(frame(n, 0));
  resetStats();
  const modes = ['fused', 'unfused', 'direct'] as const;
  const lat: Record<(typeof modes)[number], number[]> = { fused: [], unfused: [], direct: [] };
  const runs = { fused: 0, unfused: 0 };
  const passes = { fused: 0, unfused: 0 };
  // The three alternate, in rotating order, so that they all see the same machine.
  for (let k = 1; k <= FRAMES; k++) {
    const f = frame(n, k);
    for (let m = 0; m < modes.length; m++) {
      const mode = modes[(k + m) % modes.length]!;
      if (mode !== 'direct') await init({ backend, fuse: mode === 'fused' }); // not timed
      const t = performance.now();
      if (mode === 'direct') await directFrame(f);
      else {
        const r = await graphFrame(f);
        runs[mode] += r.runs;
        passes[mode] += r.fused;
      }
      lat[mode].push(performance.now() - t);
    }
  }
  await init({ backend, fuse: true });
  const lockStats = stats();
  sub.unsubscribe();
  x.dispose();
  y.dispose();

  // ---- firehose: frames pushed faster than they compute ----
  // A second source carries the frame number, set in the same tick as the frame: the results
  // computed from one snapshot say which frame they belong to.
  const frames = new Subject<TensorLike>();
  const numbers = new Subject<TensorLike>();
  const xs = source(frames, [0, 3], 'moving');
  const no = source(numbers, [1, 1], 'frame number');
  const ys = source(yData, [REF, 3], 'reference');
  const fouts = [...wire(xs, ys), Vi(no).sum(1, { backend })];
  const computedFrames: number[] = [];
  const fsub = zip(fouts.map((o) => o.observe())).subscribe((v) => computedFrames.push(v[4]!.data[0]!));
  const push = (k: number, f: TensorLike): void =>
    batch(() => {
      frames.next(f);
      numbers.next({ data: Float32Array.of(k), shape: [1, 1] });
    });
  push(0, frame(n, 0));
  while (computedFrames.length === 0) await new Promise((res) => setTimeout(res, 1));
  resetStats();
  const pool = Array.from({ length: 16 }, (_, k) => frame(n, k)); // made ahead: pushing costs nothing
  let sent = 0;
  const tf = performance.now();
  while (performance.now() - tf < SECONDS * 1000) {
    sent++;
    push(sent, pool[sent % pool.length]!);
    await new Promise((res) => setTimeout(res, 1000 / RATE));
  }
  const sentAt = performance.now();
  while (computedFrames.at(-1) !== sent) await new Promise((res) => setTimeout(res, 1));
  const fireWall = (performance.now() - tf) / 1000;
  const computed = computedFrames.length - 1;
  const fstats = stats();
  fsub.unsubscribe();
  xs.dispose();
  no.dispose();
  ys.dispose();

  return {
    backend: backendName(),
    points: n,
    reference: REF,
    'fused runs/frame': round(runs.fused / FRAMES, 1),
    'unfused runs/frame': round(runs.unfused / FRAMES, 1),
    'fused passes/frame': round(passes.fused / FRAMES, 1),
    'fused median ms': round(median(lat.fused), 1),
    'fused p90 ms': round(quantile(lat.fused, 0.9), 1),
    'unfused median ms': round(median(lat.unfused), 1),
    'unfused p90 ms': round(quantile(lat.unfused, 0.9), 1),
    'unfused/fused': round(median(lat.unfused) / median(lat.fused), 2),
    'fused frames/s': round(1000 / (lat.fused.reduce((a, b) => a + b, 0) / FRAMES)),
    'compiled after warm-up': lockStats.pipelinesCompiled,
    'direct median ms': round(median(lat.direct), 1),
    'graph/direct': round(median(lat.fused) / median(lat.direct), 3),
    'unfused graph/direct': round(median(lat.unfused) / median(lat.direct), 3),
    'firehose sent': sent,
    'firehose computed': computed,
    'firehose skipped': sent - computed,
    'framesSkipped counter': fstats.framesSkipped,
    'firehose computed/s': round(computed / fireWall),
    'firehose drain ms': round(performance.now() - sentAt, 0),
    'last frame computed': computedFrames.at(-1) === sent,
  };
}
