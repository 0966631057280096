/**
 * Graph-based scripting: print a graph, save a pipeline (sources with their data, reductions as
 * KeOps formula strings) as JSON, and load it back as live nodes that compute the same values.
 */
import { DataError, KernelflowError, PipelineError } from '../errors.js';
import { formatGraph, topoOrder, upstream } from '../graph/state.js';
import { variables, type Formula } from '../graph/formula.js';
import type { BackendChoice } from '../scheduler/backends.js';
import { ReductionNode, reductionNodes } from '../nodes/reduction.js';
import type { ReductionSpec } from '../ops/reductions.js';
import { graphState, Node, nodeById } from '../nodes/node.js';
import { SourceNode } from '../nodes/source.js';
import { formulaToString, parseAliases, parseWithArguments, type Alias } from './parse.js';
import { checkTensor, type TensorLike } from '../tensor.js';
import { checkFromJSONOptions, checkToJSONOptions } from './options.js';
import { validatePipeline } from './pipeline-schema.js';

/**
 * A source in a saved pipeline: its data as base64 of the little-endian bytes, or as numbers.
 * @example
 * ```ts
 * import { fromJSON, type SourceJSON } from 'kernelflow';
 * const x: SourceJSON = { id: 0, kind: 'source', label: 'x', shape: [2, 1], data: [1, 2] };
 * const { sources } = fromJSON({ format: 'kernelflow-pipeline', version: 1, nodes: [x], outputs: [] });
 * console.log(sources[0]!.value); // { data: Float32Array [1, 2], shape: [2, 1] }
 * ```
 */
export interface SourceJSON {
  /** The node's id within the file (inputs refer to it). */
  readonly id: number;
  /** Marks a source. */
  readonly kind: 'source';
  /** The source's label. */
  readonly label?: string;
  /** The data's shape. */
  readonly shape: readonly number[];
  /** Default `'float32'`. */
  readonly dtype?: 'float32' | 'float64' | 'int32';
  /** Base64 of the little-endian bytes (what `toJSON` writes by default), or the numbers. */
  readonly data: string | readonly number[];
  /** Made implicitly by lifting dense data (`Vj(tensorLike)`, `Pm(0.5)`). */
  readonly lifted?: boolean;
}

/**
 * A reduction in a saved pipeline. `formula` is a KeOps formula string; without `aliases` its
 * variables are written `Var(index, dim, cat)` (variable v reads `inputs[v]`), with `aliases`
 * (`['x = Vi(3)', 'y = Vj(3)']`) alias k reads `inputs[k]`. As in genred, every alias and inline
 * `Var` is an argument that gives its extent (M or N), whether or not the formula reads it.
 * @example
 * ```ts
 * import { fromJSON, type ReductionJSON, type SourceJSON } from 'kernelflow';
 * const x: SourceJSON = { id: 0, kind: 'source', label: 'x', shape: [3, 1], data: [0, 1, 2] };
 * const sum: ReductionJSON = {
 *   id: 1, kind: 'reduction', formula: 'SqDist(a,b)', aliases: ['a = Vi(1)', 'b = Vj(1)'],
 *   reduction: 'Sum', axis: 1, inputs: [0, 0],
 * };
 * const { outputs } = fromJSON({ format: 'kernelflow-pipeline', version: 1, nodes: [x, sum], outputs: [1] });
 * console.log((await outputs[0]!.read()).data); // Float32Array [5, 2, 5]
 * ```
 */
export interface ReductionJSON {
  /** The node's id within the file. */
  readonly id: number;
  /** Marks a reduction. */
  readonly kind: 'reduction';
  /** A label (informative). */
  readonly label?: string;
  /** The KeOps formula string. */
  readonly formula: string;
  /** Alias declarations naming the inputs, in input order (optional). */
  readonly aliases?: readonly string[];
  /** The KeOps reduction name. */
  readonly reduction: string;
  /** 1 reduces over j, 0 over i. */
  readonly axis: 0 | 1;
  /** K of the KMin family. */
  readonly K?: number;
  /** The weight formula (SumSoftMaxWeight, weighted LogSumExp), or null. */
  readonly weight?: string | null;
  /** The backend to run on (overridden by `fromJSON`'s option). */
  readonly backend?: BackendChoice;
  /** Ids of the nodes the variables read, in variable (or alias) order. */
  readonly inputs: readonly number[];
  /** Which output of a pair reduction (1 = indices); default 0. */
  readonly output?: number;
}

