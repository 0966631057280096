import { KernelflowError } from '../errors.js';
import { record } from '../stats.js';

/** Compiled kernels (CPU functions, WebGPU pipelines) each backend keeps by default. */
export const DEFAULT_KERNEL_CACHE_SIZE = 256;

let capacity = DEFAULT_KERNEL_CACHE_SIZE;
// Every live cache, so that a new size applies at once (a Set of WeakRefs: a dropped backend is collected).
const caches = new Set<WeakRef<LruCache<unknown>>>();

/**
 * Sets how many compiled kernels each backend keeps (`init({ kernelCacheSize })`); the least
 * recently used are evicted beyond it, and counted in `stats().kernelsEvicted`.
 */
export function setKernelCacheSize(size: number): void {
  if (!Number.isInteger(size) || size < 1) throw new KernelflowError('ARGUMENT', `kernelCacheSize must be an integer >= 1, got ${size}`);
  capacity = size;
  for (const ref of caches) {
    const c = ref.deref();
    if (c === undefined) caches.delete(ref);
    else c.trim();
  }
}

/** The current size of the kernel caches. */
export function kernelCacheSize(): number {
  return capacity;
}

/**
 * A least-recently-used map of compiled kernels by plan key, bounded by `kernelCacheSize()`.
 * `onEvict` lets a backend release what the entry holds elsewhere (a worker's copy of a kernel).
 */
export class LruCache<V> {
  // A Map iterates in insertion order: re-inserting on every hit keeps the least recent first.
  private readonly entries = new Map<string, V>();

  constructor(private readonly onEvict: (key: string, value: V) => void = () => undefined) {
    for (const ref of caches) if (ref.deref() === undefined) caches.delete(ref);
    caches.add(new WeakRef(this as LruCache<unknown>));
  }

  get size(): number {
    return this.entries.size;
  }

  get(key: string): V | undefined {
    const v = this.entries.get(key);
    if (v !== undefined) {
      this.entries.delete(key);
      this.entries.set(key, v);
    }
    return v;
  }

  set(key: string, value: V): void {
    this.entries.delete(key);
    this.entries.set(key, value);
    this.trim();
  }

  /** Removes an entry without counting an eviction (a failed compile). */
  delete(key: string): void {
    this.entries.delete(key);
  }

  clear(): void {
    this.entries.clear();
  }

  /** Evicts the least recently used entries beyond the capacity. */
  trim(): void {
    while (this.entries.size > capacity) {
      const [key, value] = this.entries.entries().next().value as [string, V];
      this.entries.delete(key);
      record.evicted();
      this.onEvict(key, value);
    }
  }
}
