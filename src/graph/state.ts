/**
 * The graph state: an immutable record of every live node of the dataflow graph, its wiring and
 * its version. The live Node objects (src/nodes/node.ts) are the user's handles; this state is what
 * the scheduler consults (who depends on whom, what changed) and what `printGraph` and `toJSON`
 * read. Every update is a pure function `GraphState -> GraphState`.
 *
 * Records and adjacency live in persistent maps (src/graph/intmap.ts): wiring, describing or
 * removing a node copies one path per record or edge it touches, never the whole graph, so adding
 * a node costs the same at 10 nodes and at 10 000; every earlier state stays valid and frozen.
 *
 * Versions come from one clock: a change stamps the changed sources and everything downstream of
 * them with the same new clock value, so "is this cached value current?" is one comparison.
 */
import { IntMap } from './intmap.js';

export { IntMap } from './intmap.js';

/** What a node is: dense data, a fused reduction of a formula, or an opaque JavaScript function. */
export type NodeKind = 'source' | 'reduction' | 'computed';

/** How a reduction node reduces (mirrors the API's ReductionSpec with formulas as their keys). */
export interface ReductionRecord {
  /**
   * The formula's KeOps text for people (`printFormula`: elided with `...` past 10 000 characters);
   * `toJSON` prints the live formula in full instead, so that `parseFormula` rebuilds it.
   */
  readonly formula: string;
  readonly reduction: string;
  readonly axis: 0 | 1;
  readonly K?: number;
  /** The weight formula's KeOps text (SumSoftMaxWeight, weighted LogSumExp), or null. */
  readonly weight: string | null;
  readonly backend?: string;
  /** Which output of the reduction (1 = the indices of a pair reduction). */
  readonly output: number;
  /** Width of each output row. */
  readonly dim: number;
}

export interface NodeRecord {
  readonly id: number;
  readonly kind: NodeKind;
  readonly label: string;
  /** Input node ids, in order (for a reduction: variable v reads inputs[v]). */
  readonly inputs: readonly number[];
  /** Clock value of the last change that reached this node. */
  readonly version: number;
  /** Source: the current shape (undefined while a stream source waits for its first frame). */
  readonly shape?: readonly number[];
  readonly dtype?: 'float32' | 'float64' | 'int32';
  /** Source created implicitly by lifting dense data into a formula (`Vj(tensorLike)`, `Pm(0.5)`). */
  readonly lifted?: boolean;
  /** Source fed by an Observable or AsyncIterable. */
  readonly stream?: boolean;
  readonly reduction?: ReductionRecord;
  /** Reduction: the nodes computed in the same fused kernel as this one, the last time it computed (issue 17). */
  readonly fused?: readonly number[];
}

export interface GraphState {
  /** Every live node's record, by id. */
  readonly nodes: IntMap<NodeRecord>;
  /** Edges as adjacency: node id -> the set of ids of the nodes that read it (ascending: wiring order). */
  readonly dependents: IntMap<IntMap<true>>;
  /** The change clock (see `touch`). */
  readonly clock: number;
  readonly nextId: number;
}

export const emptyGraph: GraphState = Object.freeze({ nodes: IntMap.empty<NodeRecord>(), dependents: IntMap.empty<IntMap<true>>(), clock: 0, nextId: 0 });

/** The record of node `id` (undefined when there is none). */
export function nodeOf(g: GraphState, id: number): NodeRecord | undefined {
  return g.nodes.get(id);
}

/** Ids of the nodes that read node `id`, each once, in wiring order. */
export function dependentsOf(g: GraphState, id: number): number[] {
  const d = g.dependents.get(id);
  return d === undefined ? [] : [...d.keys()];
}

/** Whether some node reads node `id`. */
export function hasDependents(g: GraphState, id: number): boolean {
  return (g.dependents.get(id)?.size ?? 0) > 0;
}

/** Ids of every live node, in wiring order. */
export function nodeIds(g: GraphState): number[] {
  return [...g.nodes.keys()];
}

/** Fields a caller gives when wiring a node (id and version are assigned). */
export type NewNode = Omit<NodeRecord, 'id' | 'version'>;

function freezeRecord(rec: NodeRecord): NodeRecord {
  Object.freeze(rec.inputs);
  if (rec.shape !== undefined) Object.freeze(rec.shape);
  if (rec.reduction !== undefined) Object.freeze(rec.reduction);
  if (rec.fused !== undefined) Object.freeze(rec.fused);
  return Object.freeze(rec);
}

