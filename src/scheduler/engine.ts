/**
 * The reactive scheduler: keeps the graph state (src/graph/state.ts), caches node values, and
 * recomputes what is observed when sources change.
 *
 * - A change (`setSource`) stamps the source and everything downstream with a new version (the
 *   dirty set is "version differs from the version of the cached value") and schedules a flush.
 * - A flush runs once per microtask, or once at the end of a `batch()`. It takes the observed (or
 *   read) nodes whose value is stale, the upstream closure of those that are stale too, and computes
 *   that closure in topological order from one snapshot of its inputs: every value it emits is
 *   consistent (a diamond never mixes an old and a new input), and every node computes once.
 *   Nothing that nobody observes or reads computes.
 * - One flush at a time per node: changes arriving while a flush is busy with a node wait for the
 *   next flush, which takes the latest values. Frames a source received and no flush ever took
 *   are skipped (counted in `stats().framesSkipped`); the latest frame is always computed. A flush
 *   in flight runs to its end (so that a continuous stream still makes progress), but each
 *   computation gets an AbortSignal that fires when its inputs change: one that stops early (an
 *   iterative solve) is dropped by version, with what reads it, and recomputed from the latest
 *   inputs. Work queued for a node nobody wants any more (unsubscribed, disposed) is dropped, and a
 *   result older than the one a node already holds is never stored or emitted.
 * - Errors are values: a node that fails holds the error for its version; its observers get it on
 *   their error channel, its dependents fail with it, everything else keeps working, and the next
 *   change recomputes it. A transient backend fault (BackendError.transient: a lost device, a dead
 *   worker) is retried once by the next read or subscription instead.
 * - Sibling reductions of a flush (same depth, same axis of the same index space) run as one
 *   kernel (src/scheduler/fusion.ts); each still settles as it would alone, and the graph's records
 *   say which nodes were computed together (`fused`, shown by printGraph).
 *
 * Live node objects are referenced weakly (a node nobody holds, observes or reads is collected and
 * its record removed), so the state never keeps user handles alive.
 */
import { addNode, describeNode, downstream, reachesAny, emptyGraph, hasDependents, nodeIds, removeNodes, topoOrder, touch, upstream } from '../graph/state.js';
import type { GraphState, NewNode, NodeRecord } from '../graph/state.js';
import { isTransient } from '../errors.js';
import { record } from '../stats.js';
import { flushBatches, withFusedRecords, type FusionBatch } from './fusion.js';
import { endSlot, freeSlotBytes, newSlot, type EngineOptions, type Result, type Sink, type Slot, type Task } from './slots.js';

export type { EngineOptions, Sink, Task } from './slots.js';

/** Marks work dropped because its node was disposed or is no longer wanted. */
const DROPPED: unique symbol = Symbol('dropped');

export class Engine<T> {
  private graph: GraphState = emptyGraph;
  private readonly slots = new Map<number, Slot<T>>();
  private readonly refs = new Map<number, WeakRef<Task<T>>>();
  /** Nodes someone observes or waits to read: held strongly, they are the flush's targets. */
  private readonly held = new Map<number, Task<T>>();
  /** Stale nodes a flush in flight is computing. */
  private readonly busy = new Set<number>();
  /** Abort controllers of the computations in flight, by node. */
  private readonly inflight = new Map<number, AbortController>();
  private scheduled = false;
  private batchDepth = 0;
  private pendingInBatch = false;
  private running = 0;
  private idleWaiters: (() => void)[] = [];
  private readonly finalizer = new FinalizationRegistry<number>((id) => this.collected(id));

  constructor(private readonly opts: EngineOptions<T>) {}

  /** The current graph state (immutable). */
  get state(): GraphState {
    return this.graph;
  }

  // ---- wiring ----

