/**
 * The pipeline file a person writes by hand (docs/cli.md):
 *
 * ```json
 * {
 *   "version": 1,
 *   "inputs": { "x": { "dim": 3 }, "y": { "dim": 3, "file": "ref.pcd" }, "g": { "value": [50] } },
 *   "outputs": {
 *     "match": { "formula": "SqDist(p,q)", "aliases": ["p = Vi(x)", "q = Vj(y)"],
 *                "reduction": "Min_ArgMin", "axis": 1, "names": ["d2", "nn"] },
 *     "density": { "formula": "Exp(-g*SqDist(p,q))", "aliases": ["p = Vi(x)", "q = Vj(x)", "g = Pm(g)"],
 *                  "reduction": "Sum", "axis": 1 }
 *   }
 * }
 * ```
 *
 * An alias `p = Vi(x)` binds formula variable `p` to input (or earlier result) `x` as an
 * i-variable (`Vj` j-variable, `Pm` parameter), with the dimension of `x`; `x = Vi(3)` binds the
 * input of the alias's own name and checks its dimension, as in genred. Validation errors are
 * PipelineFileErrors giving the JSON path of the problem (`outputs.match.K`). The file may also be
 * what `toJSON` saved (`"format": "kernelflow-pipeline"`): its labelled sources are the inputs.
 */
import type { PipelineJSON } from '../index.js';
import { PipelineFileError } from './errors.js';

/** A declared input: data from a file (`--input`, or `file` here) or a constant `value`. */
export interface InputSpec {
  readonly name: string;
  /** Row width; when absent, taken from the data. */
  readonly dim?: number;
  /** Default data file (relative to the pipeline file), with an optional `:attribute`. */
  readonly file?: string;
  /** A constant (a parameter such as a bandwidth): shape [1, value.length]. */
  readonly value?: readonly number[];
  /** What the input is (for inspect and docs). */
  readonly description?: string;
}

/** One variable of a formula: alias name, category and what it reads. */
export interface AliasSpec {
  readonly alias: string;
  readonly cat: 'Vi' | 'Vj' | 'Pm';
  /** The input or result it reads. */
  readonly ref: string;
  /** A dimension written in the alias (`x = Vi(3)`), checked against the data. */
  readonly dim?: number;
  /** JSON path of the alias, for messages. */
  readonly path: string;
}

/** A declared output: one reduction, one result (two for a pair reduction). */
export interface OutputSpec {
  readonly key: string;
  /** The result names: one, or `[values, indices]` for Min_ArgMin, Max_ArgMax, KMin_ArgKMin. */
  readonly names: readonly string[];
  readonly formula: string;
  readonly formula2?: string;
  readonly aliases: readonly AliasSpec[];
  readonly reduction: string;
  readonly axis: 0 | 1;
  readonly K?: number;
  readonly backend?: 'auto' | 'cpu' | 'webgpu';
}

/** A validated hand-written pipeline, or a saved one. */
export type PipelineSpec =
  | { readonly kind: 'spec'; readonly file: string; readonly description?: string; readonly inputs: readonly InputSpec[]; readonly outputs: readonly OutputSpec[] }
  | { readonly kind: 'saved'; readonly file: string; readonly json: PipelineJSON };

/** The KeOps reductions, and which have two results. */
export const REDUCTIONS = ['Sum', 'LogSumExp', 'Min', 'Max', 'ArgMin', 'ArgMax', 'Min_ArgMin', 'Max_ArgMax', 'KMin', 'ArgKMin', 'KMin_ArgKMin', 'SumSoftMaxWeight'];
const PAIRS = new Set(['Min_ArgMin', 'Max_ArgMax', 'KMin_ArgKMin']);
const NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
type Obj = { [k: string]: Json };

const isObj = (v: Json | undefined): v is Obj => typeof v === 'object' && v !== null && !Array.isArray(v);
/** `a.b` or `a["odd key"]`. */
const at = (path: string, key: string): string => (NAME.test(key) ? `${path}.${key}` : `${path}[${JSON.stringify(key)}]`);

