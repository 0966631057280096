/**
 * Which results go to which file (`--output [NAMES=]FILE`, `--points`), checked before anything
 * is computed, and writing them once computed.
 */
import type { Tensor, TensorLike } from '../index.js';
import type { OutputArg } from './args.js';
import { UsageError } from './errors.js';
import { encode, writeAtomic, writeFormatOf, type WriteFormat } from './formats/index.js';

/** One output file. */
export interface OutputPlan {
  readonly file: string;
  readonly format: WriteFormat;
  readonly names: readonly string[];
}

/** Checks `--output` against the results and formats. */
export function planOutputs(args: readonly OutputArg[], results: readonly string[]): OutputPlan[] {
  const files = new Set<string>();
  return args.map((a) => {
    const format = writeFormatOf(a.file);
    if (format === undefined) throw new UsageError(`--output ${a.file}: unknown output format (use .npy, .csv, .ply or .pcd)`);
    if (files.has(a.file)) throw new UsageError(`--output ${a.file} given twice`);
    files.add(a.file);
    const names = a.names ?? results;
    for (const n of names) {
      if (!results.includes(n)) throw new UsageError(`--output ${a.file}: the pipeline has no result '${n}' (its results: ${results.join(', ')})`);
    }
    if (format === 'npy' && names.length !== 1) {
      throw new UsageError(`--output ${a.file}: a .npy file holds one result, and the pipeline has ${names.length} (${names.join(', ')}): write NAME=${a.file}`);
    }
    return { file: a.file, format, names };
  });
}

/**
 * The points a PLY, PCD or CSV output carries first: `--points NAME`, else (PLY and PCD only) the
 * first 3-D input with as many rows as the results. Undefined when there is none.
 */
function pointsFor(plan: OutputPlan, rows: number, inputs: ReadonlyMap<string, TensorLike>, points: string | undefined): { name: string; tensor: Tensor } | undefined {
  if (plan.format === 'npy') return undefined;
  if (points !== undefined) {
    const t = inputs.get(points);
    if (t === undefined) throw new UsageError(`--points ${points}: no input '${points}' with data (inputs: ${[...inputs.keys()].join(', ')})`);
    if (t.shape[0] !== rows) throw new UsageError(`--points ${points}: ${t.shape[0]} points, but the results in ${plan.file} have ${rows} rows`);
    return { name: points, tensor: t as Tensor };
  }
  if (plan.format === 'csv') return undefined;
  for (const [name, t] of inputs) if (t.shape.length === 2 && t.shape[1] === 3 && t.shape[0] === rows) return { name, tensor: t as Tensor };
  return undefined;
}

/** Encodes and writes one output file (atomically); returns a one-line description. */
export async function writeOutput(plan: OutputPlan, values: ReadonlyMap<string, Tensor>, inputs: ReadonlyMap<string, TensorLike>, points: string | undefined): Promise<string> {
  const named = plan.names.map((name) => ({ name, tensor: values.get(name)! }));
  const rows = named[0]!.tensor.shape[0] ?? 1;
  const bad = named.find((r) => (r.tensor.shape[0] ?? 1) !== rows);
  if (bad !== undefined) {
    throw new UsageError(
      `--output ${plan.file}: results ${named[0]!.name} [${named[0]!.tensor.shape.join(', ')}] and ${bad.name} [${bad.tensor.shape.join(', ')}] have different row counts: ` +
        `write them to separate files (--output ${named[0]!.name}=... --output ${bad.name}=...)`,
    );
  }
  const pts = pointsFor(plan, rows, inputs, points);
  await writeAtomic(plan.file, encode(plan.format, named, pts));
  const what = named.map((r) => `${r.name} [${r.tensor.shape.join(', ')}] ${r.tensor.data instanceof Int32Array ? 'int32' : 'float32'}`).join(', ');
  return `wrote ${plan.file}: ${pts === undefined ? '' : `points of '${pts.name}', `}${what}`;
}
