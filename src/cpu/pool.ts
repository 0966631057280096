import type { Worker } from 'node:worker_threads';
import { BackendError } from '../errors.js';

/**
 * Loads a Node built-in by a computed name, so that bundlers targeting the browser do not try to
 * resolve it: the pool only exists in Node (the CPU backend runs on the calling thread elsewhere).
 */
async function builtin<T>(name: string): Promise<T> {
  return (await import(name)) as T;
}

/** A worker compiles each kernel source once (by key), runs row ranges over shared memory, and drops a kernel on `forget` (no reply). */
const WORKER_SOURCE = `
const { parentPort } = require('node:worker_threads');
const kernels = new Map();
parentPort.on('message', (m) => {
  if (m.forget !== undefined) {
    kernels.delete(m.forget);
    return;
  }
  try {
    if (m.source !== undefined) kernels.set(m.key, new Function(m.source)());
    kernels.get(m.key)(m.N, m.i0, m.i1, m.ins, m.outs, m.batchOffsets, m.batchRows);
    parentPort.postMessage({ ok: true });
  } catch (e) {
    parentPort.postMessage({ ok: false, message: String(e && e.stack || e) });
  }
});
`;

interface Job {
  readonly key: string;
  readonly source: string;
  readonly N: number;
  readonly i0: number;
  readonly i1: number;
  readonly ins: readonly (Float32Array | Float64Array | Int32Array | undefined)[];
  readonly outs: readonly (Float32Array | Float64Array | Int32Array)[];
  /** Batched kernels: the per-batch row offsets and the kept rows per batch (rows i0 .. i1 count over all batches). */
  readonly batchOffsets?: Int32Array;
  readonly batchRows?: number;
}

/** One `run` call: its chunks are dropped from the queue once it has failed. */
interface Call {
  failed: boolean;
}

interface Task {
  readonly job: Job;
  readonly call: Call;
  done(error?: Error): void;
}

interface Slot {
  readonly worker: Worker;
  readonly known: Set<string>;
  /** The chunk this worker is computing (undefined: idle). */
  task: Task | undefined;
  /** An uncaught error the worker reported before it exited. */
  crash?: unknown;
}

/** Pools whose workers a test may kill (see `killBusyWorkerForTesting`). */
const live = new Set<WorkerPool>();

