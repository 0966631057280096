/**
 * Fusion of sibling reductions (issue 17): when several reductions become due in the same flush
 * and reduce over the same axis of the same index space, the scheduler computes them in one
 * kernel (one pass over j computes every output; shared temporaries are computed once).
 *
 * - Which nodes may fuse is decided when a flush starts (`fusionGroups`): nodes at the same depth
 *   of the flush (so none reads another), whose offers (`Task.fusible`) have the same key (backend,
 *   axis) and read common sources on the reduced index and on the kept index.
 * - A group waits until each member has its inputs, or has dropped out (an input failed, nobody
 *   wants it any more): `FusionBatch`. The members then run as fused kernels (`FusionKernel.fuse`,
 *   which checks extents and device limits, and may split the group or leave members to run alone),
 *   and each member computes from what its kernel left: its own result, the fused kernel's
 *   transient fault, or (when the fused kernel failed otherwise) its own kernel, so that every
 *   member settles as it would alone.
 */
import { describeNode, type GraphState } from '../graph/state.js';
import type { FusionKernel, FusionOffer } from './slots.js';

let enabled = true;

/** Turns fusion of sibling reductions on or off (`init({ fuse })`; default on). */
export function setFusion(on: boolean): void {
  enabled = on;
}

/** Whether the scheduler fuses sibling reductions. */
export function fusionEnabled(): boolean {
  return enabled;
}

/**
 * Floats of reduction state per row a fused kernel may hold (all its parts' accumulators, as the
 * partial state of a split stores them): beyond it the kernel would spill registers (a GPU keeps
 * them per invocation, times the rows per invocation), so the group runs as several kernels.
 */
export const FUSED_STATE_MAX = 64;

/** Limits one fused kernel must fit, beside the device's: see `setFusionLimitsForTesting`. */
export interface FusionLimits {
  /** Storage buffers per shader stage (WebGPU's `maxStorageBuffersPerShaderStage`). */
  readonly storageBuffers?: number;
  /** Floats of reduction state per row (default `FUSED_STATE_MAX`). */
  readonly stateWidth?: number;
}

let testLimits: FusionLimits = {};

/** @internal Lowers the limits a fused kernel must fit (tests exercise the fallback with them); `{}` restores the defaults. */
export function setFusionLimitsForTesting(limits: FusionLimits): void {
  testLimits = { ...limits };
}

/** The limits of a fused kernel on a device allowing `maxBindings` storage buffers per stage. */
export function fusionLimits(maxBindings: number): Required<FusionLimits> {
  return {
    storageBuffers: Math.min(maxBindings, testLimits.storageBuffers ?? Infinity),
    stateWidth: Math.min(FUSED_STATE_MAX, testLimits.stateWidth ?? Infinity),
  };
}

/** A node of a flush that offers itself to fusion, with its offer's sources as node ids. */
export interface FusionCandidate<T> {
  readonly id: number;
  /** Depth in the flush: 0 reads only values computed before it, d + 1 reads a node of depth d. */
  readonly level: number;
  readonly offer: FusionOffer<T>;
  /** Node ids bound to the kept and to the reduced index. */
  readonly kept: ReadonlySet<number>;
  readonly reduced: ReadonlySet<number>;
}

/**
 * Groups of candidates that may run as one kernel, in flush order, each with at least two
 * kernels (the two outputs of a pair reduction are one kernel). Candidates of a group are at the
 * same depth (none reads another), have the same key, and each shares with an earlier member a
 * reduced-side source and a kept-side one (or has no kept-side source, like it: a reduction to
 * one row). Sharing a source means sharing its extent; the fused run checks the extents anyway.
 */
export function fusionGroups<T>(cands: readonly FusionCandidate<T>[]): number[][] {
  interface Group {
    readonly ids: number[];
    readonly kernels: Set<FusionKernel<T>>;
  }
  const groups: Group[] = [];
  // Groups by depth, key, and each pair of a reduced-side and a kept-side source they read, so
  // that a candidate finds the group it may join in a few lookups, however many groups there are.
  const index = new Map<string, Group>();
  const slots = (level: number, key: string, reduced: Iterable<number>, kept: ReadonlySet<number>): string[] =>
    [...reduced].flatMap((r) => (kept.size === 0 ? [`${level}|${key}|${r}|-`] : [...kept].map((k) => `${level}|${key}|${r}|${k}`)));
  for (const c of cands) {
    if (c.reduced.size === 0) continue; // an elementwise map (nothing reduced): nothing to share
    let g: Group | undefined;
    for (const slot of slots(c.level, c.offer.key, c.reduced, c.kept)) if ((g = index.get(slot)) !== undefined) break;
    if (g === undefined) {
      g = { ids: [], kernels: new Set() };
      groups.push(g);
    }
    g.ids.push(c.id);
    g.kernels.add(c.offer.kernel);
    for (const slot of slots(c.level, c.offer.key, c.reduced, c.kept)) if (!index.has(slot)) index.set(slot, g);
  }
  return groups.filter((g) => g.kernels.size >= 2).map((g) => g.ids);
}