function state(g: GraphState, patch: Partial<GraphState>): GraphState {
  return Object.freeze({ ...g, ...patch });
}

/**
 * Wires a node: a new record, an edge from each of its inputs. Pure; costs O(its inputs).
 * @example
 * ```ts
 * const [g1, x] = addNode(emptyGraph, { kind: 'source', label: 'x', inputs: [], shape: [10, 3] });
 * ```
 */
export function addNode(g: GraphState, node: NewNode): [GraphState, number] {
  const id = g.nextId;
  for (const i of node.inputs) if (!g.nodes.has(i)) throw new Error(`graph: input #${i} of a new node does not exist`);
  const rec: NodeRecord = { ...node, inputs: [...node.inputs], id, version: g.clock };
  if (node.shape !== undefined) (rec as { shape?: number[] }).shape = [...node.shape];
  let dependents = g.dependents.set(id, IntMap.empty<true>());
  for (const i of new Set(node.inputs)) dependents = dependents.set(i, dependents.get(i)!.set(id, true));
  return [state(g, { nodes: g.nodes.set(id, freezeRecord(rec)), dependents, nextId: id + 1 }), id];
}

/** Updates descriptive fields of a node (label, shape, reduction...); wiring and version are kept. */
export function describeNode(g: GraphState, id: number, patch: Partial<Omit<NodeRecord, 'id' | 'inputs' | 'version'>>): GraphState {
  const rec = g.nodes.get(id);
  if (rec === undefined) return g;
  const next = { ...rec, ...patch } as NodeRecord;
  if ('fused' in patch && patch.fused === undefined) delete (next as { fused?: readonly number[] }).fused;
  if (patch.shape !== undefined) (next as { shape?: number[] }).shape = [...patch.shape];
  return state(g, { nodes: g.nodes.set(id, freezeRecord(next)) });
}

/** Removes nodes and their edges (a node whose inputs are removed keeps a dangling id: remove it too). Costs O(their edges). */
export function removeNodes(g: GraphState, ids: Iterable<number>): GraphState {
  const gone = new Set([...ids].filter((id) => g.nodes.has(id)));
  if (gone.size === 0) return g;
  let { nodes, dependents } = g;
  for (const id of gone) {
    for (const i of new Set(g.nodes.get(id)!.inputs)) {
      const deps = dependents.get(i);
      if (deps !== undefined && !gone.has(i)) dependents = dependents.set(i, deps.delete(id));
    }
    nodes = nodes.delete(id);
    dependents = dependents.delete(id);
  }
  return state(g, { nodes, dependents });
}

/**
 * Records a change of some sources: the clock advances once and the sources and every node
 * downstream of them take the new clock value as version. `shapes` updates source shapes. Pure;
 * costs O(the nodes reached).
 */
export function touch(g: GraphState, sources: readonly number[], shapes?: ReadonlyMap<number, readonly number[]>): GraphState {
  const reached = downstream(g, sources);
  if (reached.length === 0) return g;
  const clock = g.clock + 1;
  let nodes = g.nodes;
  for (const id of reached) {
    const rec = nodes.get(id)!;
    const shape = shapes?.get(id);
    const next: NodeRecord = { ...rec, version: clock };
    if (shape !== undefined && !sameShape(rec.shape, shape)) (next as { shape?: number[] }).shape = [...shape];
    nodes = nodes.set(id, freezeRecord(next));
  }
  return state(g, { nodes, clock });
}

function sameShape(a: readonly number[] | undefined, b: readonly number[]): boolean {
  return a !== undefined && a.length === b.length && a.every((v, k) => v === b[k]);
}

/** The given nodes and everything that (transitively) reads them. */
export function downstream(g: GraphState, ids: Iterable<number>): number[] {
  const seen = new Set<number>();
  const stack = [...ids].filter((id) => g.nodes.has(id));
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    const deps = g.dependents.get(id);
    if (deps !== undefined) for (const d of deps.keys()) if (!seen.has(d)) stack.push(d);
  }
  return [...seen];
}