/**
 * A fixed set of worker threads pulling row chunks from one queue; idle workers are unref'd so they
 * never keep the process alive. A worker that dies (crashes, is terminated) fails the call it was
 * computing with a transient BackendError and is replaced; `close()` fails every pending call.
 */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private closed = false;
  private constructor(
    private readonly WorkerClass: typeof Worker,
    readonly size: number,
  ) {
    live.add(this);
  }

  /** A pool of `size` workers (default: one per available core). Node only. */
  static async create(size?: number): Promise<WorkerPool> {
    const [wt, os] = await Promise.all([
      builtin<typeof import('node:worker_threads')>('node:worker_threads'),
      builtin<typeof import('node:os')>('node:os'),
    ]);
    return new WorkerPool(wt.Worker, size ?? Math.max(1, os.availableParallelism()));
  }

  /** Runs row chunks of one kernel over all workers; resolves when every chunk is done. */
  run(base: Omit<Job, 'i0' | 'i1'>, M: number, chunkRows: number): Promise<void> {
    if (this.closed) return Promise.reject(shutDown());
    this.grow();
    return new Promise((resolve, reject) => {
      let pending = 0;
      const call: Call = { failed: false };
      for (let i0 = 0; i0 < M; i0 += chunkRows) {
        pending++;
        this.queue.push({
          job: { ...base, i0, i1: Math.min(M, i0 + chunkRows) },
          call,
          done: (error) => {
            if (call.failed) return;
            if (error !== undefined) {
              call.failed = true;
              reject(error);
            } else if (--pending === 0) resolve();
          },
        });
      }
      if (pending === 0) resolve();
      for (const slot of this.slots) if (slot.task === undefined) this.feed(slot);
    });
  }

  private feed(slot: Slot): void {
    let task = this.queue.shift();
    // Chunks of a call that already failed are not worth computing.
    while (task?.call.failed === true) task = this.queue.shift();
    if (task === undefined) {
      slot.task = undefined;
      slot.worker.unref();
      return;
    }
    const { job } = task;
    const first = !slot.known.has(job.key);
    slot.known.add(job.key);
    slot.task = task;
    slot.worker.ref();
    slot.worker.postMessage({ ...job, source: first ? job.source : undefined });
  }

  private grow(): void {
    while (this.slots.length < this.size) this.slots.push(this.spawn());
  }

  private spawn(): Slot {
    const worker = new this.WorkerClass(WORKER_SOURCE, { eval: true });
    worker.unref();
    const slot: Slot = { worker, known: new Set(), task: undefined };
    worker.on('message', (msg: { ok: boolean; message?: string }) => {
      const task = slot.task;
      slot.task = undefined;
      task?.done(msg.ok ? undefined : new BackendError(`CPU backend: the kernel failed in a worker: ${msg.message ?? ''}`));
      if (this.slots.includes(slot)) this.feed(slot);
    });
    // Without a listener an uncaught error in the worker would be thrown on the main thread; 'exit' follows it.
    worker.on('error', (e: unknown) => {
      slot.crash = e;
    });
    worker.on('exit', (code: number) => this.died(slot, code));
    return slot;
  }

  /** A worker exited: the chunk it held fails its call, and a new worker takes the slot. */
  private died(slot: Slot, code: number): void {
    const at = this.slots.indexOf(slot);
    if (at < 0) return; // closed, or already replaced
    const task = slot.task;
    slot.task = undefined;
    const why = slot.crash === undefined ? `exit code ${code}` : String((slot.crash as Error)?.message ?? slot.crash);
    const replacement = this.spawn();
    this.slots[at] = replacement;
    task?.done(new BackendError(`CPU backend: a worker thread died during the computation (${why}); it was replaced, so the call can be retried`, { transient: true }));
    this.feed(replacement);
  }

  /**
   * Drops a kernel the backend evicted from its cache. Messages to a worker are ordered, so a job
   * already sent still finds it; the next job of that key sends the source again.
   */
  forget(key: string): void {
    for (const slot of this.slots) {
      if (slot.known.delete(key)) slot.worker.postMessage({ forget: key });
    }
  }

  /** Terminates all workers; every call still pending fails with a transient BackendError. */
  async close(): Promise<void> {
    this.closed = true;
    live.delete(this);
    const slots = this.slots.splice(0);
    const pending = [...slots.flatMap((s) => (s.task === undefined ? [] : [s.task])), ...this.queue.splice(0)];
    for (const t of pending) t.done(shutDown());
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }

  /** @internal For fault tests: the thread ids of the pool's workers, in slot order. */
  threadIds(): number[] {
    return this.slots.map((s) => s.worker.threadId);
  }

  /** @internal For fault tests: how many workers are computing a chunk. */
  busy(): number {
    return this.slots.filter((s) => s.task !== undefined).length;
  }

  /** @internal For fault tests: terminates a worker that is computing a chunk; false when none is. */
  killBusyWorker(): boolean {
    const slot = this.slots.find((s) => s.task !== undefined);
    if (slot === undefined) return false;
    void slot.worker.terminate();
    return true;
  }
}

const shutDown = (): BackendError =>
  new BackendError('CPU backend: shutdown() stopped the worker threads during the computation; a new call starts them again', { transient: true });

/** @internal For fault tests: kills a busy worker of any live pool (as a crash would); false when none is busy. */
export function killBusyWorkerForTesting(): boolean {
  for (const p of live) if (p.killBusyWorker()) return true;
  return false;
}

/** @internal For fault tests: how many workers of all live pools are computing a chunk. */
export function busyWorkersForTesting(): number {
  let n = 0;
  for (const p of live) n += p.busy();
  return n;
}
