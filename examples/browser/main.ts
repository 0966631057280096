/**
 * Browser demo: a moving 2-D point cloud streamed into the graph with `x.set(...)` every animation
 * frame, against a fixed reference cloud. Two nodes are wired once and observed:
 *   - nearest-neighbour links: `Vi(x).sqdist(Vj(y)).argKmin(1, 1)` (index of the closest y_j),
 *   - a kernel density of the moving cloud on a grid: `Vi(grid).sqdist(Vj(x)).mul(-g).exp().sum(1)`.
 * Each frame is drawn once both results for it arrived (a consistent snapshot); then the next frame
 * is set. A few rows of every frame are checked against a float64 brute force in the page.
 *
 * Build: node examples/browser/build.mjs, then serve examples/browser/ and open index.html.
 * `window.__kf` exposes { frames, backend, lastError, ... } for the headless test.
 */
import { Vi, Vj, backendName, cpuKernels, init, kernelShapes, softwareAdapter, source, stats, type BackendChoice, type CpuKernelInfo, type Tensor } from '../../src/index.js';

interface KfStatus {
  frames: number;
  backend: string | null;
  lastError: string | null;
  /** Milliseconds from `x.set` to both results of the last frame. */
  latencyMs: number | null;
  /** Rows checked against the brute force, and how many disagreed. */
  checked: number;
  mismatches: number;
  sizes: { m: number; n: number; grid: [number, number] } | null;
  /** The WebGPU kernel profiles and shapes used (kernelShapes()): empty on the CPU backend. */
  kernels: { profile: string; rowsPerThread: number; workgroupSize: number; tileRows: number }[];
  /** On the CPU backend: which kernels ran (WebAssembly SIMD, or JavaScript), and how many compiled to WASM. */
  cpu: CpuKernelInfo | null;
}

declare global {
  interface Window {
    __kf: KfStatus;
  }
}

const kf: KfStatus = { frames: 0, backend: null, lastError: null, latencyMs: null, checked: 0, mismatches: 0, sizes: null, kernels: [], cpu: null };
window.__kf = kf;

const statusEl = document.getElementById('status') as HTMLPreElement;
const canvas = document.getElementById('view') as HTMLCanvasElement;
const ctx = canvas.getContext('2d')!;
const W = canvas.width;
const H = canvas.height;
/** World coordinates: x in [-XR, XR], y in [-1, 1]; the canvas keeps the aspect ratio. */
const XR = W / H;
const toPx = (x: number): number => ((x + XR) / (2 * XR)) * W;
const toPy = (y: number): number => ((1 - y) / 2) * H;

function fail(e: unknown): void {
  const msg = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  kf.lastError ??= msg;
  statusEl.classList.add('error');
  statusEl.textContent = `error: ${msg}\n\n${statusEl.textContent ?? ''}`;
  console.error(e);
}
window.addEventListener('error', (ev) => fail(ev.error ?? ev.message));
window.addEventListener('unhandledrejection', (ev) => fail(ev.reason));