/** Whether node `id`, or a node downstream of it through nodes of `within`, is one of `targets`. */
export function reachesAny(g: GraphState, id: number, within: ReadonlySet<number>, targets: { has(id: number): boolean }): boolean {
  const seen = new Set<number>();
  const stack = [id];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (seen.has(n)) continue;
    seen.add(n);
    if (targets.has(n)) return true;
    for (const d of dependentsOf(g, n)) if (within.has(d)) stack.push(d);
  }
  return false;
}

/**
 * The given nodes and everything they (transitively) read; `stop(id)` true keeps a node but does
 * not walk past it (a node whose cached value is current, say).
 */
export function upstream(g: GraphState, ids: Iterable<number>, stop: (id: number) => boolean = () => false): number[] {
  const seen = new Set<number>();
  const stack = [...ids].filter((id) => g.nodes.has(id));
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    if (stop(id)) continue;
    for (const i of g.nodes.get(id)!.inputs) if (!seen.has(i)) stack.push(i);
  }
  return [...seen];
}

/**
 * Topological order (inputs first) of a set of live nodes. A node's inputs exist when it is wired
 * and ids only grow, so every edge runs from a smaller id to a larger one: ascending id order is a
 * topological order, and the stable one (wiring order).
 */
export function topoOrder(g: GraphState, ids: Iterable<number>): number[] {
  const out = [...new Set(ids)];
  for (const id of out) if (!g.nodes.has(id)) throw new Error(`graph: node #${id} is not in the graph`);
  return out.sort((a, b) => a - b);
}

/** KeOps's name of a reduction with its parameters, e.g. `ArgKMin_Reduction(SqDist(...),K=3,axis=1)`. */
export function reductionString(r: ReductionRecord): string {
  const extra = [r.K !== undefined && r.K > 0 ? `K=${r.K}` : '', r.weight !== null ? `weight=${r.weight}` : '', `axis=${r.axis}`];
  return `${r.reduction}_Reduction(${[r.formula, ...extra.filter((s) => s !== '')].join(',')})`;
}

/**
 * A readable dump of the graph (or of the nodes `ids` and their inputs): one line per node in
 * topological order with its kind, label, shape or KeOps formula, inputs and version, and for a
 * reduction computed in a fused kernel, the nodes it was fused with (`fused with #5, #8`).
 * @example
 * ```text
 * #0 source 'x' [200, 3] float32  v1
 * #1 source 'y' [300, 3] float32  v0
 * #2 reduction = ArgKMin_Reduction(SqDist(Var(0,3,0),Var(1,3,1)),K=3,axis=1)  Var(0) = #0, Var(1) = #1  v1
 * ```
 */
export function formatGraph(g: GraphState, ids?: Iterable<number>): string {
  // Lifted constants that nothing reads any more (their nodes were disposed) are noise: left out.
  const all =
    ids === undefined
      ? [...g.nodes.values()].filter((n) => n.lifted !== true || hasDependents(g, n.id)).map((n) => n.id)
      : upstream(g, ids);
  const order = topoOrder(g, all);
  const lines = order.map((id) => {
    const n = g.nodes.get(id)!;
    const name = n.label === '' ? '' : ` '${n.label}'`;
    if (n.kind === 'source') {
      const shape = n.shape === undefined ? 'awaiting first frame' : `[${n.shape.join(', ')}] ${n.dtype ?? 'float32'}`;
      const tags = [n.stream === true ? 'stream' : '', n.lifted === true ? 'lifted' : ''].filter((s) => s !== '');
      return `#${id} source${name} ${shape}${tags.length > 0 ? ` (${tags.join(', ')})` : ''}  v${n.version}`;
    }
    const ins = n.inputs.map((i, v) => `Var(${v}) = #${i}`).join(', ');
    if (n.kind === 'reduction' && n.reduction !== undefined) {
      const out = n.reduction.output > 0 ? `[output ${n.reduction.output}]` : '';
      const fused = n.fused === undefined || n.fused.length === 0 ? '' : `  fused with ${n.fused.map((f) => `#${f}`).join(', ')}`;
      return `#${id} reduction${name} = ${reductionString(n.reduction)}${out}  ${ins}  v${n.version}${fused}`;
    }
    return `#${id} ${n.kind}${name}  inputs ${n.inputs.map((i) => `#${i}`).join(', ') || 'none'}  v${n.version}`;
  });
  return [`kernelflow graph: ${order.length} node${order.length === 1 ? '' : 's'}`, ...lines.map((l) => `  ${l}`)].join('\n');
}
