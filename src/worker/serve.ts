/**
 * A kernelflow worker: a NATS micro service (`kernelflow`) that runs shards of reductions on its
 * local backend. It answers on its own subject (`kernelflow.shard.<id>`, where clients spread
 * their shards) and on the shared `kernelflow.shard` in the `kernelflow` queue group (load
 * balanced by the server). The protocol is in src/cluster/wire.ts.
 *
 * Per shard: acknowledge at once, heartbeat while working, resolve the arrays (cache by content
 * id, then the request itself, then the JetStream object store; `missing` if none has it), run
 * each job's plan (formula strings parsed back, `makePlan` over axis 1) on the local backend over
 * the shard's block of rows or of the reduced axis, and reply with the outputs (through the object
 * store when they do not fit a message). Shards run one at a time, in arrival order.
 */
import type { NatsConnection } from '@nats-io/transport-node';

/** What the worker reads of a request (the services package types its messages with its own core typings). */
interface Request {
  readonly data: Uint8Array;
  readonly reply?: string;
}
import { parseFormula } from '../api/parse.js';
import { chunkSize, natsConnection, natsModules, objectStore, svcm } from '../cluster/connection.js';
import {
  arrayAt,
  blockOffsets,
  float64At,
  bytesOf,
  decodeFrame,
  encodeFrame,
  PROTOCOL,
  QUEUE,
  SERVICE,
  SHARD_SUBJECT,
  workerSubject,
  type JobSpec,
  type OutputRef,
  type ShardReply,
  type ShardRequest,
} from '../cluster/wire.js';
import { KernelflowError } from '../errors.js';
import { makePlan, type KernelPlan } from '../kernel/plan.js';
import { backendName, getBackend, init, shutdown, type BackendChoice } from '../scheduler/backends.js';

/** Options of a worker (the `kernelflow-worker` flags). */
export interface WorkerOptions {
  readonly servers: string;
  readonly backend?: BackendChoice;
  readonly name?: string;
  /** Bytes of arrays kept by content id (least recently used evicted first); default 2 GiB. */
  readonly cacheBytes?: number;
  /** Heartbeat period while working on a shard (default 500 ms). */
  readonly heartbeatMs?: number;
  /** Log each shard's start and end on stderr. */
  readonly verbose?: boolean;
}

/** A running worker. */
export interface Worker {
  readonly id: string;
  readonly name: string;
  readonly backend: string;
  /** Stops serving, drains the connection and releases the backend. */
  stop(): Promise<void>;
}

/** Arrays by content id, least recently used first out. */
class ArrayCache {
  private readonly map = new Map<string, Float32Array | Float64Array>();
  private bytes = 0;
  constructor(private readonly budget: number) {}
  get(id: string): Float32Array | Float64Array | undefined {
    const a = this.map.get(id);
    if (a !== undefined) {
      this.map.delete(id);
      this.map.set(id, a);
    }
    return a;
  }
  set(id: string, a: Float32Array | Float64Array): void {
    if (this.map.has(id)) return;
    this.map.set(id, a);
    this.bytes += a.byteLength;
    for (const [k, v] of this.map) {
      if (this.bytes <= this.budget || k === id) break;
      this.map.delete(k);
      this.bytes -= v.byteLength;
    }
  }
}

