/**
 * Live point-cloud registration: a stream of frames of a moving, noisy point cloud (a scan whose
 * size varies a little from frame to frame) against a fixed reference cloud. The graph is wired
 * once; every frame recomputes, as one consistent snapshot:
 *   - nearest-neighbour correspondences: the K nearest reference points of each scan point
 *     (KMin_ArgKMin: squared distances and indices in one kernel pass),
 *   - the Gaussian-kernel registration energy E = sum_ij exp(-|x_i - y_j|^2 / (2 s^2)),
 *   - its gradient dE/dx with respect to the moving cloud (reverse mode, as reductions).
 * Frames arrive on an rxjs stream at --fps; when the backend is slower, intermediate frames are
 * skipped (the latest is always computed) and counted in stats().framesSkipped.
 *
 * Run: npx tsx examples/streaming-point-cloud.ts [--points 20000] [--ref 5000] [--frames 10]
 *                                                [--fps 2] [--k 3] [--sigma 0.1] [--backend cpu]
 */
import { interval, map, share, take, zip } from 'rxjs';
import {
  Pm,
  Vi,
  Vj,
  backendName,
  grad,
  init,
  printGraph,
  resetStats,
  shutdown,
  source,
  stats,
  type BackendChoice,
  type TensorLike,
} from '../src/index.js';

const arg = (name: string, dflt: number): number => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : dflt;
};
const backendArg = process.argv.indexOf('--backend');
const backend = (backendArg > 0 ? process.argv[backendArg + 1] : 'auto') as BackendChoice;

const POINTS = arg('points', 20_000);
const REF = arg('ref', 5_000);
const FRAMES = arg('frames', 10);
const FPS = arg('fps', 2);
const K = arg('k', 3);
const SIGMA = arg('sigma', 0.1);
const NOISE = 0.01;

await init({ backend });

// Deterministic randomness (mulberry32) and Gaussian noise (Box-Muller).
let seed = 12345;
const rand = (): number => {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
};
const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

/** n points on a torus (major radius 1, minor 0.35): the "object" being scanned. */
function torus(n: number): Float32Array {
  const out = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) {
    const u = 2 * Math.PI * rand();
    const v = 2 * Math.PI * rand();
    out[i * 3] = (1 + 0.35 * Math.cos(v)) * Math.cos(u);
    out[i * 3 + 1] = (1 + 0.35 * Math.cos(v)) * Math.sin(u);
    out[i * 3 + 2] = 0.35 * Math.sin(v);
  }
  return out;
}

/** Frame k: a fresh noisy scan of the torus (±10% points), rotated about z and shifted along x. */
function scan(k: number): TensorLike {
  const n = Math.max(K, Math.round(POINTS * (0.9 + 0.2 * rand())));
  const pts = torus(n);
  const a = 0.05 * k;
  const [c, s] = [Math.cos(a), Math.sin(a)];
  for (let i = 0; i < n; i++) {
    const [x, y, z] = [pts[i * 3]!, pts[i * 3 + 1]!, pts[i * 3 + 2]!];
    pts[i * 3] = c * x - s * y + 0.02 * k + NOISE * gauss();
    pts[i * 3 + 1] = s * x + c * y + NOISE * gauss();
    pts[i * 3 + 2] = z + NOISE * gauss();
  }
  return { data: pts, shape: [n, 3] };
}

// ---- the graph, wired once ----
const reference = source(torus(REF), [REF, 3], 'reference');
const pushedAt: number[] = [];
const frames$ = interval(1000 / FPS).pipe(
  take(FRAMES),
  map((k) => {
    const frame = scan(k);
    pushedAt[k] = performance.now();
    return { k, frame };
  }),
  share(),
);
// Two sources fed by the same frame, in the same tick: one recompute sees both.
const moving = source(frames$.pipe(map((f) => f.frame)), [0, 3], 'scan');
const frameNo = source(frames$.pipe(map((f) => ({ data: Float32Array.of(f.k), shape: [1, 1] }))), [1, 1], 'frame number');

const D_ij = Vi(moving).sqdist(Vj(reference)); // symbolic (n, REF)
const [nnSqDist, nnIndex] = D_ij.kminArgKmin(K, 1, { backend }); // [n, K] each, one kernel pass
const rows = D_ij.mul(Pm(-1 / (2 * SIGMA * SIGMA))).exp().sum(1, { backend }); // [n, 1]
const energy = Vi(rows).sum(0, { backend }); // [1, 1]
const [dEdx] = grad(energy, [moving]); // [n, 3]
const tag = Vi(frameNo).sum(1, { backend }); // [1, 1]: which frame these results belong to

console.log(`kernelflow streaming registration on ${backendName()}: ~${POINTS} scan points/frame, ${REF} reference points, K = ${K}, sigma = ${SIGMA}`);
console.log(printGraph([nnSqDist, nnIndex, energy, dEdx!, tag]));
console.log('\nframe  points  latency ms  energy      mean NN dist  |dE/dx| mean  source frames skipped');

resetStats();
const latencies: number[] = [];
const t0 = performance.now();
let computed = 0;
let compiledByFirstFrame = 0;
// zip pairs the i-th emission of each node: every node emits once per recompute, all from one snapshot.
const done = new Promise<void>((resolve) => {
  zip([tag.observe(), nnSqDist.observe(), nnIndex.observe(), energy.observe(), dEdx!.observe()]).subscribe({
    next: ([t, d, idx, e, g]) => {
      const k = t.data[0]!;
      const latency = performance.now() - pushedAt[k]!;
      latencies.push(latency);
      computed++;
      if (computed === 1) compiledByFirstFrame = stats().pipelinesCompiled;
      const n = d.shape[0]!;
      let nn = 0;
      for (let i = 0; i < n; i++) nn += Math.sqrt(d.data[i * K]!);
      let gn = 0;
      for (let i = 0; i < n; i++) gn += Math.hypot(g.data[i * 3]!, g.data[i * 3 + 1]!, g.data[i * 3 + 2]!);
      if (idx.data.length !== n * K) throw new Error('correspondences have the wrong shape');
      console.log(
        `${String(k).padStart(5)}  ${String(n).padStart(6)}  ${latency.toFixed(1).padStart(10)}  ${e.data[0]!.toExponential(4)}  ${(nn / n).toFixed(5).padStart(12)}  ${(gn / n).toExponential(3).padStart(12)}  ${String(stats().framesSkipped).padStart(14)}`,
      );
      if (k === FRAMES - 1) resolve();
    },
    error: (e: unknown) => {
      console.error('stream failed:', e);
      resolve();
    },
  });
});
await done;
const wall = (performance.now() - t0) / 1000;
latencies.sort((a, b) => a - b);
const median = latencies[Math.floor(latencies.length / 2)] ?? NaN;
const s = stats();
console.log(
  `\n${FRAMES} frames sent at ${FPS}/s, ${computed} computed, ${FRAMES - computed} skipped ` +
    `(stats().framesSkipped = ${s.framesSkipped}: two sources per frame); median latency ${median.toFixed(1)} ms; ` +
    `${(computed / wall).toFixed(2)} computed frames/s; ${s.dispatches} kernel runs; ${s.pipelinesCompiled - compiledByFirstFrame} kernels compiled after the first frame (sizes change every frame)`,
);
await shutdown();
process.exit(0);