/**
 * A saved pipeline, as `toJSON` writes it and `fromJSON` reads it (plain JSON).
 * @example
 * ```ts
 * import { source, Vi, Vj, toJSON, type PipelineJSON } from 'kernelflow';
 * const x = source(new Float32Array([0, 1, 2]), [3, 1], 'x');
 * const saved: PipelineJSON = toJSON([Vi(x).sqdist(Vj(x)).min(1)], { data: 'array' });
 * console.log(saved.nodes.map((n) => n.kind), saved.outputs); // ['source', 'reduction'] [1]
 * ```
 */
export interface PipelineJSON {
  /** Identifies the file format. */
  readonly format: 'kernelflow-pipeline';
  /** The format version. */
  readonly version: 1;
  /** Sources and reductions, each after the nodes it reads. */
  readonly nodes: readonly (SourceJSON | ReductionJSON)[];
  /** Ids of the nodes given to `toJSON`, in order. */
  readonly outputs: readonly number[];
}

/**
 * Live nodes rebuilt by `fromJSON`.
 * @example
 * ```ts
 * import { source, Vi, Vj, toJSON, fromJSON, type Pipeline } from 'kernelflow';
 * const x = source(new Float32Array([0, 1, 2]), [3, 1], 'x');
 * const p: Pipeline = fromJSON(JSON.stringify(toJSON([Vi(x).sqdist(Vj(x)).sum(1)])));
 * p.sources[0]!.set(new Float32Array([0, 0, 0]));     // feed new data to the copy
 * console.log((await p.outputs[0]!.read()).data);     // Float32Array [0, 0, 0]
 * ```
 */
export interface Pipeline {
  /** The saved outputs, in order. */
  readonly outputs: Node[];
  /** The sources, in file order (set() them to feed new data). */
  readonly sources: SourceNode[];
  /** Every rebuilt node by its id in the file. */
  readonly nodes: ReadonlyMap<number, Node>;
}

/**
 * A readable dump of the graph: every live node (or `nodes` and what they read), one per line in
 * topological order, reductions as KeOps formula strings, with each node's version.
 * @example
 * ```ts
 * import { source, Vi, Vj, printGraph } from 'kernelflow';
 * const x = source(new Float32Array(300), [100, 3], 'x');
 * const y = source(new Float32Array(600), [200, 3], 'y');
 * const energy = Vi(x).sqdist(Vj(y)).neg().exp().sum(1);
 * console.log(printGraph([energy]));
 * // kernelflow graph: 3 nodes
 * //   #0 source 'x' [100, 3] float32  v1
 * //   #1 source 'y' [200, 3] float32  v2
 * //   #2 reduction = Sum_Reduction(Exp(-SqDist(Var(0,3,0),Var(1,3,1))),axis=1)  Var(0) = #0, Var(1) = #1  v2
 * ```
 */
export function printGraph(nodes?: readonly Node[]): string {
  return formatGraph(graphState(), nodes?.map((n) => n.id));
}

function jsonError(msg: string): KernelflowError {
  return new KernelflowError('JSON', msg);
}

/**
 * Saves the pipeline that computes `nodes`: every node they read, sources with their current data
 * (base64 by default, `{ data: 'array' }` for plain numbers), reductions as KeOps formula strings.
 * Nodes computed by JavaScript functions (solves, gradient views) cannot be saved: that is a
 * KernelflowError naming the node.
 * @example
 * ```ts
 * import { source, Vi, Vj, toJSON, fromJSON } from 'kernelflow';
 * const x = source(new Float32Array([0, 0, 1, 1]), [2, 2], 'x');
 * const y = source(new Float32Array([0, 1, 1, 0, 3, 3]), [3, 2], 'y');
 * const energy = Vi(x).sqdist(Vj(y)).neg().exp().sum(1);
 * const [d, matches] = Vi(x).sqdist(Vj(y)).minArgmin(1);
 * const saved = JSON.stringify(toJSON([energy, matches]));
 * const { outputs: [e, m], sources } = fromJSON(saved);
 * console.log((await m!.read()).data, sources.map((s) => s.label)); // Int32Array [0, 0] ['x', 'y']
 * ```
 */