/**
 * One group of a flush: members report their inputs (`ready`) or drop out (`withdraw`); once
 * every member has done one or the other, the kernels of those ready run together, and every
 * `ready` resolves (never rejects): each member then computes, and finds its value in its kernel.
 * `onFused` gets the ids of the nodes of each kernel that ran fused (for the graph's records).
 */
export class FusionBatch<T> {
  private readonly pending: Set<number>;
  private readonly members: { id: number; kernel: FusionKernel<T>; inputs: readonly T[] }[] = [];
  private readonly waiters: (() => void)[] = [];
  private started = false;

  constructor(
    ids: readonly number[],
    private readonly kernelOf: (id: number) => FusionKernel<T>,
    private readonly onFused: (groups: readonly (readonly number[])[], all: readonly number[]) => void,
  ) {
    this.pending = new Set(ids);
  }

  /** Member `id` has its inputs: resolves once the group ran (its kernel then holds its value, or leaves it to compute alone). */
  ready(id: number, inputs: readonly T[]): Promise<void> {
    if (!this.pending.delete(id)) return Promise.resolve();
    this.members.push({ id, kernel: this.kernelOf(id), inputs });
    return new Promise((res) => {
      this.waiters.push(res);
      this.maybeRun();
    });
  }

  /** Member `id` will not compute (an input failed, or it is dropped). */
  withdraw(id: number): void {
    if (this.pending.delete(id)) this.maybeRun();
  }

  private maybeRun(): void {
    if (this.pending.size > 0 || this.started) return;
    this.started = true;
    void this.run();
  }

  private async run(): Promise<void> {
    // Members sharing a kernel (the outputs of a pair reduction) are one entry.
    const kernels: { kernel: FusionKernel<T>; inputs: readonly T[]; ids: number[] }[] = [];
    // In node order, whatever order the inputs arrived in: the fused kernel's structure (its cache key) is stable.
    for (const m of [...this.members].sort((a, b) => a.id - b.id)) {
      const k = kernels.find((e) => e.kernel === m.kernel);
      if (k === undefined) kernels.push({ kernel: m.kernel, inputs: m.inputs, ids: [m.id] });
      else k.ids.push(m.id);
    }
    let fused: readonly (readonly number[])[] = [];
    try {
      if (kernels.length >= 2) fused = await kernels[0]!.kernel.fuse(kernels);
    } catch {
      // `fuse` settles every kernel it runs; anything else leaves the members to compute alone.
    } finally {
      this.onFused(
        fused.map((g) => g.flatMap((k) => kernels[k]!.ids)),
        this.members.map((m) => m.id),
      );
      for (const w of this.waiters) w();
    }
  }
}

/**
 * The fused groups of a flush in topological `order`, as each member's batch. Depth 0 is a node
 * that reads only values the flush does not compute (`inFlush`); a node reading one of depth d
 * has depth d + 1. `offerOf` gives a node's offer (none: it runs alone); `onFused` gets the
 * groups that ran fused among a batch's members.
 */
export function flushBatches<T>(
  g: GraphState,
  order: readonly number[],
  inFlush: ReadonlySet<number>,
  offerOf: (id: number) => FusionOffer<T> | undefined,
  onFused: (fused: readonly (readonly number[])[], all: readonly number[]) => void,
): Map<number, FusionBatch<T>> {
  const batches = new Map<number, FusionBatch<T>>();
  if (!fusionEnabled() || order.length < 2) return batches;
  const level = new Map<number, number>();
  const cands: FusionCandidate<T>[] = [];
  for (const id of order) {
    const inputs = g.nodes.get(id)!.inputs;
    let d = 0;
    for (const i of inputs) if (inFlush.has(i)) d = Math.max(d, level.get(i)! + 1);
    level.set(id, d);
    const offer = offerOf(id);
    if (offer === undefined) continue;
    const ids = (at: readonly number[]): Set<number> => new Set(at.map((k) => inputs[k]!));
    cands.push({ id, level: d, offer, kept: ids(offer.kept), reduced: ids(offer.reduced) });
  }
  const byId = new Map(cands.map((c) => [c.id, c]));
  for (const ids of fusionGroups(cands)) {
    const batch = new FusionBatch<T>(ids, (id) => byId.get(id)!.offer.kernel, onFused);
    for (const id of ids) batches.set(id, batch);
  }
  return batches;
}

/** The graph with each member of `all` recording the nodes it was computed with (`fused`, printGraph shows it); unchanged records stay. */
export function withFusedRecords(graph: GraphState, fused: readonly (readonly number[])[], all: readonly number[]): GraphState {
  const partners = new Map<number, readonly number[]>();
  for (const grp of fused) for (const id of grp) partners.set(id, grp.filter((o) => o !== id).sort((a, b) => a - b));
  for (const id of all) {
    const rec = graph.nodes.get(id);
    if (rec === undefined) continue;
    const next = partners.get(id);
    const same = next !== undefined && rec.fused !== undefined && rec.fused.length === next.length && rec.fused.every((o, k) => o === next[k]);
    if (!same && (next !== undefined || rec.fused !== undefined)) graph = describeNode(graph, id, { fused: next });
  }
  return graph;
}