  /** Registers a live node; a source may pass its first value. Returns its id. */
  add(task: Task<T>, node: NewNode, value?: T): number {
    let id: number;
    [this.graph, id] = addNode(this.graph, node);
    const slot = newSlot<T>(node.kind === 'source');
    this.slots.set(id, slot);
    this.refs.set(id, new WeakRef(task));
    this.finalizer.register(task, id, task);
    if (value !== undefined) this.store(slot, { ok: true, value }, this.version(id));
    for (const i of new Set(node.inputs)) {
      const s = this.slots.get(i);
      if (s?.parked === true && s.result?.ok === true) {
        s.parked = false;
        s.bytes = this.opts.bytesOf(s.result.value);
        record.alloc(s.bytes);
      }
    }
    return id;
  }

  /** Updates a node's descriptive record (label, kind, reduction...). */
  annotate(id: number, patch: Partial<Omit<NodeRecord, 'id' | 'inputs' | 'version'>>): void {
    this.graph = describeNode(this.graph, id, patch);
  }

  /** The live node of an id (undefined once disposed or collected). */
  task(id: number): Task<T> | undefined {
    return this.refs.get(id)?.deref();
  }

  has(id: number): boolean {
    return this.slots.has(id);
  }

  version(id: number): number {
    return this.graph.nodes.get(id)?.version ?? -1;
  }

  /** A source's current value (undefined while it waits for its first frame or holds an error). */
  sourceValue(id: number): T | undefined {
    const r = this.slots.get(id)?.result;
    return r?.ok === true ? r.value : undefined;
  }

  // ---- changes ----

  /** A new value for a source: stamps everything downstream and schedules a flush. */
  setSource(id: number, value: T, shape?: readonly number[]): void {
    this.changeSource(id, { ok: true, value }, shape);
  }

  /** A source failed (its stream errored, a frame was malformed): dependents fail until the next value. */
  failSource(id: number, error: unknown): void {
    this.changeSource(id, { ok: false, error });
  }

  /** Signals the computations in flight whose inputs just changed (see Task.evaluate). */
  private abortStale(ids: readonly number[]): void {
    if (this.inflight.size === 0) return;
    for (const id of ids) this.inflight.get(id)?.abort();
  }

  private changeSource(id: number, result: Result<T>, shape?: readonly number[]): void {
    const slot = this.slots.get(id);
    if (slot === undefined) return;
    const reached = downstream(this.graph, [id]);
    // A frame that no flush took, replaced while someone wants the result: skipped (back-pressure).
    if (slot.result?.ok === true && !slot.consumed && reached.some((n) => this.held.has(n))) record.frameSkipped();
    this.graph = touch(this.graph, [id], shape === undefined ? undefined : new Map([[id, shape]]));
    this.store(slot, result, this.version(id));
    slot.consumed = false;
    this.abortStale(reached);
    this.schedule();
  }

  /** Resolves once a flush has taken the source's current value, or at once if it was disposed. */
  whenConsumed(id: number): Promise<void> {
    const slot = this.slots.get(id);
    if (slot === undefined || slot.consumed) return Promise.resolve();
    return new Promise((res) => slot.waiters.push(res));
  }

  // ---- demand ----

  /** The node's value at (at least) its current version; computes what it needs if stale. */
  read(id: number): Promise<T> {
    const slot = this.slots.get(id);
    if (slot === undefined) return Promise.reject(this.opts.disposedError(id));
    this.retryTransient(id);
    const version = this.version(id);
    if (slot.result !== undefined && slot.tag === version) {
      return slot.result.ok ? Promise.resolve(slot.result.value) : Promise.reject(slot.result.error);
    }
    return new Promise<T>((resolve, reject) => {
      slot.reads.push({ min: version, resolve, reject });
      this.hold(id);
      this.schedule();
    });
  }

