/**
 * Counters since the last `resetStats()`. Backends bump them; users read `stats()`.
 * @example
 * ```ts
 * import { stats, type Stats } from 'kernelflow';
 * const s: Stats = stats();
 * console.log(`${s.dispatches} kernel runs, ${s.pipelinesCompiled} compiled, ${s.peakBytes} bytes at peak`);
 * ```
 */
export interface Stats {
  /** Kernel launches on either backend: one per fused reduction (one per chunk when a problem is split to fit device limits; two when WebGPU splits the reduced axis into blocks). A kernel that computes several sibling reductions together counts once. */
  dispatches: number;
  /** Kernel runs that computed several sibling reductions of the graph in one pass (the scheduler's fusion; `init({ fuse: false })` turns it off). */
  fusedPasses: number;
  /** Reductions computed inside those fused runs (a pair reduction, such as `minArgmin`, is one). */
  fusedReductions: number;
  /** Kernels generated and compiled (WGSL pipelines, or JavaScript functions on the CPU backend). */
  pipelinesCompiled: number;
  /** Kernels found in the cache (same formula structure, whatever the sizes and literal values). */
  pipelineCacheHits: number;
  /** Compiled kernels dropped from a full cache, least recently used first (size: `init({ kernelCacheSize })`, default 256 per backend). */
  kernelsEvicted: number;
  /** Bytes currently held by node values, backend buffers and solver workspaces (CG vectors, the Nyström factor; live, not reset by `resetStats`). */
  bytesAllocated: number;
  /** The largest `bytesAllocated` since the last `resetStats()`. */
  peakBytes: number;
  /** Source frames replaced before any recompute took them (back-pressure: the latest is computed). */
  framesSkipped: number;
}

const counters: Stats = { dispatches: 0, fusedPasses: 0, fusedReductions: 0, pipelinesCompiled: 0, pipelineCacheHits: 0, kernelsEvicted: 0, bytesAllocated: 0, peakBytes: 0, framesSkipped: 0 };

/**
 * A snapshot of the counters.
 * @example
 * ```ts
 * import { source, Vi, Vj, stats, resetStats } from 'kernelflow';
 * const x = source(new Float32Array(300), [100, 3]);
 * resetStats();
 * const [d, idx] = Vi(x).sqdist(Vj(x)).kminArgKmin(3, 1); // two nodes, one fused kernel
 * await Promise.all([d.read(), idx.read()]);
 * console.log(stats().dispatches); // 1
 * ```
 */
export function stats(): Stats {
  return { ...counters };
}

/**
 * Zeroes the event counters; `bytesAllocated` (live bytes) is kept and becomes the new peak.
 * @example
 * ```ts
 * import { resetStats, stats } from 'kernelflow';
 * resetStats();
 * console.log(stats().dispatches, stats().peakBytes === stats().bytesAllocated); // 0 true
 * ```
 */
export function resetStats(): void {
  counters.dispatches = 0;
  counters.fusedPasses = 0;
  counters.fusedReductions = 0;
  counters.pipelinesCompiled = 0;
  counters.pipelineCacheHits = 0;
  counters.kernelsEvicted = 0;
  counters.framesSkipped = 0;
  counters.peakBytes = counters.bytesAllocated;
}

/** Internal: record events. */
export const record = {
  dispatch(n = 1): void {
    counters.dispatches += n;
  },
  /** A kernel run computed `reductions` reductions together. */
  fused(reductions: number): void {
    counters.fusedPasses += 1;
    counters.fusedReductions += reductions;
  },
  compiled(): void {
    counters.pipelinesCompiled += 1;
  },
  cacheHit(): void {
    counters.pipelineCacheHits += 1;
  },
  evicted(): void {
    counters.kernelsEvicted += 1;
  },
  alloc(bytes: number): void {
    counters.bytesAllocated += bytes;
    if (counters.bytesAllocated > counters.peakBytes) counters.peakBytes = counters.bytesAllocated;
  },
  free(bytes: number): void {
    counters.bytesAllocated -= bytes;
  },
  frameSkipped(n = 1): void {
    counters.framesSkipped += n;
  },
};
