/** Counters since the last `resetStats()` (API.md). Backends bump them; users read `stats()`. */
export interface Stats {
  dispatches: number;
  pipelinesCompiled: number;
  pipelineCacheHits: number;
  bytesAllocated: number;
  peakBytes: number;
  /** Source frames replaced before any recompute took them (back-pressure: the latest is computed). */
  framesSkipped: number;
}

const counters: Stats = { dispatches: 0, pipelinesCompiled: 0, pipelineCacheHits: 0, bytesAllocated: 0, peakBytes: 0, framesSkipped: 0 };

/**
 * A snapshot of the counters.
 * @example
 * ```ts
 * import { stats, resetStats } from 'kernelflow';
 * resetStats(); // ... run a reduction ...
 * console.log(stats().dispatches);
 * ```
 */
export function stats(): Stats {
  return { ...counters };
}

/** Zeroes the event counters; `bytesAllocated` (live bytes) is kept and becomes the new peak. */
export function resetStats(): void {
  counters.dispatches = 0;
  counters.pipelinesCompiled = 0;
  counters.pipelineCacheHits = 0;
  counters.framesSkipped = 0;
  counters.peakBytes = counters.bytesAllocated;
}

/** Internal: record events. */
export const record = {
  dispatch(n = 1): void {
    counters.dispatches += n;
  },
  compiled(): void {
    counters.pipelinesCompiled += 1;
  },
  cacheHit(): void {
    counters.pipelineCacheHits += 1;
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