// Deterministic randomness (mulberry32) and Gaussian samples (Box-Muller).
let seed = 20240611;
function rand(): number {
  seed = (seed + 0x6d2b79f5) >>> 0;
  let t = seed;
  t = Math.imul(t ^ (t >>> 15), t | 1);
  t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const gauss = (): number => Math.sqrt(-2 * Math.log(1 - rand())) * Math.cos(2 * Math.PI * rand());

/** Reference cloud: a three-petal rose inside an ellipse, with a little noise. */
function referenceCloud(n: number): Float32Array {
  const out = new Float32Array(n * 2);
  for (let j = 0; j < n; j++) {
    let x: number;
    let y: number;
    if (j % 3 === 0) {
      const a = 2 * Math.PI * rand();
      [x, y] = [1.3 * Math.cos(a), 0.9 * Math.sin(a)];
    } else {
      const a = Math.PI * rand();
      const r = 0.8 * Math.cos(3 * a);
      [x, y] = [r * Math.cos(a), r * Math.sin(a)];
    }
    out[2 * j] = x + 0.01 * gauss();
    out[2 * j + 1] = y + 0.01 * gauss();
  }
  return out;
}

/** Moving cloud: three elongated clusters orbiting the origin and spinning; fixed offsets per point. */
const CLUSTERS = [
  { radius: 0.6, speed: 0.35, phase: 0, spin: 1.1, sx: 0.2, sy: 0.05 },
  { radius: 0.75, speed: -0.22, phase: 2.1, spin: -0.7, sx: 0.14, sy: 0.07 },
  { radius: 0.25, speed: 0.5, phase: 4.2, spin: 0.4, sx: 0.1, sy: 0.1 },
];
function movingOffsets(m: number): Float32Array {
  const out = new Float32Array(m * 2);
  for (let i = 0; i < m; i++) {
    const c = CLUSTERS[i % CLUSTERS.length]!;
    out[2 * i] = c.sx * gauss();
    out[2 * i + 1] = c.sy * gauss();
  }
  return out;
}
function movingCloud(offsets: Float32Array, t: number, out: Float32Array): Float32Array {
  const m = offsets.length / 2;
  for (let i = 0; i < m; i++) {
    const c = CLUSTERS[i % CLUSTERS.length]!;
    const a = c.speed * t + c.phase;
    const cx = c.radius * Math.cos(a) * 1.2;
    const cy = c.radius * Math.sin(a) * 0.9;
    const s = c.spin * t;
    const [co, si] = [Math.cos(s), Math.sin(s)];
    const [ox, oy] = [offsets[2 * i]!, offsets[2 * i + 1]!];
    out[2 * i] = cx + co * ox - si * oy;
    out[2 * i + 1] = cy + si * ox + co * oy;
  }
  return out;
}

/** Grid of gw x gh cell centres over the world, row 0 at the top. */
function gridPoints(gw: number, gh: number): Float32Array {
  const out = new Float32Array(gw * gh * 2);
  for (let r = 0; r < gh; r++) {
    for (let c = 0; c < gw; c++) {
      const k = r * gw + c;
      out[2 * k] = -XR + ((c + 0.5) / gw) * 2 * XR;
      out[2 * k + 1] = 1 - ((r + 0.5) / gh) * 2;
    }
  }
  return out;
}

/** A dark-to-bright colour map (t in [0, 1]); t = 0 is the canvas background. */
const STOPS: [number, number, number][] = [
  [11, 13, 23],
  [58, 16, 104],
  [160, 38, 110],
  [240, 110, 44],
  [252, 240, 150],
];
function colour(t: number, px: Uint8ClampedArray, at: number): void {
  const u = Math.min(1, Math.max(0, t)) * (STOPS.length - 1);
  const k = Math.min(STOPS.length - 2, Math.floor(u));
  const f = u - k;
  const [a, b] = [STOPS[k]!, STOPS[k + 1]!];
  px[at] = a[0] + f * (b[0] - a[0]);
  px[at + 1] = a[1] + f * (b[1] - a[1]);
  px[at + 2] = a[2] + f * (b[2] - a[2]);
  px[at + 3] = 255;
}

const params = new URLSearchParams(location.search);
const num = (name: string, dflt: number): number => {
  const v = Number(params.get(name));
  return params.has(name) && Number.isFinite(v) && v > 0 ? Math.floor(v) : dflt;
};

async function main(): Promise<void> {
  statusEl.textContent = 'choosing a backend…';
  const want = (params.get('backend') ?? 'auto') as BackendChoice;
  // ?profile=gpu forces the GPU kernel profile (workgroup-memory tiles) on any adapter; default: from the adapter.
  const profile = params.get('profile');
  const backend = await init({ backend: want, gpuProfile: profile === 'gpu' || profile === 'cpu' ? profile : 'auto' });
  const gpu = backend === 'webgpu';
  kf.backend = backend;
  const backendLine = gpu
    ? `WebGPU${softwareAdapter() ? ' (software adapter)' : ''}`
    : `CPU (${cpuKernels().kernels === 'wasm' ? 'WebAssembly SIMD kernels' : 'generated JavaScript'} on the main thread${want === 'cpu' ? ', as asked' : ': this browser has no WebGPU adapter; headless Chromium without a GPU has none unless started with SwiftShader'})`;

  // A hardware GPU takes 10x more points; a software adapter (SwiftShader) or the CPU, the small sizes.
  const big = gpu && !softwareAdapter();
  const M = num('m', big ? 20_000 : 2_000);
  const N = num('n', big ? 8_000 : 1_500);
  const GW = num('grid', big ? 240 : 96);
  const GH = Math.max(1, Math.round((GW * H) / W));
  const SIGMA = 0.07;
  const G = 1 / (2 * SIGMA * SIGMA);
  kf.sizes = { m: M, n: N, grid: [GW, GH] };

  const yData = referenceCloud(N);
  const offsets = movingOffsets(M);
  const gData = gridPoints(GW, GH);
  const t0 = performance.now();
  const time = (): number => (performance.now() - t0) / 1000;

  const pts0 = movingCloud(offsets, 0, new Float32Array(2 * M));
  const x = source(pts0, [M, 2], 'moving');
  const y = source(yData, [N, 2], 'reference');
  const grid = source(gData, [GW * GH, 2], 'grid');
  const nearest = Vi(x).sqdist(Vj(y)).argKmin(1, 1); // [M, 1] int32
  const density = Vi(grid).sqdist(Vj(x)).mul(-G).exp().sum(1); // [GW*GH, 1] float32

  /** The frame whose results are awaited: its points (what x was set to) and the results so far. */
  interface Frame {
    pts: Float32Array;
    setAt: number;
    nn?: Int32Array;
    dens?: Float32Array;
  }
  let frame: Frame = { pts: pts0, setAt: performance.now() };
  let latencySum = 0;
  let lastDraw = performance.now();
  let fps = 0;

  const off = document.createElement('canvas');
  off.width = GW;
  off.height = GH;
  const offCtx = off.getContext('2d')!;
  const image = offCtx.createImageData(GW, GH);

  function check(f: Frame): void {
    const { pts, nn, dens } = f as Required<Frame>;
    // Nearest neighbours of a few rows: the returned index must be at the brute-force minimum distance.
    for (let s = 0; s < 12; s++) {
      const i = (s * 7919 + kf.frames * 131) % M;
      const [px, py] = [pts[2 * i]!, pts[2 * i + 1]!];
      let best = Infinity;
      for (let j = 0; j < N; j++) best = Math.min(best, (px - yData[2 * j]!) ** 2 + (py - yData[2 * j + 1]!) ** 2);
      const j = nn[i]!;
      const got = j >= 0 && j < N ? (px - yData[2 * j]!) ** 2 + (py - yData[2 * j + 1]!) ** 2 : Infinity;
      kf.checked++;
      if (!(Math.abs(got - best) <= 1e-5 * (1 + best))) kf.mismatches++;
    }
    // Density at a few grid cells against a float64 sum.
    for (let s = 0; s < 4; s++) {
      const k = (s * 1543 + kf.frames * 97) % (GW * GH);
      const [gx, gy] = [gData[2 * k]!, gData[2 * k + 1]!];
      let sum = 0;
      for (let i = 0; i < M; i++) sum += Math.exp(-G * ((gx - pts[2 * i]!) ** 2 + (gy - pts[2 * i + 1]!) ** 2));
      kf.checked++;
      if (!(Math.abs(dens[k]! - sum) <= 1e-4 * sum + 1e-6)) kf.mismatches++;
    }
  }

  function draw(f: Frame): void {
    const { pts, nn, dens } = f as Required<Frame>;
    // Density image (normalised by this frame's maximum, with a gamma that lifts the tails).
    let max = 0;
    for (let k = 0; k < dens.length; k++) max = Math.max(max, dens[k]!);
    const px = image.data;
    for (let k = 0; k < dens.length; k++) colour(max > 0 ? Math.pow(dens[k]! / max, 0.6) : 0, px, 4 * k);
    offCtx.putImageData(image, 0, 0);
    ctx.imageSmoothingEnabled = true;
    ctx.drawImage(off, 0, 0, W, H);

    // Reference cloud.
    ctx.fillStyle = 'rgba(205, 210, 225, 0.85)';
    for (let j = 0; j < N; j++) ctx.fillRect(toPx(yData[2 * j]!) - 1, toPy(yData[2 * j + 1]!) - 1, 2, 2);
    // Nearest-neighbour links.
    ctx.strokeStyle = 'rgba(120, 225, 255, 0.35)';
    ctx.lineWidth = 1;
    ctx.beginPath();
    for (let i = 0; i < M; i++) {
      const j = nn[i]!;
      ctx.moveTo(toPx(pts[2 * i]!), toPy(pts[2 * i + 1]!));
      ctx.lineTo(toPx(yData[2 * j]!), toPy(yData[2 * j + 1]!));
    }
    ctx.stroke();
    // Moving cloud.
    ctx.fillStyle = '#4fd8ff';
    for (let i = 0; i < M; i++) ctx.fillRect(toPx(pts[2 * i]!) - 1, toPy(pts[2 * i + 1]!) - 1, 2, 2);
  }

  function status(): void {
    const st = stats();
    if (!gpu) kf.cpu = cpuKernels();
    const lat = kf.latencyMs ?? 0;
    kf.kernels = kernelShapes().map((k) => ({ profile: k.profile, ...k.shape }));
    const shapes = kf.kernels.map((k) => `${k.profile} ${k.rowsPerThread}x${k.workgroupSize}${k.tileRows > 0 ? ` tile ${k.tileRows}` : ''}`);
    statusEl.textContent = [
      `backend   ${backendLine}`,
      `sizes     moving M=${M}, reference N=${N}, density grid ${GW}x${GH} (sigma ${SIGMA})`,
      `frames    ${kf.frames}   (${fps.toFixed(1)} frames/s, skipped ${st.framesSkipped})`,
      `latency   ${lat.toFixed(1)} ms last, ${(latencySum / Math.max(1, kf.frames)).toFixed(1)} ms mean (x.set -> both results)`,
      `kernels   ${st.dispatches} dispatches, ${st.pipelinesCompiled} compiled, ${st.pipelineCacheHits} cache hits${shapes.length > 0 ? `; shapes ${[...new Set(shapes)].join(', ')}` : ''}`,
      `checked   ${kf.checked} rows against a float64 brute force, ${kf.mismatches} mismatches`,
    ].join('\n');
  }

  function next(): void {
    const pts = movingCloud(offsets, time(), new Float32Array(2 * M));
    frame = { pts, setAt: performance.now() };
    x.set(pts);
  }

  function arrived(): void {
    const f = frame;
    if (f.nn === undefined || f.dens === undefined) return;
    const now = performance.now();
    kf.latencyMs = now - f.setAt;
    latencySum += kf.latencyMs;
    check(f);
    draw(f);
    kf.frames++;
    fps = 0.9 * fps + 0.1 * (1000 / Math.max(1, now - lastDraw));
    lastDraw = now;
    status();
    requestAnimationFrame(next);
  }

  nearest.observe().subscribe({
    next: (t: Tensor) => {
      frame.nn = t.data as Int32Array;
      arrived();
    },
    error: fail,
  });
  density.observe().subscribe({
    next: (t: Tensor) => {
      frame.dens = t.data as Float32Array;
      arrived();
    },
    error: fail,
  });
  if (backendName() !== backend) fail(new Error(`backend mismatch: ${backendName()} vs ${backend}`));
  status();
}

main().catch(fail);