/** Parses and validates a pipeline file's text. */
export function parsePipeline(file: string, text: string): PipelineSpec {
  const fail = (path: string, msg: string): never => {
    throw new PipelineFileError(file, path, msg);
  };
  let root: Json;
  try {
    root = JSON.parse(text) as Json;
  } catch (e) {
    const msg = (e as Error).message;
    const pos = /position (\d+)/.exec(msg);
    let where = '';
    if (pos !== null) {
      const before = text.slice(0, Number(pos[1]));
      where = ` (line ${before.split('\n').length}, column ${before.length - before.lastIndexOf('\n')})`;
    }
    return fail('$', `not valid JSON${where}: ${msg}`);
  }
  if (!isObj(root)) return fail('$', 'expected a JSON object { "version": 1, "inputs": {...}, "outputs": {...} }');
  if (root.format === 'kernelflow-pipeline') {
    if (!Array.isArray(root.nodes)) fail('$.nodes', 'a saved pipeline (toJSON) needs a "nodes" array');
    return { kind: 'saved', file, json: root as unknown as PipelineJSON };
  }
  if (root.format !== undefined) fail('$.format', `unknown format ${JSON.stringify(root.format)} (a hand-written pipeline has none; toJSON writes "kernelflow-pipeline")`);
  checkKeys(root, '$', ['version', 'description', 'inputs', 'outputs'], fail);
  if (root.version !== 1) fail('$.version', `expected 1, got ${JSON.stringify(root.version ?? null)}`);
  if (root.description !== undefined && typeof root.description !== 'string') fail('$.description', 'expected a string');
  const inputsJ = root.inputs;
  if (!isObj(inputsJ) || Object.keys(inputsJ).length === 0) fail('$.inputs', 'expected an object of named inputs, e.g. { "x": { "dim": 3 } }');
  const inputs = Object.entries(inputsJ as Obj).map(([name, v]) => parseInput(name, v, at('$.inputs', name), fail));
  const outputsJ = root.outputs;
  if (!isObj(outputsJ) || Object.keys(outputsJ).length === 0) fail('$.outputs', 'expected an object of named outputs, e.g. { "nn": { "formula": ..., "reduction": ... } }');
  const outputs = Object.entries(outputsJ as Obj).map(([key, v]) => parseOutput(key, v, at('$.outputs', key), fail));
  checkNames(inputs, outputs, fail);
  return {
    kind: 'spec',
    file,
    ...(typeof root.description === 'string' ? { description: root.description } : {}),
    inputs,
    outputs: order(outputs, inputs, fail),
  };
}

type Fail = (path: string, msg: string) => never;

function checkKeys(o: Obj, path: string, allowed: readonly string[], fail: Fail): void {
  for (const k of Object.keys(o)) if (!allowed.includes(k)) fail(at(path, k), `unknown key (allowed: ${allowed.join(', ')})`);
}

function posInt(v: Json | undefined, path: string, fail: Fail): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < 1) fail(path, `expected a positive integer, got ${JSON.stringify(v ?? null)}`);
  return v as number;
}

function parseInput(name: string, v: Json, path: string, fail: Fail): InputSpec {
  if (!NAME.test(name)) fail(path, 'an input name must be an identifier (letters, digits, _; not starting with a digit)');
  if (!isObj(v)) return fail(path, 'expected an object such as { "dim": 3 }');
  checkKeys(v, path, ['dim', 'file', 'value', 'description'], fail);
  const dim = v.dim === undefined ? undefined : posInt(v.dim, `${path}.dim`, fail);
  if (v.file !== undefined && (typeof v.file !== 'string' || v.file === '')) fail(`${path}.file`, 'expected a file name (relative to the pipeline file)');
  let value: number[] | undefined;
  if (v.value !== undefined) {
    const arr = typeof v.value === 'number' ? [v.value] : v.value;
    if (!Array.isArray(arr) || arr.length === 0 || arr.some((x) => typeof x !== 'number' || !Number.isFinite(x))) {
      fail(`${path}.value`, 'expected a number or a non-empty array of numbers');
    }
    value = arr as number[];
    if (dim !== undefined && dim !== value.length) fail(`${path}.value`, `has ${value.length} numbers but dim is ${dim}`);
    if (v.file !== undefined) fail(path, "give either 'value' or 'file', not both");
  }
  if (v.description !== undefined && typeof v.description !== 'string') fail(`${path}.description`, 'expected a string');
  return {
    name,
    ...(dim === undefined ? (value === undefined ? {} : { dim: value.length }) : { dim }),
    ...(typeof v.file === 'string' ? { file: v.file } : {}),
    ...(value === undefined ? {} : { value }),
    ...(typeof v.description === 'string' ? { description: v.description } : {}),
  };
}