export function toJSON(nodes: readonly Node[], opts: { data?: 'base64' | 'array' } = {}): PipelineJSON {
  checkToJSONOptions(opts);
  const g = graphState();
  for (const n of nodes) if (n.disposed) throw jsonError(`${n.describe()} was disposed`);
  const order = topoOrder(g, upstream(g, nodes.map((n) => n.id)));
  const local = new Map(order.map((id, k) => [id, k]));
  const out = order.map((id): SourceJSON | ReductionJSON => {
    const rec = g.nodes.get(id)!;
    const k = local.get(id)!;
    if (rec.kind === 'source') {
      const node = nodeById(id);
      const value = node instanceof SourceNode ? node.value : undefined;
      if (value === undefined) throw jsonError(`source #${id} '${rec.label}' has no value to save`);
      return {
        id: k,
        kind: 'source',
        label: rec.label,
        shape: [...value.shape],
        dtype: value.data instanceof Int32Array ? 'int32' : value.data instanceof Float64Array ? 'float64' : 'float32',
        data: opts.data === 'array' ? Array.from(value.data) : toBase64(value.data),
        ...(rec.lifted === true ? { lifted: true } : {}),
      };
    }
    const r = rec.reduction;
    const live = nodeById(id);
    if (rec.kind !== 'reduction' || r === undefined || !(live instanceof ReductionNode)) {
      throw jsonError(`#${id} (${rec.label || rec.kind}) is computed by a JavaScript function and cannot be saved`);
    }
    // Never saved as the dense reduction it is not.
    if (live.ranges !== undefined) throw jsonError(`#${id} (${rec.label || rec.kind}) is a block-sparse reduction (ranges), which the pipeline format does not hold`);
    // The graph state holds a text for people (elided when long): print the live formula in full.
    const w = live.spec.weight ?? null;
    // Inputs the formula does not read still give extents: they are saved as aliases.
    const decls = live.decls?.some((d, i) => d !== undefined && !readsArgument([live.formula, w], i)) === true ? live.decls : undefined;
    const aliases = decls?.flatMap((d, i) => (d === undefined ? [] : [`v${i} = Var(${i},${d.dim},${d.cat})`]));
    return {
      id: k,
      kind: 'reduction',
      ...(rec.label === '' ? {} : { label: rec.label }),
      formula: formulaToString(live.formula),
      ...(aliases === undefined ? {} : { aliases }),
      reduction: r.reduction,
      axis: r.axis,
      ...(r.K === undefined ? {} : { K: r.K }),
      weight: w === null ? null : formulaToString(w),
      ...(r.backend === undefined ? {} : { backend: r.backend as BackendChoice }),
      inputs: rec.inputs.map((i) => local.get(i)!),
      ...(r.output === 0 ? {} : { output: r.output }),
    };
  });
  return { format: 'kernelflow-pipeline', version: 1, nodes: out, outputs: nodes.map((n) => local.get(n.id)!) };
}

/**
 * Rebuilds live nodes from `toJSON`'s output (an object or its JSON text). The file is checked
 * first, field by field (src/api/pipeline-schema.ts): a malformed one is a `PipelineError` (code
 * `'JSON'`) giving the JSON path of the culprit, and nothing is built. Reductions are parsed
 * from their formula strings; identical reductions over the same inputs share one kernel run (the
 * two outputs of a pair reduction stay one dispatch). `backend` overrides the saved backends.
 * The rebuilt sources are new nodes: setting them does not touch the originals.
 * @example
 * ```ts
 * import { source, Vi, Vj, toJSON, fromJSON } from 'kernelflow';
 * const x = source(new Float32Array([0, 1, 2]), [3, 1], 'x');
 * const text = JSON.stringify(toJSON([Vi(x).sqdist(Vj(x)).max(1)]));
 * const { outputs: [far] } = fromJSON(text, { backend: 'cpu' });
 * console.log((await far!.read()).data); // Float32Array [4, 1, 4]
 * ```
 */
