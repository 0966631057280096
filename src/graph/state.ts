/**
 * The graph state: an immutable record (immer) of every live node of the dataflow graph, its
 * wiring and its version. The live Node objects (src/api/node.ts) are the user's handles; this
 * state is what the scheduler consults (who depends on whom, what changed) and what `printGraph`
 * and `toJSON` read. Every update is a pure function `GraphState -> GraphState`.
 *
 * Versions come from one clock: a change stamps the changed sources and everything downstream of
 * them with the same new clock value, so "is this cached value current?" is one comparison.
 */
import { castDraft, produce } from 'immer';

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
  readonly dtype?: 'float32' | 'int32';
  /** Source created implicitly by lifting dense data into a formula (`Vj(tensorLike)`, `Pm(0.5)`). */
  readonly lifted?: boolean;
  /** Source fed by an Observable or AsyncIterable. */
  readonly stream?: boolean;
  readonly reduction?: ReductionRecord;
}

export interface GraphState {
  readonly nodes: Readonly<Record<number, NodeRecord>>;
  /** Edges as adjacency: node id -> ids of the nodes that read it (each once, in wiring order). */
  readonly dependents: Readonly<Record<number, readonly number[]>>;
  /** The change clock (see `touch`). */
  readonly clock: number;
  readonly nextId: number;
}

export const emptyGraph: GraphState = Object.freeze({ nodes: {}, dependents: {}, clock: 0, nextId: 0 });

/** Fields a caller gives when wiring a node (id and version are assigned). */
export type NewNode = Omit<NodeRecord, 'id' | 'version'>;

/**
 * Wires a node: a new record, an edge from each of its inputs. Pure.
 * @example
 * ```ts
 * const [g1, x] = addNode(emptyGraph, { kind: 'source', label: 'x', inputs: [], shape: [10, 3] });
 * ```
 */
export function addNode(g: GraphState, node: NewNode): [GraphState, number] {
  const id = g.nextId;
  for (const i of node.inputs) if (g.nodes[i] === undefined) throw new Error(`graph: input #${i} of a new node does not exist`);
  const next = produce(g, (d) => {
    const rec: NodeRecord = { ...node, inputs: [...node.inputs], id, version: g.clock };
    if (node.shape !== undefined) (rec as { shape?: number[] }).shape = [...node.shape];
    d.nodes[id] = castDraft(rec);
    d.dependents[id] = [];
    for (const i of new Set(node.inputs)) d.dependents[i]!.push(id);
    d.nextId = id + 1;
  });
  return [next, id];
}

/** Updates descriptive fields of a node (label, shape, reduction...); wiring and version are kept. */
export function describeNode(g: GraphState, id: number, patch: Partial<Omit<NodeRecord, 'id' | 'inputs' | 'version'>>): GraphState {
  if (g.nodes[id] === undefined) return g;
  return produce(g, (d) => {
    Object.assign(d.nodes[id]!, patch);
  });
}

/** Removes nodes and their edges (a node whose inputs are removed keeps a dangling id: remove it too). */
export function removeNodes(g: GraphState, ids: Iterable<number>): GraphState {
  const gone = new Set([...ids].filter((id) => g.nodes[id] !== undefined));
  if (gone.size === 0) return g;
  return produce(g, (d) => {
    for (const id of gone) {
      for (const i of new Set(g.nodes[id]!.inputs)) {
        const deps = d.dependents[i];
        if (deps !== undefined && !gone.has(i)) d.dependents[i] = deps.filter((x) => x !== id);
      }
      delete d.nodes[id];
      delete d.dependents[id];
    }
  });
}

/**
 * Records a change of some sources: the clock advances once and the sources and every node
 * downstream of them take the new clock value as version. `shapes` updates source shapes. Pure.
 */
export function touch(g: GraphState, sources: readonly number[], shapes?: ReadonlyMap<number, readonly number[]>): GraphState {
  const reached = downstream(g, sources);
  if (reached.length === 0) return g;
  const clock = g.clock + 1;
  return produce(g, (d) => {
    d.clock = clock;
    for (const id of reached) d.nodes[id]!.version = clock;
    shapes?.forEach((shape, id) => {
      const n = d.nodes[id];
      if (n !== undefined && !sameShape(n.shape, shape)) n.shape = [...shape];
    });
  });
}

function sameShape(a: readonly number[] | undefined, b: readonly number[]): boolean {
  return a !== undefined && a.length === b.length && a.every((v, k) => v === b[k]);
}

