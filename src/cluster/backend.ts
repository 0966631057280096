/**
 * The cluster backend: runs a kernel plan as shards on `kernelflow-worker` processes reached
 * through NATS, and merges the shards' results. See docs/scaling-out.md.
 *
 * - Discovery: the workers are NATS micro services named `kernelflow` (`$SRV.PING.kernelflow`);
 *   each answers on its own subject and on a shared queue-group subject.
 * - Split: blocks of kept rows when the kept side is big (exact: results are concatenated),
 *   blocks of the reduced axis when it is small (partial results merged in block order:
 *   src/cluster/merge.ts). One shard per live worker (`shardsPerWorker` more), none smaller than
 *   `minShardPairs` pairs.
 * - Data: every array by content id (SHA-1 of its bytes). Small arrays ride inside the first
 *   request a worker gets; large ones go once into the JetStream object store, from which each
 *   worker fetches them once. A worker keeps arrays by id, so an unchanged array is never sent
 *   again; a worker that lost one answers `missing` and gets it again.
 * - Faults: a worker acknowledges a shard at once and sends a heartbeat while working; a shard
 *   whose worker does not acknowledge within `ackTimeoutMs`, or falls silent for `stallTimeoutMs`,
 *   is run again on another worker (the late worker's reply is ignored: each attempt has its own
 *   reply subject, and each shard's result is taken once). With no worker left: BackendError.
 */
import type { NatsConnection, Msg, Subscription } from '@nats-io/transport-node';
import { BackendError } from '../errors.js';
import type { KernelRanges } from '../kernel/ranges.js';
import type { KernelPlan } from '../kernel/plan.js';
import { checkOptions } from '../options.js';
import { record } from '../stats.js';
import { chunkSize, load, natsConnection, natsModules, objectStore, serverList, svcm, type NatsModules } from './connection.js';
import { CLUSTER_OPTION_CHECKS, type ClusterOptions } from './options.js';
import { concatRows, mergeReduced, reducedJobs, type Outputs, type Partial } from './merge.js';
import {
  outputAt,
  blockOffsets,
  bytesOf,
  decodeFrame,
  encodeFrame,
  printFormula,
  PROTOCOL,
  SERVICE,
  workerSubject,
  type JobSpec,
  type ShardReply,
  type ShardRequest,
  type VarRef,
} from './wire.js';

/** A worker as discovered. */
interface WorkerInfo {
  readonly id: string;
  readonly name: string;
  readonly backend: string;
  readonly subject: string;
}

interface LiveWorker extends WorkerInfo {
  inflight: number;
  /** Content ids this worker is known to hold. */
  readonly known: Set<string>;
}

interface Input {
  readonly ref: Omit<VarRef, 'at'>;
  readonly data: Float32Array | Float64Array;
  readonly large: boolean;
}

interface Shard {
  readonly index: number;
  readonly jobs: readonly JobSpec[];
  readonly i0: number;
  readonly i1: number;
  readonly j0: number;
  readonly j1: number;
}

type Attempt =
  | { readonly kind: 'ok'; readonly outs: Outputs[] }
  | { readonly kind: 'missing'; readonly ids: readonly string[] }
  | { readonly kind: 'dead'; readonly why: string }
  | { readonly kind: 'error'; readonly message: string };

let callSeq = 0;

/** Splits [0, n) into `parts` nearly equal blocks. */
function blocks(n: number, parts: number): [number, number][] {
  const out: [number, number][] = [];
  for (let s = 0; s < parts; s++) out.push([Math.floor((s * n) / parts), Math.floor(((s + 1) * n) / parts)]);
  return out;
}