export function fromJSON(json: PipelineJSON | string, opts: { backend?: BackendChoice } = {}): Pipeline {
  checkFromJSONOptions(opts);
  const p = validatePipeline(json);
  const nodes = new Map<number, Node>();
  const sources: SourceNode[] = [];
  const groups = new Map<string, Node[]>();
  const built: Node[] = [];
  try {
    p.nodes.forEach((n, k) => {
      if (n.kind === 'source') {
        const s = new SourceNode(decodeSource(n, `$.nodes[${k}]`), n.label ?? 'source', n.lifted === true ? { lifted: true } : {});
        built.push(s);
        sources.push(s);
        nodes.set(n.id, s);
        return;
      }
      const inputs = n.inputs.map((i) => nodes.get(i)!);
      const aliases: Alias[] = n.aliases === undefined ? [] : parseAliases(n.aliases);
      // Every alias and inline Var is an argument, read by the simplified formula or not (pykeops's extents).
      const {
        formulas: [formula, parsedWeight],
        args,
      } = parseWithArguments([n.formula, n.weight ?? undefined], aliases);
      const weight = parsedWeight ?? null;
      if (args.length > inputs.length) {
        throw new PipelineError(`the formula has ${args.length} arguments (${args.map((a, i) => a?.name ?? `argument ${i} unused`).join(', ')}) but inputs lists ${inputs.length}`, `$.nodes[${k}].inputs`);
      }
      const decls = args.some((a, i) => a !== undefined && !readsArgument([formula!, weight], i)) ? args : undefined;
      const backend = opts.backend ?? n.backend;
      const spec: ReductionSpec = {
        reduction: n.reduction,
        axis: n.axis,
        ...(n.K === undefined ? {} : { K: n.K }),
        weight,
      };
      const key = JSON.stringify([formula!.key, spec.reduction, spec.axis, spec.K, weight?.key, backend, n.inputs, decls?.map((d) => d && [d.dim, d.cat])]);
      let outs = groups.get(key);
      if (outs === undefined) {
        outs = reductionNodes(formula!, inputs, spec, backend, decls);
        built.push(...outs);
        groups.set(key, outs);
      }
      const out = outs[n.output ?? 0];
      if (out === undefined) throw new PipelineError(`${n.reduction} has no output ${String(n.output)}`, `$.nodes[${k}].output`);
      nodes.set(n.id, out);
    });
  } catch (e) {
    for (const b of built) b.dispose();
    throw e;
  }
  const outputs = (p.outputs ?? []).map((id) => nodes.get(id)!);
  return { outputs, sources, nodes };
}

function decodeSource(n: SourceJSON, path: string): TensorLike {
  const dtype = n.dtype ?? 'float32';
  let data: Float32Array | Float64Array | Int32Array;
  const size = dtype === 'float64' ? 8 : 4;
  if (typeof n.data === 'string') {
    const bytes = fromBase64(n.data);
    if (bytes.byteLength % size !== 0) throw new PipelineError(`${bytes.byteLength} bytes is not a whole number of ${size}-byte values`, `${path}.data`);
    const buf = new ArrayBuffer(bytes.byteLength);
    new Uint8Array(buf).set(bytes);
    data = dtype === 'int32' ? new Int32Array(buf) : dtype === 'float64' ? new Float64Array(buf) : new Float32Array(buf);
  } else {
    data = dtype === 'int32' ? Int32Array.from(n.data) : dtype === 'float64' ? Float64Array.from(n.data) : Float32Array.from(n.data);
  }
  try {
    return checkTensor({ data, shape: [...n.shape] }, 'source');
  } catch (e) {
    throw new PipelineError(e instanceof DataError ? e.message.replace(/^source: /, '') : String(e), `${path}.data`);
  }
}

/** Base64 of the bytes of a typed array (little-endian on every platform kernelflow runs on). */
function toBase64(a: Float32Array | Float64Array | Int32Array): string {
  const bytes = new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  const B = (globalThis as { Buffer?: { from(b: Uint8Array): { toString(enc: string): string } } }).Buffer;
  if (B !== undefined) return B.from(bytes).toString('base64');
  let s = '';
  for (let k = 0; k < bytes.length; k += 0x8000) s += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
  return btoa(s);
}

function fromBase64(s: string): Uint8Array {
  const B = (globalThis as { Buffer?: { from(s: string, enc: string): Uint8Array } }).Buffer;
  if (B !== undefined) return new Uint8Array(B.from(s, 'base64'));
  const bin = atob(s);
  return Uint8Array.from(bin, (c) => c.charCodeAt(0));
}

/** Whether the formulas read variable `index`. */
function readsArgument(formulas: readonly (Formula | null)[], index: number): boolean {
  return formulas.some((f) => f !== null && variables(f).some((v) => v.index === index));
}