const ALIAS = /^\s*([A-Za-z_]\w*)\s*=\s*(Vi|Vj|Pm)\s*\(\s*([^()]*?)\s*\)\s*$/;

function parseAlias(s: Json, path: string, fail: Fail): AliasSpec {
  if (typeof s !== 'string') return fail(path, 'expected an alias string such as "p = Vi(x)"');
  const m = ALIAS.exec(s);
  if (m === null) return fail(path, `'${s}' is not an alias: write NAME = Vi(INPUT), Vj(INPUT) or Pm(INPUT) (or NAME = Vi(DIM) for the input NAME)`);
  const [, alias, cat, arg] = m as unknown as [string, string, 'Vi' | 'Vj' | 'Pm', string];
  if (NAME.test(arg)) return { alias, cat, ref: arg, path };
  const nums = arg.split(',').map((t) => Number(t.trim()));
  if (nums.length > 2 || nums.some((x) => !Number.isInteger(x) || x < 0) || nums[nums.length - 1] === 0) {
    return fail(path, `'${s}': the argument of ${cat} is an input name, a dimension, or 'index, dimension'`);
  }
  return { alias, cat, ref: alias, dim: nums[nums.length - 1]!, path };
}

function parseOutput(key: string, v: Json, path: string, fail: Fail): OutputSpec {
  if (!NAME.test(key)) fail(path, 'an output name must be an identifier (letters, digits, _; not starting with a digit)');
  if (!isObj(v)) return fail(path, 'expected an object with formula, aliases, reduction and axis');
  checkKeys(v, path, ['formula', 'aliases', 'reduction', 'axis', 'dim', 'K', 'formula2', 'names', 'backend', 'description'], fail);
  if (typeof v.formula !== 'string' || v.formula.trim() === '') fail(`${path}.formula`, 'expected a KeOps formula string, e.g. "Exp(-g*SqDist(x,y))"');
  if (!Array.isArray(v.aliases) || v.aliases.length === 0) fail(`${path}.aliases`, 'expected a list of aliases, e.g. ["p = Vi(x)", "q = Vj(y)"]');
  const aliases = (v.aliases as Json[]).map((a, k) => parseAlias(a, `${path}.aliases[${k}]`, fail));
  aliases.forEach((a, k) => {
    if (aliases.findIndex((b) => b.alias === a.alias) !== k) fail(a.path, `alias name '${a.alias}' is declared twice`);
  });
  const reduction = v.reduction;
  if (typeof reduction !== 'string' || !REDUCTIONS.includes(reduction)) {
    fail(`${path}.reduction`, `expected one of ${REDUCTIONS.join(', ')}; got ${JSON.stringify(reduction ?? null)}`);
  }
  const r = reduction as string;
  // pykeops's `dim` is accepted for `axis`.
  if (v.axis !== undefined && v.dim !== undefined && v.axis !== v.dim) {
    fail(`${path}.dim`, `'axis' (${JSON.stringify(v.axis)}) and its pykeops name 'dim' (${JSON.stringify(v.dim)}) disagree`);
  }
  const axisKey = v.axis === undefined && v.dim !== undefined ? 'dim' : 'axis';
  const axis = v.axis ?? v.dim;
  if (axis !== 0 && axis !== 1) fail(`${path}.${axisKey}`, `expected 1 (reduce over j: one row per i point) or 0 (over i); got ${JSON.stringify(axis ?? null)}`);
  const kFamily = r === 'KMin' || r === 'ArgKMin' || r === 'KMin_ArgKMin';
  if (kFamily) posInt(v.K, `${path}.K`, fail);
  else if (v.K !== undefined) fail(`${path}.K`, `K applies to KMin, ArgKMin and KMin_ArgKMin, not ${r}`);
  if (v.formula2 !== undefined && (typeof v.formula2 !== 'string' || (r !== 'SumSoftMaxWeight' && r !== 'LogSumExp'))) {
    fail(`${path}.formula2`, typeof v.formula2 !== 'string' ? 'expected a formula string' : `formula2 (the weight) applies to SumSoftMaxWeight and LogSumExp, not ${r}`);
  }
  if (r === 'SumSoftMaxWeight' && v.formula2 === undefined) fail(`${path}.formula2`, 'SumSoftMaxWeight needs formula2, the weight it averages');
  let names: string[] = [key];
  if (PAIRS.has(r)) {
    names = [`${key}_values`, `${key}_indices`];
    if (v.names !== undefined) {
      const ok = Array.isArray(v.names) && v.names.length === 2 && v.names.every((n) => typeof n === 'string' && NAME.test(n)) && v.names[0] !== v.names[1];
      if (!ok) fail(`${path}.names`, `${r} has two results: expected two distinct names [values, indices]`);
      names = v.names as string[];
    }
  } else if (v.names !== undefined) fail(`${path}.names`, `'names' is for the pair reductions (Min_ArgMin, Max_ArgMax, KMin_ArgKMin); ${r} has one result, named '${key}'`);
  if (v.backend !== undefined && v.backend !== 'auto' && v.backend !== 'cpu' && v.backend !== 'webgpu') fail(`${path}.backend`, 'expected auto, cpu or webgpu');
  if (v.description !== undefined && typeof v.description !== 'string') fail(`${path}.description`, 'expected a string');
  return {
    key,
    names,
    formula: v.formula as string,
    ...(typeof v.formula2 === 'string' ? { formula2: v.formula2 } : {}),
    aliases,
    reduction: r,
    axis: axis as 0 | 1,
    ...(kFamily ? { K: v.K as number } : {}),
    ...(typeof v.backend === 'string' ? { backend: v.backend as 'auto' | 'cpu' | 'webgpu' } : {}),
  };
}

