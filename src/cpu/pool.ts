import type { Worker } from 'node:worker_threads';

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
    kernels.get(m.key)(m.N, m.i0, m.i1, m.ins, m.outs);
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
  readonly ins: readonly (Float32Array | Float64Array | undefined)[];
  readonly outs: readonly (Float32Array | Int32Array)[];
}

interface Task {
  readonly job: Job;
  done(error?: Error): void;
}

interface Slot {
  readonly worker: Worker;
  readonly known: Set<string>;
  busy: boolean;
}

/** A fixed set of worker threads pulling row chunks from one queue; idle workers are unref'd so they never keep the process alive. */
export class WorkerPool {
  private readonly slots: Slot[] = [];
  private readonly queue: Task[] = [];
  private constructor(
    private readonly WorkerClass: typeof Worker,
    readonly size: number,
  ) {}

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
    this.grow();
    return new Promise((resolve, reject) => {
      let pending = 0;
      let failed = false;
      for (let i0 = 0; i0 < M; i0 += chunkRows) {
        pending++;
        this.queue.push({
          job: { ...base, i0, i1: Math.min(M, i0 + chunkRows) },
          done: (error) => {
            if (failed) return;
            if (error !== undefined) {
              failed = true;
              reject(error);
            } else if (--pending === 0) resolve();
          },
        });
      }
      if (pending === 0) resolve();
      for (const slot of this.slots) if (!slot.busy) this.feed(slot);
    });
  }

  private feed(slot: Slot): void {
    const task = this.queue.shift();
    if (task === undefined) {
      slot.busy = false;
      slot.worker.unref();
      return;
    }
    const { job } = task;
    const first = !slot.known.has(job.key);
    slot.known.add(job.key);
    slot.busy = true;
    slot.worker.ref();
    slot.worker.once('message', (msg: { ok: boolean; message?: string }) => {
      task.done(msg.ok ? undefined : new Error(`CPU kernel failed in a worker: ${msg.message ?? ''}`));
      this.feed(slot);
    });
    slot.worker.postMessage({ ...job, source: first ? job.source : undefined });
  }

  private grow(): void {
    while (this.slots.length < this.size) {
      const worker = new this.WorkerClass(WORKER_SOURCE, { eval: true });
      worker.unref();
      this.slots.push({ worker, known: new Set(), busy: false });
    }
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

  /** Terminates all workers. */
  async close(): Promise<void> {
    const slots = this.slots.splice(0);
    await Promise.all(slots.map((s) => s.worker.terminate()));
  }
}