/** The cluster backend (see the file comment). */
export class ClusterBackend {
  readonly name = 'cluster' as const;
  readonly servers: string[];
  private readonly opts: Required<ClusterOptions>;
  private nc: Promise<NatsConnection> | undefined;
  private live: LiveWorker[] = [];
  private discoveredAt = -Infinity;
  private discovering: Promise<LiveWorker[]> | undefined;
  /** Content ids known to be in the object store (put by this client). */
  private readonly stored = new Set<string>();
  /** Names this client's shards (in worker logs and stored results) apart from other clients'. */
  private readonly token = Math.floor(Math.random() * 36 ** 6).toString(36);

  constructor(servers: string | readonly string[], opts: ClusterOptions = {}) {
    checkOptions('init: cluster', opts, CLUSTER_OPTION_CHECKS);
    this.servers = serverList(servers);
    this.opts = {
      split: opts.split ?? 'auto',
      minShardPairs: opts.minShardPairs ?? 1 << 20,
      shardsPerWorker: opts.shardsPerWorker ?? 1,
      ackTimeoutMs: opts.ackTimeoutMs ?? 3000,
      stallTimeoutMs: opts.stallTimeoutMs ?? 5000,
      inlineBytes: opts.inlineBytes ?? 256 * 1024,
      discoveryMs: opts.discoveryMs ?? 10_000,
    };
  }

  /** The NATS connection (opened on first use). */
  connection(): Promise<NatsConnection> {
    return (this.nc ??= natsConnection(this.servers).catch((e: unknown) => {
      this.nc = undefined;
      throw e;
    }));
  }

  /** The live workers, asking the servers when the list is older than `discoveryMs` (or `fresh`). */
  private async liveWorkers(fresh: boolean): Promise<LiveWorker[]> {
    if (!fresh && this.live.length > 0 && performance.now() - this.discoveredAt < this.opts.discoveryMs) return this.live;
    return (this.discovering ??= this.discover().finally(() => {
      this.discovering = undefined;
    }));
  }

  private async discover(): Promise<LiveWorker[]> {
    const nc = await this.connection();
    const mods = await natsModules();
    const found: LiveWorker[] = [];
    try {
      const it = await svcm(mods, nc).client({ strategy: 'stall', stall: 150, maxWait: 1500 }).ping(SERVICE);
      for await (const s of it) {
        const old = this.live.find((w) => w.id === s.id);
        found.push(old ?? { id: s.id, name: s.metadata?.name ?? s.id, backend: s.metadata?.backend ?? '?', subject: workerSubject(s.id), inflight: 0, known: new Set() });
      }
    } catch {
      // No responders: no worker.
    }
    found.sort((a, b) => a.id.localeCompare(b.id));
    this.live = found;
    this.discoveredAt = performance.now();
    return found;
  }

  /** Runs a plan on the cluster: `ins[v]` is variable v's data; M kept rows, N reduced terms. */
  async run(plan: KernelPlan, ins: readonly (Float32Array | Float64Array | undefined)[], M: number, N: number, ranges?: KernelRanges): Promise<(Float32Array | Float64Array | Int32Array)[]> {
    // Never silently dense: a block-sparse reduction would give other values.
    if (ranges !== undefined) throw new BackendError('the cluster backend does not run block-sparse reductions (ranges): use the cpu or webgpu backend for them');
    const nc = await this.connection();
    const mods = await natsModules();
    let workers = await this.liveWorkers(false);
    if (workers.length === 0) workers = await this.liveWorkers(true);
    if (workers.length === 0) {
      throw new BackendError(`no kernelflow worker answers on ${this.servers.join(',')} (start one: npx kernelflow-worker --servers ${this.servers[0]})`, { transient: true });
    }

    const inputs = await this.inputs(plan, ins, M, N);
    const shards = this.shardsFor(plan, M, N, workers.length);
    const large = inputs.filter((x) => x.large);
    if (large.length > 0) await this.putLarge(nc, large);
    const call = `${this.token}.${++callSeq}`;
    record.dispatch(shards.length);
    const results = await Promise.all(shards.map((s) => this.runShard(nc, mods, `${call}.${s.index}`, s, inputs, M, N)));
    if (shards.every((s) => s.j0 === 0 && s.j1 === N)) {
      return concatRows(plan, M, shards.map((s, k) => ({ i0: s.i0, outs: results[k]![0]! })));
    }
    const parts: Partial[] = shards.map((s, k) => ({ j0: s.j0, jobs: results[k]! }));
    return mergeReduced(plan, M, parts);
  }