/** The given nodes and everything that (transitively) reads them. */
export function downstream(g: GraphState, ids: Iterable<number>): number[] {
  const seen = new Set<number>();
  const stack = [...ids].filter((id) => g.nodes[id] !== undefined);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    for (const d of g.dependents[id] ?? []) if (!seen.has(d)) stack.push(d);
  }
  return [...seen];
}

/**
 * The given nodes and everything they (transitively) read; `stop(id)` true keeps a node but does
 * not walk past it (a node whose cached value is current, say).
 */
export function upstream(g: GraphState, ids: Iterable<number>, stop: (id: number) => boolean = () => false): number[] {
  const seen = new Set<number>();
  const stack = [...ids].filter((id) => g.nodes[id] !== undefined);
  while (stack.length > 0) {
    const id = stack.pop()!;
    if (seen.has(id)) continue;
    seen.add(id);
    if (stop(id)) continue;
    for (const i of g.nodes[id]!.inputs) if (!seen.has(i)) stack.push(i);
  }
  return [...seen];
}

/** Topological order (inputs first) of a set of nodes; ties keep wiring (id) order. */
export function topoOrder(g: GraphState, ids: Iterable<number>): number[] {
  const set = new Set(ids);
  const indeg = new Map<number, number>();
  for (const id of set) indeg.set(id, new Set(g.nodes[id]!.inputs.filter((i) => set.has(i))).size);
  // Ids grow with wiring, so a node's inputs always have smaller ids: a sorted ready list is a
  // stable Kahn order.
  const ready = [...set].filter((id) => indeg.get(id) === 0).sort((a, b) => a - b);
  const out: number[] = [];
  while (ready.length > 0) {
    const id = ready.shift()!;
    out.push(id);
    for (const d of new Set(g.dependents[id] ?? [])) {
      if (!set.has(d)) continue;
      const k = indeg.get(d)! - 1;
      indeg.set(d, k);
      if (k === 0) {
        let at = ready.findIndex((r) => r > d);
        if (at < 0) at = ready.length;
        ready.splice(at, 0, d);
      }
    }
  }
  if (out.length !== set.size) throw new Error('graph: cycle among nodes ' + [...set].filter((id) => !out.includes(id)).join(', '));
  return out;
}

/** KeOps's name of a reduction with its parameters, e.g. `ArgKMin_Reduction(SqDist(...),K=3,axis=1)`. */
export function reductionString(r: ReductionRecord): string {
  const extra = [r.K !== undefined && r.K > 0 ? `K=${r.K}` : '', r.weight !== null ? `weight=${r.weight}` : '', `axis=${r.axis}`];
  return `${r.reduction}_Reduction(${[r.formula, ...extra.filter((s) => s !== '')].join(',')})`;
}

/**
 * A readable dump of the graph (or of the nodes `ids` and their inputs): one line per node in
 * topological order with its kind, label, shape or KeOps formula, inputs and version.
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
      ? Object.values(g.nodes)
          .filter((n) => n.lifted !== true || (g.dependents[n.id] ?? []).length > 0)
          .map((n) => n.id)
      : upstream(g, ids);
  const order = topoOrder(g, all);
  const lines = order.map((id) => {
    const n = g.nodes[id]!;
    const name = n.label === '' ? '' : ` '${n.label}'`;
    if (n.kind === 'source') {
      const shape = n.shape === undefined ? 'awaiting first frame' : `[${n.shape.join(', ')}] ${n.dtype ?? 'float32'}`;
      const tags = [n.stream === true ? 'stream' : '', n.lifted === true ? 'lifted' : ''].filter((s) => s !== '');
      return `#${id} source${name} ${shape}${tags.length > 0 ? ` (${tags.join(', ')})` : ''}  v${n.version}`;
    }
    const ins = n.inputs.map((i, v) => `Var(${v}) = #${i}`).join(', ');
    if (n.kind === 'reduction' && n.reduction !== undefined) {
      const out = n.reduction.output > 0 ? `[output ${n.reduction.output}]` : '';
      return `#${id} reduction${name} = ${reductionString(n.reduction)}${out}  ${ins}  v${n.version}`;
    }
    return `#${id} ${n.kind}${name}  inputs ${n.inputs.map((i) => `#${i}`).join(', ') || 'none'}  v${n.version}`;
  });
  return [`kernelflow graph: ${order.length} node${order.length === 1 ? '' : 's'}`, ...lines.map((l) => `  ${l}`)].join('\n');
}
