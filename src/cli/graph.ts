/**
 * Builds the live graph of a pipeline through the public API: a hand-written pipeline becomes a
 * `PipelineJSON` (one labelled source per input, one reduction node per result, formulas as
 * written, aliases with their dimensions) that `fromJSON` turns into nodes; a saved one is given
 * to `fromJSON` as it is. Sources are then fed with `set()`.
 */
import { DimensionError, fromJSON, KernelflowError, ParseError, ReductionError, type Node, type Pipeline, type PipelineJSON, type ReductionJSON, type SourceJSON, type SourceNode } from '../index.js';
import { PipelineFileError } from './errors.js';
import type { OutputSpec, PipelineSpec } from './pipeline-file.js';

/** A pipeline input as the command sees it: a labelled source. */
export interface InputInfo {
  readonly name: string;
  readonly dim?: number;
  /** Data file to read when no `--input` is given (resolved by the caller). */
  readonly file?: string;
  /** Constant value (hand-written `value`). */
  readonly value?: readonly number[];
  /** A saved pipeline's own data for this source. */
  readonly saved?: boolean;
}

/** The inputs of a pipeline, before any data is read. */
export function inputsOf(spec: PipelineSpec): InputInfo[] {
  if (spec.kind === 'spec') return spec.inputs.map((i) => ({ ...i }));
  return spec.json.nodes
    .filter((n): n is SourceJSON => n.kind === 'source' && n.lifted !== true && n.label !== undefined)
    .map((n) => ({ name: n.label!, dim: n.shape[n.shape.length - 1] ?? 1, saved: true }));
}

/** The live graph. */
export interface Built {
  /** Sources by input name (their label). */
  readonly sources: ReadonlyMap<string, SourceNode>;
  /** The results, in output order (a pair reduction gives two). */
  readonly results: readonly { readonly name: string; readonly node: Node; readonly key: string }[];
  /** Every node, to dispose. */
  dispose(): void;
}

/** `$.outputs.key` and the field a formula error belongs to. */
function pathOf(o: OutputSpec, e: unknown): string {
  const base = `$.outputs.${o.key}`;
  if (e instanceof ParseError) return e.source === o.formula2 ? `${base}.formula2` : e.source === o.formula ? `${base}.formula` : `${base}.aliases`;
  if (e instanceof DimensionError) return o.formula2 !== undefined && e.message.includes(`'${o.formula2}'`) ? `${base}.formula2` : `${base}.formula`;
  if (e instanceof ReductionError) return /\bK\b/.test(e.message) ? `${base}.K` : `${base}.reduction`;
  return base;
}

/**
 * Builds a hand-written pipeline's graph. `dims` gives each input's row width (declared, or read
 * from its data); results' widths are found by building each output in order.
 */
function buildSpec(spec: Extract<PipelineSpec, { kind: 'spec' }>, dims: ReadonlyMap<string, number>, backend: 'cpu' | 'webgpu' | undefined): Built {
  const nodes: (SourceJSON | ReductionJSON)[] = [];
  const ids = new Map<string, number>();
  const width = new Map<string, number>();
  for (const i of spec.inputs) {
    const dim = dims.get(i.name) ?? i.dim;
    if (dim === undefined) throw new PipelineFileError(spec.file, `$.inputs.${i.name}.dim`, 'unknown: give "dim", or data with --input');
    ids.set(i.name, nodes.length);
    width.set(i.name, dim);
    nodes.push({ id: nodes.length, kind: 'source', label: i.name, shape: i.value === undefined ? [0, dim] : [1, dim], data: i.value ?? [] });
  }
  const resultIds: { name: string; id: number; key: string }[] = [];
  for (const o of spec.outputs) {
    const aliases = o.aliases.map((a) => {
      const dim = width.get(a.ref)!;
      if (a.dim !== undefined && a.dim !== dim) {
        throw new PipelineFileError(spec.file, a.path, `${a.cat}(${a.dim}) but '${a.ref}' has dimension ${dim}${ids.get(a.ref)! < spec.inputs.length ? ' (its data)' : ''}`);
      }
      return `${a.alias} = ${a.cat}(${dim})`;
    });
    const mine = o.names.map((name, k): ReductionJSON => ({
      id: nodes.length + k,
      kind: 'reduction',
      label: name,
      formula: o.formula,
      aliases,
      reduction: o.reduction,
      axis: o.axis,
      ...(o.K === undefined ? {} : { K: o.K }),
      weight: o.formula2 ?? null,
      ...(o.backend === undefined ? {} : { backend: o.backend }),
      inputs: o.aliases.map((a) => ids.get(a.ref)!),
      ...(k === 0 ? {} : { output: k }),
    }));
    nodes.push(...mine);
    // Build what we have so far: formula errors belong to this output, and later aliases need its width.
    let trial: Pipeline;
    try {
      trial = fromJSON({ format: 'kernelflow-pipeline', version: 1, nodes, outputs: mine.map((m) => m.id) }, backend === undefined ? {} : { backend });
    } catch (e) {
      if (e instanceof KernelflowError) throw new PipelineFileError(spec.file, pathOf(o, e), e.message);
      throw e;
    }
    trial.outputs.forEach((n, k) => width.set(o.names[k]!, n.dim));
    for (const s of trial.sources) s.dispose();
    o.names.forEach((name, k) => {
      ids.set(name, mine[k]!.id);
      resultIds.push({ name, id: mine[k]!.id, key: o.key });
    });
  }
  const json: PipelineJSON = { format: 'kernelflow-pipeline', version: 1, nodes, outputs: resultIds.map((r) => r.id) };
  const p = fromJSON(json, backend === undefined ? {} : { backend });
  return {
    sources: new Map(p.sources.map((s) => [s.label, s])),
    results: resultIds.map((r, k) => ({ name: r.name, node: p.outputs[k]!, key: r.key })),
    dispose: () => p.sources.forEach((s) => s.dispose()),
  };
}

/** Builds a saved (toJSON) pipeline's graph. */
function buildSaved(spec: Extract<PipelineSpec, { kind: 'saved' }>, backend: 'cpu' | 'webgpu' | undefined): Built {
  let p: Pipeline;
  try {
    p = fromJSON(spec.json, backend === undefined ? {} : { backend });
  } catch (e) {
    if (e instanceof KernelflowError || e instanceof TypeError) throw new PipelineFileError(spec.file, '$.nodes', e.message);
    throw e;
  }
  const labelOf = new Map(spec.json.nodes.map((n) => [n.id, n.label]));
  const used = new Set<string>();
  const results = spec.json.outputs.map((id, k) => {
    let name = labelOf.get(id) ?? `output${k}`;
    if (used.has(name)) name = `${name}_${k}`;
    used.add(name);
    return { name, node: p.outputs[k]!, key: name };
  });
  const sources = new Map<string, SourceNode>();
  for (const s of p.sources) if (!sources.has(s.label)) sources.set(s.label, s);
  return { sources, results, dispose: () => p.sources.forEach((s) => s.dispose()) };
}

/** Builds the graph of a pipeline; `backend` (when not 'auto') overrides the file's backends. */
export function buildGraph(spec: PipelineSpec, dims: ReadonlyMap<string, number>, backend: 'auto' | 'cpu' | 'webgpu'): Built {
  const b = backend === 'auto' ? undefined : backend;
  return spec.kind === 'spec' ? buildSpec(spec, dims, b) : buildSaved(spec, b);
}