  /** How a plan is cut: row blocks, or blocks of the reduced axis with the jobs that merge. */
  private shardsFor(plan: KernelPlan, M: number, N: number, workers: number): Shard[] {
    const job = (reduction: string, K: number, weight: boolean): JobSpec => ({
      reduction,
      K,
      f: printFormula(plan.f),
      g: weight && plan.g !== null ? printFormula(plan.g) : null,
      ...(plan.dtype === 'float64' ? { dtype: 'float64' as const } : {}),
    });
    const whole = [job(plan.reduction.name, plan.K, plan.g !== null)];
    const most = workers * this.opts.shardsPerWorker;
    let S = Math.max(1, Math.min(most, Math.ceil((M * N) / this.opts.minShardPairs)));
    const split = this.opts.split === 'auto' ? (M >= Math.min(N, 1024 * S) ? 'rows' : 'reduced') : this.opts.split;
    if (split === 'reduced') S = Math.min(S, Math.floor(N / Math.max(1, plan.K)));
    else S = Math.min(S, M);
    if (S <= 1) return [{ index: 0, jobs: whole, i0: 0, i1: M, j0: 0, j1: N }];
    if (split === 'rows') return blocks(M, S).map(([i0, i1], index) => ({ index, jobs: whole, i0, i1, j0: 0, j1: N }));
    const jobs = reducedJobs(plan).map((j) => job(j.reduction, j.K, j.weight));
    return blocks(N, S).map(([j0, j1], index) => ({ index, jobs, i0: 0, i1: M, j0, j1 }));
  }

  /** Content ids of the plan's inputs (hashed once per array object and length). */
  private async inputs(plan: KernelPlan, ins: readonly (Float32Array | Float64Array | undefined)[], M: number, N: number): Promise<Input[]> {
    const crypto = await load<typeof import('node:crypto')>('node:crypto');
    const out: Input[] = [];
    plan.vars.forEach((v, index) => {
      if (v === undefined) return;
      const data = ins[index];
      const rows = v.cat === 0 ? M : v.cat === 1 ? N : 1;
      if (data === undefined || data.length < rows * v.dim) throw new BackendError(`cluster: variable ${index} needs ${rows * v.dim} values, got ${data?.length ?? 0}`);
      const view = data.length === rows * v.dim ? data : data.subarray(0, rows * v.dim);
      const f64 = view instanceof Float64Array;
      const id = `${f64 ? 'f64' : 'f32'}-${view.length}-${crypto.createHash('sha1').update(bytesOf(view)).digest('hex')}`;
      out.push({ ref: { index, dim: v.dim, cat: v.cat, id, length: view.length, f64 }, data: view, large: view.byteLength > this.opts.inlineBytes });
    });
    return out;
  }

  /** Puts the large arrays this client has not stored yet into the object store. */
  private async putLarge(nc: NatsConnection, large: readonly Input[]): Promise<void> {
    const os = await objectStore(nc);
    const chunk = chunkSize(nc);
    await Promise.all(
      large.map(async (x) => {
        if (this.stored.has(x.ref.id)) return;
        const info = await os.info(x.ref.id).catch(() => null);
        if (info === null || info.size !== x.data.byteLength) {
          await os.putBlob({ name: x.ref.id, options: { max_chunk_size: chunk } }, bytesOf(x.data));
        }
        this.stored.add(x.ref.id);
      }),
    );
  }