/** Starts a worker; resolves once it is registered and serving. */
export async function startWorker(opts: WorkerOptions): Promise<Worker> {
  await init({ backend: opts.backend ?? 'auto' });
  const backend = backendName();
  const name = opts.name ?? `worker-${process.pid}`;
  const heartbeatMs = opts.heartbeatMs ?? 500;
  const cache = new ArrayCache(opts.cacheBytes ?? 2 * 1024 ** 3);
  const plans = new Map<string, KernelPlan>();
  const nc = await natsConnection(opts.servers, `kernelflow-worker ${name}`);
  const mods = await natsModules();
  const log = (line: string): void => {
    if (opts.verbose === true) process.stderr.write(`[${name}] ${line}\n`);
  };

  const svc = await svcm(mods, nc).add({
    name: SERVICE,
    version: '0.1.0',
    description: 'kernelflow worker: shards of kernel reductions',
    queue: QUEUE,
    metadata: { name, backend, pid: String(process.pid) },
  });
  const id = svc.info().id;

  const planOf = (j: JobSpec): KernelPlan => {
    const key = `${j.reduction}|${j.K}|${j.f}|${j.g ?? ''}|${j.dtype ?? 'float32'}`;
    let p = plans.get(key);
    if (p === undefined) {
      const f = parseFormula(j.f, []);
      const g = j.g === null ? null : parseFormula(j.g, []);
      p = makePlan(f, { reduction: j.reduction, axis: 1, K: j.K, weight: g }, j.dtype ?? 'float32');
      plans.set(key, p);
    }
    return p;
  };

  // One shard computes at a time; the others wait (heartbeating) in arrival order.
  let queue: Promise<void> = Promise.resolve();
  const serial = <T>(fn: () => Promise<T>): Promise<T> => {
    const run = queue.then(fn);
    queue = run.then(
      () => undefined,
      () => undefined,
    );
    return run;
  };

  const handle = async (m: Request): Promise<void> => {
    const reply = m.reply;
    if (reply === undefined) return;
    const send = (h: ShardReply, blocks: Uint8Array[] = []): void => {
      if (!nc.isClosed()) nc.publish(reply, encodeFrame(h, blocks));
    };
    send({ status: 'ack', worker: name });
    const beat = setInterval(() => send({ status: 'beat', worker: name }), heartbeatMs);
    let shard = '?';
    try {
      const { header: req, payload } = decodeFrame<ShardRequest>(m.data);
      shard = req.shard;
      if (req.v !== PROTOCOL) throw new KernelflowError('PROTOCOL', `protocol ${req.v} (this worker speaks ${PROTOCOL})`);
      const data: (Float32Array | Float64Array)[] = [];
      const missing: string[] = [];
      const got = { cached: 0, inline: 0, store: 0 };
      // Cached arrays first, so that arrays arriving with this request cannot evict them before use.
      for (const v of req.vars) {
        const a = cache.get(v.id);
        if (a !== undefined) {
          got.cached++;
          data[v.index] = a;
        }
      }
      for (const v of req.vars) {
        if (data[v.index] !== undefined) continue;
        let a: Float32Array | Float64Array | undefined;
        const read = (bytes: Uint8Array, at: number): Float32Array | Float64Array =>
          v.f64 ? float64At(bytes, at, v.length) : (arrayAt(bytes, at, v.length, false) as Float32Array);
        if (typeof v.at === 'object') {
          got.inline++;
          a = read(payload, v.at.inline);
        } else if (v.at === 'store') {
          got.store++;
          const blob = await (await objectStore(nc)).getBlob(v.id);
          if (blob !== null && blob.byteLength === v.length * (v.f64 ? 8 : 4)) a = read(blob, 0);
        }
        if (a === undefined) missing.push(v.id);
        else {
          cache.set(v.id, a);
          data[v.index] = a;
        }
      }
      if (missing.length > 0) {
        log(`shard ${shard} missing ${missing.length} array(s)`);
        send({ status: 'missing', worker: name, ids: missing });
        return;
      }
      const M = req.i1 - req.i0;
      const N = req.j1 - req.j0;
      const ins: (Float32Array | Float64Array | undefined)[] = [];
      for (const v of req.vars) {
        const a = data[v.index]!;
        ins[v.index] = v.cat === 0 ? a.subarray(req.i0 * v.dim, req.i1 * v.dim) : v.cat === 1 ? a.subarray(req.j0 * v.dim, req.j1 * v.dim) : a;
      }
      const { outs, ms } = await serial(async () => {
        log(`shard ${shard} start rows ${req.i0}-${req.i1} terms ${req.j0}-${req.j1} jobs ${req.jobs.map((j) => j.reduction).join(',')} arrays cached ${got.cached} inline ${got.inline} store ${got.store}`);
        const t0 = performance.now();
        const outs: (Float32Array | Float64Array | Int32Array)[][] = [];
        for (const j of req.jobs) outs.push(await getBackend().run(planOf(j), ins, M, N));
        return { outs, ms: performance.now() - t0 };
      });
      const flat = outs.flat();
      const offsets = blockOffsets(flat.map((a) => a.byteLength));
      let k = 0;
      const outputs: OutputRef[][] = outs.map((job) =>
        job.map((a) => ({ int: a instanceof Int32Array, ...(a instanceof Float64Array ? { f64: true } : {}), length: a.length, offset: offsets[k++]! })),
      );
      const blocks = flat.map(bytesOf);
      const size = blocks.reduce((s, b) => s + b.byteLength, 0);
      const max = (nc.info?.max_payload ?? 1 << 20) - 64 * 1024;
      log(`shard ${shard} done in ${ms.toFixed(0)} ms`);
      if (size <= max) {
        send({ status: 'ok', worker: name, outputs, ms }, blocks);
      } else {
        const stored = `out.${id}.${shard}.${Date.now().toString(36)}`;
        const body = encodeFrame({}, blocks);
        const { payload: joined } = decodeFrame<unknown>(body);
        await (await objectStore(nc)).putBlob({ name: stored, options: { max_chunk_size: chunkSize(nc) } }, joined);
        send({ status: 'ok', worker: name, outputs, ms, stored });
      }
    } catch (e) {
      const code = e instanceof KernelflowError ? e.code : 'INTERNAL';
      log(`shard ${shard} failed: ${(e as Error).message}`);
      send({ status: 'error', worker: name, code, message: (e as Error).message });
    } finally {
      clearInterval(beat);
    }
  };

  const handler = (err: Error | null, m: Request): void => {
    if (err === null) void handle(m);
  };
  svc.addEndpoint('shard', { subject: SHARD_SUBJECT, handler });
  svc.addEndpoint('direct', { subject: workerSubject(id), handler });
  await nc.flush();

  let stopping: Promise<void> | undefined;
  return {
    id,
    name,
    backend,
    stop: () =>
      (stopping ??= (async () => {
        await svc.stop().catch(() => null);
        await queue;
        await closeConnection(nc);
        await shutdown();
      })()),
  };
}

async function closeConnection(nc: NatsConnection): Promise<void> {
  if (!nc.isClosed()) await nc.drain().catch(() => nc.close());
}