  /**
   * Adds an observer: it gets the current value now if it is current, then one value per flush
   * that changes it. A node whose current value is an error sends nothing until its next good value
   * (errors reach the observers that were there when it failed). Returns the unsubscribe function.
   */
  subscribe(id: number, sink: Sink<T>): () => void {
    const slot = this.slots.get(id);
    if (slot === undefined) {
      sink.complete();
      return () => undefined;
    }
    slot.sinks.set(sink, -1);
    this.hold(id);
    this.retryTransient(id);
    if (slot.result !== undefined && slot.tag === this.version(id)) {
      slot.sinks.set(sink, slot.tag);
      if (slot.result.ok) sink.next(slot.result.value);
    } else {
      this.schedule();
    }
    return () => {
      slot.sinks.delete(sink);
      this.release(id);
    };
  }

  /**
   * A node whose value is a transient backend fault (a lost device, a dead worker, a shutdown) is
   * computed again when next read or observed, with the failed nodes it reads, instead of repeating
   * the stale error: one retry per demand, so a fault that persists still rejects.
   */
  private retryTransient(id: number): void {
    if (!this.failedTransiently(id)) return;
    for (const n of upstream(this.graph, [id], (u) => !this.failedTransiently(u))) {
      if (this.failedTransiently(n)) this.slots.get(n)!.tag = -1; // stale: the next flush computes it
    }
  }

  private failedTransiently(id: number): boolean {
    const s = this.slots.get(id);
    return s !== undefined && !s.source && s.result?.ok === false && s.tag === this.version(id) && isTransient(s.result.error);
  }

  private hold(id: number): void {
    if (this.held.has(id)) return;
    const task = this.refs.get(id)?.deref();
    if (task !== undefined) this.held.set(id, task);
  }

  private release(id: number): void {
    const slot = this.slots.get(id);
    if (slot === undefined || (slot.sinks.size === 0 && slot.reads.length === 0)) this.held.delete(id);
  }

  // ---- batching ----

  /** Runs `fn`; the changes it makes are flushed once, after it returns. */
  batch(fn: () => void): void {
    this.batchDepth++;
    try {
      fn();
    } finally {
      this.batchDepth--;
      if (this.batchDepth === 0 && this.pendingInBatch) {
        this.pendingInBatch = false;
        this.schedule();
      }
    }
  }

  private schedule(): void {
    if (this.batchDepth > 0) {
      this.pendingInBatch = true;
      return;
    }
    if (this.scheduled) return;
    this.scheduled = true;
    queueMicrotask(() => this.flush());
  }

  /** Resolves when no flush is scheduled or running (for tests and benchmarks). */
  idle(): Promise<void> {
    if (!this.scheduled && this.running === 0 && !this.pendingInBatch) return Promise.resolve();
    return new Promise((res) => this.idleWaiters.push(res));
  }