  /** Runs one shard to completion, on another worker whenever one dies or stalls. */
  private async runShard(nc: NatsConnection, mods: NatsModules, shardId: string, s: Shard, inputs: readonly Input[], M: number, N: number): Promise<Outputs[]> {
    const tried = new Set<string>();
    const why: string[] = [];
    const force = new Set<string>();
    let missed = 0;
    for (;;) {
      let pool = this.live.filter((w) => !tried.has(w.id));
      if (pool.length === 0) pool = (await this.liveWorkers(true)).filter((w) => !tried.has(w.id));
      if (pool.length === 0) {
        throw new BackendError(
          `no kernelflow worker left for shard ${shardId} (rows ${s.i0}-${s.i1}, terms ${s.j0}-${s.j1})${why.length > 0 ? `: ${why.join('; ')}` : ''}`,
          { transient: true },
        );
      }
      // Pull-style balance: a shard goes to an idle worker (the least loaded from a rotation on
      // the shard index); when every worker is busy, it waits for one to finish, so a faster
      // worker takes more of the shards.
      const idle = pool.filter((c) => c.inflight === 0);
      if (idle.length === 0) {
        await this.released();
        continue;
      }
      const w = idle[s.index % idle.length]!;
      const req: ShardRequest = {
        v: PROTOCOL,
        shard: shardId,
        jobs: s.jobs,
        M,
        N,
        i0: s.i0,
        i1: s.i1,
        j0: s.j0,
        j1: s.j1,
        vars: [],
      };
      const inline: Uint8Array[] = [];
      const vars: VarRef[] = [];
      const offsets = blockOffsets(inputs.filter((x) => !x.large && (force.has(x.ref.id) || !w.known.has(x.ref.id))).map((x) => x.data.byteLength));
      for (const x of inputs) {
        if (x.large) vars.push({ ...x.ref, at: w.known.has(x.ref.id) && !force.has(x.ref.id) ? 'cached' : 'store' });
        else if (w.known.has(x.ref.id) && !force.has(x.ref.id)) vars.push({ ...x.ref, at: 'cached' });
        else {
          vars.push({ ...x.ref, at: { inline: offsets[inline.length]! } });
          inline.push(bytesOf(x.data));
        }
      }
      w.inflight++;
      let res: Attempt;
      try {
        res = await this.attempt(nc, mods, w, encodeFrame({ ...req, vars }, inline));
      } finally {
        w.inflight--;
        this.release();
      }
      if (res.kind === 'ok') {
        for (const x of inputs) w.known.add(x.ref.id);
        this.check(res.outs, s);
        return res.outs;
      }
      if (res.kind === 'error' && !res.message.startsWith('BACKEND:')) throw new BackendError(`worker ${w.name} failed on shard ${shardId}: ${res.message}`);
      if (res.kind === 'missing') {
        if (++missed > 4) throw new BackendError(`worker ${w.name} keeps missing arrays ${res.ids.join(', ')}`);
        for (const id of res.ids) force.add(id);
        for (const id of res.ids) w.known.delete(id);
        const lost = inputs.filter((x) => x.large && res.ids.includes(x.ref.id));
        for (const x of lost) this.stored.delete(x.ref.id);
        if (lost.length > 0) await this.putLarge(nc, lost);
        continue;
      }
      // Dead, stalled or without a working backend: never ask it again in this call, and drop it from the live list.
      tried.add(w.id);
      why.push(`${w.name}: ${res.kind === 'error' ? res.message : res.why}`);
      this.live = this.live.filter((x) => x.id !== w.id);
      this.release();
    }
  }

  private waiting: (() => void)[] = [];

  /** Resolves when a shard attempt ends (a worker may be idle again) or the worker list changes. */
  private released(): Promise<void> {
    return new Promise((resolve) => this.waiting.push(resolve));
  }

  private release(): void {
    const w = this.waiting;
    this.waiting = [];
    for (const f of w) f();
  }

