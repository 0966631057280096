import type { KernelPlan } from '../kernel/plan.js';
import { record } from '../stats.js';
import { compileKernelJs, renderKernelJs, type CpuKernel } from './codegen.js';
import { WorkerPool } from './pool.js';

/** Output arrays of one reduction, one per reduction output (values float32, indices int32). */
export type KernelOutputs = (Float32Array | Int32Array)[];

/** Worker threads exist in Node only: in a browser every kernel runs on the calling thread. */
const isNode = typeof process !== 'undefined' && process.versions?.node !== undefined;

/** Below this many (i, j) pairs a kernel runs on the calling thread: a worker round trip costs more. */
const PARALLEL_PAIRS = 1 << 18;

interface Compiled {
  readonly source: string;
  readonly fn: CpuKernel;
}

/** CPU backend: generated JavaScript per plan key, run on the main thread or over a worker pool. */
export class CpuBackend {
  readonly name = 'cpu' as const;
  private readonly cache = new Map<string, Compiled>();
  private pool: Promise<WorkerPool> | undefined;

  constructor(private readonly threads?: number) {}

  /** Source of the kernel for a plan (for inspection and tests). */
  source(plan: KernelPlan): string {
    return this.compiled(plan).source;
  }

  /** Runs a plan: `ins[v]` is the data of variable v; M kept rows, N reduced terms. */
  async run(plan: KernelPlan, ins: readonly (Float32Array | undefined)[], M: number, N: number): Promise<KernelOutputs> {
    const k = this.compiled(plan);
    record.dispatch();
    const workers = this.threads ?? undefined;
    const parallel = isNode && M * N >= PARALLEL_PAIRS && M >= 2 && workers !== 1;
    if (!parallel) {
      const outs = plan.outputs.map((o) => (o.int ? new Int32Array(M * o.width) : new Float32Array(M * o.width)));
      k.fn(N, 0, M, ins, outs);
      return outs;
    }
    const pool = await (this.pool ??= WorkerPool.create(workers));
    let bytes = 0;
    const share = (a: Float32Array | undefined): Float32Array | undefined => {
      if (a === undefined) return undefined;
      const s = new Float32Array(new SharedArrayBuffer(a.byteLength));
      s.set(a);
      bytes += a.byteLength;
      return s;
    };
    const sins = ins.map(share);
    const souts = plan.outputs.map((o) => {
      bytes += M * o.width * 4;
      const buf = new SharedArrayBuffer(M * o.width * 4);
      return o.int ? new Int32Array(buf) : new Float32Array(buf);
    });
    record.alloc(bytes);
    try {
      // Several chunks per worker so an uneven split still keeps every core busy.
      const chunk = Math.max(1, Math.ceil(M / (pool.size * 8)));
      await pool.run({ key: plan.key, source: k.source, N, ins: sins, outs: souts }, M, chunk);
      return souts.map((s) => (s instanceof Int32Array ? Int32Array.from(s) : Float32Array.from(s)));
    } finally {
      record.free(bytes);
    }
  }

  private compiled(plan: KernelPlan): Compiled {
    const hit = this.cache.get(plan.key);
    if (hit !== undefined) {
      record.cacheHit();
      return hit;
    }
    const source = renderKernelJs(plan);
    const c = { source, fn: compileKernelJs(source) };
    this.cache.set(plan.key, c);
    record.compiled();
    return c;
  }

  /** Stops the worker threads. */
  async dispose(): Promise<void> {
    const pool = this.pool;
    this.pool = undefined;
    await (await pool)?.close();
  }
}
