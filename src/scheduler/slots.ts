/** The records the scheduler (engine.ts) keeps per node, and what it asks of a live node. */
import { record } from '../stats.js';

/** An observer's three channels (an rxjs Subscriber fits). */
export interface Sink<T> {
  next(value: T): void;
  error(err: unknown): void;
  complete(): void;
}

/** What the scheduler needs from a live node. */
export interface Task<T> {
  /**
   * Computes the node's value from its inputs' values (never called for sources). `signal` aborts
   * when an input changes while this runs: a computation that can stop early (an iterative solve)
   * may then reject, and its work is dropped; one that finishes anyway is kept and emitted.
   */
  evaluate(inputs: readonly T[], signal: AbortSignal): Promise<T>;
  /** Called once when the scheduler disposes the node (it, or a node upstream, was disposed). */
  onDispose?(): void;
  /**
   * Offers this node to fusion with the sibling reductions of a flush (src/scheduler/fusion.ts);
   * undefined (or no method): it always computes alone.
   */
  fusible?(): FusionOffer<T> | undefined;
}

/** How a node may fuse: nodes fuse only with equal keys, and only when they share sources. */
export interface FusionOffer<T> {
  /** What must be equal (backend, axis...). */
  readonly key: string;
  /** Positions of the inputs bound to the kept index, and to the reduced index. */
  readonly kept: readonly number[];
  readonly reduced: readonly number[];
  /** The kernel the node's value comes from (nodes sharing one, the outputs of a pair reduction, are one member). */
  readonly kernel: FusionKernel<T>;
}

/** A kernel that can run fused with others of the same kind. */
export interface FusionKernel<T> {
  /**
   * Runs these kernels (this one among them), each with its inputs' values, as few kernels as the
   * device allows. Resolves, never rejects, once every kernel it ran holds its value (or the error
   * it must fail with) for those inputs; a kernel it did not run computes alone. Returns which
   * kernels ran together (indices into `kernels`, one list per fused kernel).
   */
  fuse(kernels: readonly { readonly kernel: FusionKernel<T>; readonly inputs: readonly T[] }[]): Promise<readonly (readonly number[])[]>;
}

export type Result<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

export interface PendingRead<T> {
  /** The version the node had when read: an older value does not answer it. */
  readonly min: number;
  readonly resolve: (v: T) => void;
  readonly reject: (e: unknown) => void;
}

export interface Slot<T> {
  readonly source: boolean;
  result: Result<T> | undefined;
  /** Version `result` belongs to (-1: none yet). */
  tag: number;
  bytes: number;
  /** Observers with the version each was last sent. */
  readonly sinks: Map<Sink<T>, number>;
  reads: PendingRead<T>[];
  /** Source: a flush took the current value. */
  consumed: boolean;
  /** Source: callbacks waiting for the current value to be taken (pull-based streams). */
  waiters: (() => void)[];
  /** Lifted source whose last dependent was disposed: its bytes are released until it is wired again. */
  parked: boolean;
}

export interface EngineOptions<T> {
  /** Bytes a value holds (counted in stats().bytesAllocated while cached). */
  bytesOf(value: T): number;
  /** The error a read of a disposed node rejects with. */
  disposedError(id: number): Error;
}

/** Stops counting a slot's cached value in stats() (disposed, or parked: a lifted constant nobody reads). */
export function freeSlotBytes<T>(slot: Slot<T>): void {
  record.free(slot.bytes);
  slot.bytes = 0;
}

/** Settles everything waiting on a disposed node: waiters wake, reads reject with `error`, observers complete. */
export function endSlot<T>(slot: Slot<T>, error: unknown): void {
  for (const w of slot.waiters) w();
  for (const q of slot.reads) q.reject(error);
  for (const s of slot.sinks.keys()) s.complete();
  slot.waiters = [];
  slot.reads = [];
  slot.sinks.clear();
}

/** A new node's empty slot. */
export function newSlot<T>(source: boolean): Slot<T> {
  return { source, result: undefined, tag: -1, bytes: 0, sinks: new Map(), reads: [], consumed: false, waiters: [], parked: false };
}