  /** Checks that every output of a shard has the length its block needs. */
  private check(outs: readonly Outputs[], s: Shard): void {
    for (const o of outs) for (const a of o) if (a.length % Math.max(1, s.i1 - s.i0) !== 0) throw new BackendError(`a worker returned ${a.length} values for ${s.i1 - s.i0} rows`);
    // A worker that does not know float64 plans (an older one) answers in float32: never taken silently.
    if (s.jobs[0]?.dtype === 'float64' && outs.some((o) => o.some((a) => a instanceof Float32Array))) {
      throw new BackendError('a worker answered a float64 reduction in float32 (an older kernelflow-worker?): update the workers, or run float64 reductions on the CPU backend');
    }
  }

  /** One request to one worker; resolves with its reply, or 'dead' after a timeout or silence. */
  private attempt(nc: NatsConnection, mods: NatsModules, w: LiveWorker, frame: Uint8Array): Promise<Attempt> {
    return new Promise<Attempt>((resolve) => {
      let sub: Subscription | undefined;
      let timer: ReturnType<typeof setTimeout> | undefined;
      let done = false;
      const finish = (a: Attempt | Promise<Attempt>): void => {
        if (done) return;
        done = true;
        if (timer !== undefined) clearTimeout(timer);
        sub?.unsubscribe();
        resolve(a);
      };
      const arm = (ms: number, why: string): void => {
        if (timer !== undefined) clearTimeout(timer);
        timer = setTimeout(() => finish({ kind: 'dead', why }), ms);
      };
      const onMsg = (m: Msg): void => {
        if (m.headers?.hasError === true || m.data.byteLength === 0) {
          finish({ kind: 'dead', why: m.headers?.code === 503 ? 'no responder' : `status ${m.headers?.code ?? '?'}` });
          return;
        }
        let h: ShardReply;
        let payload: Uint8Array;
        try {
          ({ header: h, payload } = decodeFrame<ShardReply>(m.data));
        } catch (e) {
          finish({ kind: 'error', message: `bad reply: ${(e as Error).message}` });
          return;
        }
        if (h.status === 'ack' || h.status === 'beat') arm(this.opts.stallTimeoutMs, `silent for ${this.opts.stallTimeoutMs} ms while working`);
        else if (h.status === 'missing') finish({ kind: 'missing', ids: h.ids });
        else if (h.status === 'error') finish({ kind: 'error', message: `${h.code}: ${h.message}` });
        else {
          if (timer !== undefined) clearTimeout(timer);
          timer = undefined;
          finish(this.outputs(nc, h, payload));
        }
      };
      sub = nc.subscribe(mods.transport.createInbox(), {
        callback: (err, m) => {
          if (err !== null) finish({ kind: 'dead', why: err.message });
          else onMsg(m);
        },
      });
      arm(this.opts.ackTimeoutMs, `no acknowledgement within ${this.opts.ackTimeoutMs} ms`);
      nc.publish(w.subject, frame, { reply: sub.getSubject() });
    });
  }

  /** The outputs of an `ok` reply (fetched from the object store when they did not fit a message). */
  private async outputs(nc: NatsConnection, h: Extract<ShardReply, { status: 'ok' }>, payload: Uint8Array): Promise<Attempt> {
    let bytes = payload;
    if (h.stored !== undefined) {
      const os = await objectStore(nc);
      const blob = await os.getBlob(h.stored);
      void os.delete(h.stored).catch(() => undefined);
      if (blob === null) return { kind: 'dead', why: `result ${h.stored} missing from the object store` };
      bytes = blob;
    }
    return { kind: 'ok', outs: h.outputs.map((job) => job.map((o) => outputAt(bytes, o))) };
  }

  /** Closes nothing shared: connections are closed by `closeNatsConnections`. Forgets workers. */
  reset(): void {
    this.live = [];
    this.discoveredAt = -Infinity;
    this.nc = undefined;
  }
}

