/**
 * The saved-pipeline format (`toJSON`'s output), checked before anything is built: every field's
 * type, the node kinds, ids and references, data values and the format version. Each problem is a
 * PipelineError giving the JSON path of the culprit (`$.nodes[2].data[1]`). `format` and `version`
 * may be left out of a hand-written file; when present they must be this format's.
 */
import { PipelineError } from '../errors.js';
import { show } from '../options.js';
import type { PipelineJSON } from './pipeline.js';

/** The format version this kernelflow reads and writes. */
export const PIPELINE_VERSION = 1;

type Obj = Record<string, unknown>;
type Check = (v: unknown, path: string) => void;

const fail = (path: string, msg: string): never => {
  throw new PipelineError(msg, path);
};

function object(v: unknown, path: string, what: string): Obj {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) fail(path, `expected ${what}, got ${show(v)}`);
  return v as Obj;
}

function array(v: unknown, path: string, what: string): unknown[] {
  if (!Array.isArray(v)) fail(path, `expected an array of ${what}, got ${show(v)}`);
  return v as unknown[];
}

const isInt = (v: unknown, min: number, max = Number.MAX_SAFE_INTEGER): boolean => typeof v === 'number' && Number.isInteger(v) && v >= min && v <= max;

const string: Check = (v, path) => {
  if (typeof v !== 'string') fail(path, `expected a string, got ${show(v)}`);
};
const boolean: Check = (v, path) => {
  if (typeof v !== 'boolean') fail(path, `expected true or false, got ${show(v)}`);
};
const intAtLeast =
  (min: number): Check =>
  (v, path) => {
    if (!isInt(v, min)) fail(path, `expected an integer >= ${min}, got ${show(v)}`);
  };
const oneOf =
  (...values: readonly unknown[]): Check =>
  (v, path) => {
    if (!values.includes(v)) fail(path, `expected one of ${values.map(show).join(', ')}, got ${show(v)}`);
  };
const ints =
  (min: number): Check =>
  (v, path) =>
    array(v, path, `integers >= ${min}`).forEach((x, k) => intAtLeast(min)(x, `${path}[${k}]`));
const strings: Check = (v, path) => array(v, path, 'strings').forEach((x, k) => string(x, `${path}[${k}]`));
const stringOrNull: Check = (v, path) => {
  if (v !== null) string(v, path);
};

/** Checks an object's fields: `required` must be there, nothing outside `required` and `optional` may be. */
function fields(o: Obj, path: string, required: Readonly<Record<string, Check>>, optional: Readonly<Record<string, Check>>): void {
  for (const [k, check] of Object.entries(required)) {
    if (!(k in o) || o[k] === undefined) fail(`${path}.${k}`, 'is missing');
    check(o[k], `${path}.${k}`);
  }
  for (const [k, v] of Object.entries(o)) {
    if (k in required) continue;
    const check = optional[k];
    if (check === undefined) fail(`${path}.${k}`, `unknown field '${k}' (known: ${[...Object.keys(required), ...Object.keys(optional)].join(', ')})`);
    else if (v !== undefined) check(v, `${path}.${k}`);
  }
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

/** A source's data: base64 of whole 4-byte (float64: 8-byte) values, or numbers of its dtype (JSON has no NaN: those need base64). */
function sourceData(o: Obj, path: string): void {
  const data = o.data;
  if (typeof data === 'string') {
    if (!BASE64.test(data) || data.length % 4 === 1) fail(`${path}.data`, 'is not base64');
    return;
  }
  const values = array(data, `${path}.data`, 'numbers (or a base64 string)');
  const int = o.dtype === 'int32';
  values.forEach((x, k) => {
    if (typeof x !== 'number') fail(`${path}.data[${k}]`, `expected a number, got ${show(x)}${x === null ? ' (JSON has no NaN or Infinity: save such data as base64)' : ''}`);
    if (int && !isInt(x, -(2 ** 31), 2 ** 31 - 1)) fail(`${path}.data[${k}]`, `expected an int32 value, got ${show(x)}`);
  });
}

const SOURCE_REQUIRED = { id: intAtLeast(0), kind: oneOf('source'), shape: ints(0), data: () => undefined };
const SOURCE_OPTIONAL = { label: string, dtype: oneOf('float32', 'float64', 'int32'), lifted: boolean };
const REDUCTION_REQUIRED = { id: intAtLeast(0), kind: oneOf('reduction'), formula: string, reduction: string, axis: oneOf(0, 1), inputs: ints(0) };
const REDUCTION_OPTIONAL = {
  label: string,
  aliases: strings,
  K: intAtLeast(1),
  weight: stringOrNull,
  backend: oneOf('auto', 'webgpu', 'cpu'),
  output: intAtLeast(0),
};

/**
 * Parses (when given text) and checks a saved pipeline; returns it typed. References are checked
 * too: ids are unique, a reduction reads only nodes defined before it, outputs name nodes.
 */
export function validatePipeline(json: unknown): PipelineJSON {
  let doc = json;
  if (typeof json === 'string') {
    try {
      doc = JSON.parse(json) as unknown;
    } catch (e) {
      throw Object.assign(new PipelineError(`not JSON: ${(e as Error).message}`, '$'), { cause: e });
    }
  }
  const root = object(doc, '$', 'a kernelflow pipeline { format, version, nodes, outputs }');
  fields(root, '$', { nodes: (v, p) => array(v, p, 'nodes') }, { format: oneOf('kernelflow-pipeline'), version: () => undefined, outputs: ints(0) });
  if (root.version !== undefined && root.version !== PIPELINE_VERSION) {
    fail('$.version', `unknown pipeline version ${show(root.version)}: this kernelflow reads version ${PIPELINE_VERSION}`);
  }
  const defined = new Set<number>();
  (root.nodes as unknown[]).forEach((n, k) => {
    const path = `$.nodes[${k}]`;
    const o = object(n, path, 'a node { id, kind, ... }');
    if (o.kind === 'source') {
      fields(o, path, SOURCE_REQUIRED, SOURCE_OPTIONAL);
      sourceData(o, path);
    } else if (o.kind === 'reduction') {
      fields(o, path, REDUCTION_REQUIRED, REDUCTION_OPTIONAL);
      (o.inputs as number[]).forEach((i, v) => {
        if (!defined.has(i)) fail(`${path}.inputs[${v}]`, `reduction ${String(o.id)} reads node ${i}, which is not defined before it`);
      });
    } else {
      fail(`${path}.kind`, `node ${show(o.id)}: unknown kind ${show(o.kind)} (a node is a 'source' or a 'reduction')`);
    }
    const id = o.id as number;
    if (defined.has(id)) fail(`${path}.id`, `duplicate node id ${id}`);
    defined.add(id);
  });
  ((root.outputs ?? []) as number[]).forEach((id, k) => {
    if (!defined.has(id)) fail(`$.outputs[${k}]`, `output ${id} is not a node of the pipeline`);
  });
  return root as unknown as PipelineJSON;
}