  private checkIdle(): void {
    if (this.scheduled || this.running > 0 || this.pendingInBatch) return;
    const ws = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of ws) w();
  }

  // ---- flushing ----

  private stale(id: number): boolean {
    const s = this.slots.get(id);
    return s !== undefined && !s.source && s.tag !== this.version(id);
  }

  private flush(): void {
    this.scheduled = false;
    const g = this.graph;
    // Sources change without computing: their own observers and reads are answered here, once per batch.
    for (const id of [...this.held.keys()]) if (this.slots.get(id)?.source === true) this.deliver(id);
    const closure = new Set<number>();
    for (const target of this.held.keys()) {
      if (!this.stale(target)) continue;
      const cl = upstream(g, [target], (id) => !this.stale(id));
      // A flush in flight is computing part of it: when that one ends, the next flush takes the latest.
      if (cl.some((id) => this.stale(id) && this.busy.has(id))) continue;
      // A stream source that has had no frame yet: wait for it.
      if (cl.some((id) => !this.stale(id) && this.slots.get(id)?.result === undefined)) continue;
      for (const id of cl) closure.add(id);
    }
    if (closure.size > 0) void this.recompute(g, closure);
    this.checkIdle();
  }

  private async recompute(g: GraphState, closure: ReadonlySet<number>): Promise<void> {
    const order = topoOrder(g, [...closure].filter((id) => this.stale(id)));
    const inFlush = new Set(order);
    const versions = new Map(order.map((id) => [id, g.nodes.get(id)!.version]));
    this.running++;
    for (const id of order) this.busy.add(id);
    // The snapshot: values of the nodes this flush reads but does not compute.
    const boundary = new Map<number, Result<T>>();
    for (const id of closure) {
      if (inFlush.has(id)) continue;
      const slot = this.slots.get(id)!;
      boundary.set(id, slot.result!);
      if (slot.source && !slot.consumed) {
        slot.consumed = true;
        const ws = slot.waiters;
        slot.waiters = [];
        for (const w of ws) w();
      }
    }
    const promises = new Map<number, Promise<T>>();
    const input = (i: number): Promise<T> => {
      const p = promises.get(i);
      if (p !== undefined) return p;
      const r = boundary.get(i)!;
      return r.ok ? Promise.resolve(r.value) : Promise.reject(r.error);
    };
    const done: Promise<void>[] = [];
    const batches = this.fusionBatches(g, order, inFlush);
    for (const id of order) {
      const task = this.refs.get(id)?.deref();
      const ctl = new AbortController();
      const fusion = batches.get(id);
      if (fusion === undefined && g.nodes.get(id)!.fused !== undefined) this.graph = describeNode(this.graph, id, { fused: undefined });
      const p = Promise.all(g.nodes.get(id)!.inputs.map(input)).then(
        (vals) => {
          if (task === undefined || !this.slots.has(id) || !this.wanted(id, inFlush)) {
            fusion?.withdraw(id);
            throw DROPPED;
          }
          const evaluate = (): Promise<T> => {
            // Inputs changed before this started: still computed (the snapshot is consistent, and a
            // stream must make progress), but told so at once.
            if (this.version(id) !== versions.get(id)) ctl.abort();
            this.inflight.set(id, ctl);
            // A computation that gave up because its inputs changed is dropped by version, and so is
            // what reads it.
            return Promise.resolve(task.evaluate(vals, ctl.signal)).catch((e: unknown) => {
              throw ctl.signal.aborted ? DROPPED : e;
            });
          };
          // A member of a fused group computes once the group ran: its value is then its kernel's.
          return fusion === undefined ? evaluate() : fusion.ready(id, vals).then(evaluate);
        },
        (e: unknown) => {
          fusion?.withdraw(id);
          throw e;
        },
      );
      promises.set(id, p);
      const settle = (r: Result<T>): void => {
        if (this.inflight.get(id) === ctl) this.inflight.delete(id);
        this.complete(id, versions.get(id)!, r);
      };
      done.push(
        p.then(
          (value) => settle({ ok: true, value }),
          (error: unknown) => settle({ ok: false, error }),
        ),
      );
    }
    try {
      await Promise.all(done);
    } finally {
      for (const id of order) this.busy.delete(id);
      this.running--;
      if ([...this.held.keys()].some((id) => this.stale(id) && this.flushable(id))) this.schedule();
      this.checkIdle();
    }
  }

  /** The fused groups of a flush, as each member's batch (src/scheduler/fusion.ts `flushBatches`). */
  private fusionBatches(g: GraphState, order: readonly number[], inFlush: ReadonlySet<number>): Map<number, FusionBatch<T>> {
    return flushBatches(g, order, inFlush, (id) => this.refs.get(id)?.deref()?.fusible?.(), (fused, all) => {
      this.graph = withFusedRecords(this.graph, fused, all);
    });
  }

  /** Whether a stale held node could compute now (its upstream has values). */
  private flushable(id: number): boolean {
    return upstream(this.graph, [id], (n) => !this.stale(n)).every((n) => this.stale(n) || this.slots.get(n)?.result !== undefined);
  }

  /** Whether someone still wants node `id`: it, or a node downstream of it in this flush, is held. */
  private wanted(id: number, inFlush: ReadonlySet<number>): boolean {
    return reachesAny(this.graph, id, inFlush, this.held);
  }

  private complete(id: number, version: number, result: Result<T>): void {
    const slot = this.slots.get(id);
    if (slot === undefined) return;
    if (!result.ok && result.error === DROPPED) return; // left stale: recomputed when wanted again
    if (version <= slot.tag) return; // older than what the node holds: dropped by version
    this.store(slot, result, version);
    this.deliver(id);
  }

  private store(slot: Slot<T>, result: Result<T>, version: number): void {
    record.free(slot.bytes);
    slot.bytes = result.ok && !slot.parked ? this.opts.bytesOf(result.value) : 0;
    record.alloc(slot.bytes);
    slot.result = result;
    slot.tag = version;
  }

  /** Sends a node's result to the observers that have not had it and answers the reads it satisfies. */
  private deliver(id: number): void {
    const slot = this.slots.get(id);
    if (slot === undefined || slot.result === undefined) return;
    const r = slot.result;
    const tag = slot.tag;
    const reads = slot.reads.filter((q) => q.min <= tag);
    slot.reads = slot.reads.filter((q) => q.min > tag);
    const sinks = [...slot.sinks].filter(([, last]) => last < tag).map(([s]) => s);
    for (const s of sinks) {
      if (r.ok) slot.sinks.set(s, tag);
      else slot.sinks.delete(s); // an rxjs subscriber is closed by an error
    }
    this.release(id);
    for (const q of reads) {
      if (r.ok) q.resolve(r.value);
      else q.reject(r.error);
    }
    for (const s of sinks) {
      if (r.ok) s.next(r.value);
      else s.error(r.error);
    }
  }

  // ---- disposal ----

  /**
   * Disposes a node and everything downstream of it: their observers complete, pending reads
   * reject, cached values are freed, and their records leave the state. A lifted source (dense data
   * lifted into a formula) whose last dependent goes releases its bytes.
   */
  dispose(id: number): void {
    if (!this.slots.has(id)) return;
    const g = this.graph;
    const ids = downstream(g, [id]);
    const gone = new Set(ids);
    const affected = new Set<number>();
    for (const n of ids) for (const i of g.nodes.get(n)!.inputs) if (!gone.has(i)) affected.add(i);
    const slots: [number, Slot<T>][] = [];
    const tasks: Task<T>[] = [];
    for (const n of ids) {
      const slot = this.slots.get(n);
      if (slot === undefined) continue;
      slots.push([n, slot]);
      freeSlotBytes(slot);
      slot.result = undefined;
      this.slots.delete(n);
      this.held.delete(n);
      this.busy.delete(n);
      this.inflight.get(n)?.abort();
      this.inflight.delete(n);
      const task = this.refs.get(n)?.deref();
      this.refs.delete(n);
      if (task !== undefined) {
        this.finalizer.unregister(task);
        tasks.push(task);
      }
    }
    this.graph = removeNodes(this.graph, ids);
    for (const i of affected) {
      const rec = this.graph.nodes.get(i);
      const slot = this.slots.get(i);
      if (rec?.lifted === true && slot !== undefined && !hasDependents(this.graph, i) && !slot.parked) {
        freeSlotBytes(slot);
        slot.parked = true;
      }
    }
    // User code (observers, read continuations) runs last, on a consistent state.
    for (const task of tasks) task.onDispose?.();
    for (const [n, slot] of slots) endSlot(slot, this.opts.disposedError(n));
    this.checkIdle();
  }

  /** Disposes every live node (tests use it to leave no bytes behind). */
  disposeAll(): void {
    for (const id of nodeIds(this.graph)) this.dispose(id);
  }

  /** A node nobody could reach was collected: so was everything downstream of it. */
  private collected(id: number): void {
    if (!this.slots.has(id)) return;
    const ids = downstream(this.graph, [id]);
    for (const n of ids) {
      const slot = this.slots.get(n);
      if (slot !== undefined) freeSlotBytes(slot);
      this.slots.delete(n);
      this.refs.delete(n);
      this.held.delete(n);
    }
    this.graph = removeNodes(this.graph, ids);
  }
}