/** Result and input names are one namespace; every alias reads a known one. */
function checkNames(inputs: readonly InputSpec[], outputs: readonly OutputSpec[], fail: Fail): void {
  const known = new Set(inputs.map((i) => i.name));
  for (const o of outputs) {
    for (const n of o.names) {
      if (known.has(n)) fail(at('$.outputs', o.key), `result name '${n}' is already an input or result name`);
      known.add(n);
    }
  }
  for (const o of outputs) {
    for (const a of o.aliases) {
      if (!known.has(a.ref)) {
        const list = [...known].join(', ');
        fail(a.path, a.dim === undefined ? `'${a.ref}' is not an input or result (known: ${list})` : `alias '${a.alias}' = ${a.cat}(${a.dim}) reads the input of its own name, and there is no input or result '${a.ref}' (known: ${list}); write ${a.alias} = ${a.cat}(INPUT)`);
      }
    }
  }
}

/** Outputs ordered so that each comes after the results its aliases read; a cycle is an error. */
function order(outputs: readonly OutputSpec[], inputs: readonly InputSpec[], fail: Fail): OutputSpec[] {
  const producer = new Map<string, OutputSpec>();
  for (const o of outputs) for (const n of o.names) producer.set(n, o);
  const inputNames = new Set(inputs.map((i) => i.name));
  const done = new Set<OutputSpec>();
  const visiting = new Set<OutputSpec>();
  const out: OutputSpec[] = [];
  const visit = (o: OutputSpec, chain: readonly string[]): void => {
    if (done.has(o)) return;
    if (visiting.has(o)) fail(at('$.outputs', o.key), `outputs read each other in a cycle: ${[...chain, o.key].join(' -> ')}`);
    visiting.add(o);
    for (const a of o.aliases) {
      if (inputNames.has(a.ref)) continue;
      const p = producer.get(a.ref);
      if (p !== undefined) visit(p, [...chain, o.key]);
    }
    visiting.delete(o);
    done.add(o);
    out.push(o);
  };
  for (const o of outputs) visit(o, []);
  return out;
}
