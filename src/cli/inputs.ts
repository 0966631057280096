/**
 * Where each input's data comes from (`--input`, `--param`, the pipeline's `file` or `value`, a
 * saved pipeline's own data) and reading it into a float32 `[n, d]` tensor.
 */
import { dirname, isAbsolute, relative, resolve } from 'node:path';
import type { TensorLike } from '../index.js';
import type { InputArg, ParamArg } from './args.js';
import { DataFileError, UsageError } from './errors.js';
import { readTable, select } from './formats/index.js';
import { parseInput } from './args.js';
import type { InputInfo } from './graph.js';

/** The data source of one input. */
export type Origin =
  | { readonly kind: 'file'; readonly file: string; readonly attribute?: string }
  | { readonly kind: 'value'; readonly values: readonly number[] }
  | { readonly kind: 'saved' };

/** An input with the origin of its data. */
export interface Planned {
  readonly info: InputInfo;
  readonly origin: Origin;
}

/** A file named in the pipeline file: relative to it, shown relative to the working directory. */
function near(pipelineFile: string, file: string): string {
  if (isAbsolute(file)) return file;
  const abs = resolve(dirname(pipelineFile), file);
  const rel = relative(process.cwd(), abs);
  return rel === '' || rel.startsWith('..') ? abs : rel;
}

/** Matches `--input` and `--param` to the pipeline's inputs (by name, the sources' labels). */
export function planInputs(pipelineFile: string, inputs: readonly InputInfo[], args: readonly InputArg[], params: readonly ParamArg[], need: 'all' | 'any'): Planned[] {
  const names = inputs.map((i) => i.name);
  for (const a of [...args, ...params]) {
    if (!names.includes(a.name)) {
      const flag = 'file' in a ? '--input' : '--param';
      throw new UsageError(`${flag} ${a.name}: the pipeline has no input '${a.name}' (its inputs: ${names.join(', ') || 'none'})`);
    }
  }
  for (const p of params) {
    if (args.some((a) => a.name === p.name)) throw new UsageError(`input '${p.name}' is given both by --input and --param`);
  }
  const planned: Planned[] = [];
  for (const info of inputs) {
    const arg = args.find((a) => a.name === info.name);
    const param = params.find((p) => p.name === info.name);
    let origin: Origin | undefined;
    if (arg !== undefined) origin = { kind: 'file', file: arg.file, ...(arg.attribute === undefined ? {} : { attribute: arg.attribute }) };
    else if (param !== undefined) origin = { kind: 'value', values: param.values };
    else if (info.file !== undefined) {
      const f = parseInput(`${info.name}=${info.file}`);
      origin = { kind: 'file', file: near(pipelineFile, f.file), ...(f.attribute === undefined ? {} : { attribute: f.attribute }) };
    } else if (info.value !== undefined) origin = { kind: 'value', values: info.value };
    else if (info.saved === true) origin = { kind: 'saved' };
    if (origin === undefined) {
      if (need === 'any') continue;
      throw new UsageError(`input '${info.name}' has no data: give --input ${info.name}=FILE (the pipeline declares no file for it)`);
    }
    planned.push({ info, origin });
  }
  return planned;
}

/** What an input's data was read from, for messages (`scan.ply:normal`). */
export function describeOrigin(o: Origin): string {
  if (o.kind === 'file') return o.attribute === undefined ? o.file : `${o.file}:${o.attribute}`;
  return o.kind === 'value' ? `value [${o.values.join(', ')}]` : 'the pipeline file';
}

/** Loaded input data. */
export interface Loaded {
  readonly name: string;
  readonly tensor: TensorLike;
  /** The columns taken (`x, y, z`), for messages. */
  readonly columns: readonly string[];
  readonly origin: Origin;
}

/**
 * Reads one planned input. A file's attribute is selected (default: position, else every
 * column); its width must match a declared `dim`.
 */
export async function loadInput(p: Planned, pipelineFile: string): Promise<Loaded | undefined> {
  const o = p.origin;
  if (o.kind === 'saved') return undefined;
  if (o.kind === 'value') {
    const t = { data: Float32Array.from(o.values), shape: [1, o.values.length] };
    if (p.info.dim !== undefined && p.info.dim !== o.values.length) {
      throw new UsageError(`input '${p.info.name}' has dim ${p.info.dim} in ${pipelineFile}, but its value has ${o.values.length} numbers`);
    }
    return { name: p.info.name, tensor: t, columns: [], origin: o };
  }
  const table = await readTable(o.file);
  const sel = select(table, o.attribute);
  const d = sel.shape[1]!;
  if (p.info.dim !== undefined && p.info.dim !== d) {
    throw new DataFileError(
      o.file,
      `input '${p.info.name}' needs ${p.info.dim} columns per point (dim in ${pipelineFile}), but ${o.attribute === undefined ? 'the default attribute' : `':${o.attribute}'`} ` +
        `gives ${d} (${sel.columns.join(', ')}); pick columns with ${p.info.name}=${o.file}:ATTRIBUTE`,
    );
  }
  if (table.count === 0) throw new DataFileError(o.file, `no points (input '${p.info.name}')`);
  return { name: p.info.name, tensor: { data: sel.data, shape: sel.shape }, columns: sel.columns, origin: o };
}
