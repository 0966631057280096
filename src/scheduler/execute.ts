import { Cat } from '../graph/formula.js';
import { DimensionError, ReductionError } from '../errors.js';
import { variables, type Formula } from '../graph/formula.js';
import { batchDims, batchRun, broadcastBatch, eachBatch, type BatchedArg, type BatchRun } from '../kernel/batch.js';
import { liftLiterals } from '../kernel/literals.js';
import type { KernelPlan } from '../kernel/plan.js';
import { makePlan } from '../kernel/plan.js';
import { kernelRanges, type Ranges } from '../kernel/ranges.js';
import type { ReductionSpec } from '../ops/reductions.js';
import { float64Policy, getBackend, resolveBackend, type Backend, type BackendChoice } from './backends.js';
import { BackendError } from '../errors.js';
import { asFloat, checkTensor, floatArray, type Dtype, type Tensor, type TensorLike } from '../tensor.js';

/**
 * Rows of an argument's data and its leading batch dimensions (pykeops: `(..., n, D)` for a
 * variable, `(..., D)` for a parameter), after checking its trailing dimension against its
 * declaration; `name` is the culprit.
 */
function rowsOf(v: ArgDecl, t: TensorLike, name: string): { rows: number; batch: number[] } {
  const s = t.shape;
  if (v.cat === Cat.param) {
    const ok = (s.length >= 1 && s[s.length - 1] === v.dim) || (s.length === 0 && v.dim === 1);
    if (!ok) throw new DimensionError(`${name}: a parameter of dimension ${v.dim} needs shape [${v.dim}], got [${s.join(', ')}] (with batch dimensions: [...batch, ${v.dim}])`);
    return { rows: 1, batch: batchDims(s, true) };
  }
  const last = s.length === 1 ? 1 : s[s.length - 1];
  if (s.length < 1 || last !== v.dim) {
    throw new DimensionError(`${name}: expected shape [n, ${v.dim}], got [${s.join(', ')}] (with batch dimensions: [...batch, n, ${v.dim}])`);
  }
  return s.length === 1 ? { rows: s[0]!, batch: [] } : { rows: s[s.length - 2]!, batch: s.slice(0, -2) };
}

/** How an argument of a reduction is declared: pykeops's `Var(index, dim, cat)` without the index. */
export interface ArgDecl {
  readonly dim: number;
  readonly cat: Cat;
}

/** What executeReduction knows of its arguments besides their data. */
export interface ReductionArguments {
  /** `names[k]` names argument k in messages (default `argument k`). */
  readonly names?: readonly (string | undefined)[];
  /**
   * `decls[k]` declares argument k (holes: no argument there). Every declared argument is checked
   * and gives the extent of its category, whether the formula reads it or not (pykeops: extents
   * come from the arguments, not from the simplified formula). Default: the variables of the
   * formula and the weight, which is right where formulas never drop a variable (LazyTensor).
   */
  readonly decls?: readonly (ArgDecl | undefined)[];
}

/** The variables of formulas as argument declarations, by index. */
export function declsOf(formulas: readonly (Formula | null)[]): (ArgDecl | undefined)[] {
  const out: (ArgDecl | undefined)[] = [];
  for (const f of formulas) if (f !== null) for (const v of variables(f)) out[v.index] ??= { dim: v.dim, cat: v.cat };
  return out;
}

/**
 * Pairs per dispatch when a reduction reports progress: about a second on lavapipe (1-2 G pairs/s),
 * a few milliseconds on a GPU. Each further dispatch uploads the reduced side again (O(N) bytes),
 * which is negligible against the 2^30 pairs it computes.
 */
export const PROGRESS_PAIRS = 2 ** 30;

/** Options of {@link executeReduction} besides the reduction itself. */
export interface ExecuteOptions {
  readonly backend?: BackendChoice;
  /**
   * Called with the fraction of the kept rows done (0 < f <= 1). When given and the reduction
   * has more than `progressPairs` pairs (default {@link PROGRESS_PAIRS}), the kept rows are split
   * into dispatches of about that many pairs, each reported when it completes; otherwise called
   * once at the end.
   */
  readonly onProgress?: (fraction: number) => void;
  readonly progressPairs?: number;
  /** Block-sparse: pykeops's six `ranges` arrays (kernel/ranges.ts); the axis picks which three are read. */
  readonly ranges?: Ranges;
}

/**
 * Runs one fused reduction: `args[k]` is the data of argument k (variable index k of the formula).
 * Extents come from the arguments: M from every declared i-argument, N from every j-argument,
 * whether or not the formula still reads them; a category without any argument has extent 1.
 */
export async function executeReduction(
  formula: Formula,
  opts: ReductionSpec & ExecuteOptions,
  args: readonly (TensorLike | undefined)[],
  info: ReductionArguments = {},
): Promise<Tensor[]> {
  // Literals become data of one parameter variable, so new constants reuse the compiled kernel.
  const lifted = liftLiterals(formula, opts.weight ?? null);
  const spec = { ...opts, weight: lifted.g };
  let plan = makePlan(lifted.f, spec);
  const nameOf = (i: number): string => info.names?.[i] ?? `argument ${i}`;
  // numpy's rule: float64 as soon as one argument is float64 (float32 and int32 ones are promoted).
  const wide = args.findIndex((t) => typeof t === 'object' && t !== null && t.data instanceof Float64Array);
  const { backend, dtype } = wide < 0 ? { backend: getBackend(opts.backend), dtype: 'float32' as const } : float64Backend(await resolveBackend(opts.backend), nameOf(wide));
  if (dtype === 'float64') plan = makePlan(lifted.f, spec, 'float64');
  const extent: [number | undefined, number | undefined] = [undefined, undefined];
  const who: [string, string] = ['', ''];
  const checked: (TensorLike | undefined)[] = [];
  const batched: (BatchedArg | undefined)[] = [];
  /** Checks argument i against its declaration and counts its rows in its category's extent. */
  const take = (i: number, d: ArgDecl): TensorLike => {
    const t = args[i];
    if (t === undefined) throw new DimensionError(`${nameOf(i)} (Var(${i},${d.dim},${flip(d).cat})) was not given`);
    const c = checkTensor(t, nameOf(i));
    const { rows, batch } = rowsOf(d, c, nameOf(i));
    batched[i] = { name: nameOf(i), batch, rows };
    if (d.cat !== Cat.param) {
      const seen = extent[d.cat];
      if (seen !== undefined && seen !== rows) {
        throw new DimensionError(`${nameOf(i)} has ${rows} rows but ${who[d.cat]} has ${seen} (both are indexed by ${flip(d).cat === Cat.i ? 'i' : 'j'})`);
      }
      extent[d.cat] = rows;
      who[d.cat] = nameOf(i);
    }
    return (checked[i] = c);
  };
  // The plan reduces over j: for axis 0 its formula is transposed, and so are the declarations.
  const flip = (d: ArgDecl): ArgDecl => (opts.axis === 1 || d.cat === Cat.param ? d : { dim: d.dim, cat: d.cat === Cat.i ? Cat.j : Cat.i });
  const decls = (info.decls ?? declsOf([formula, opts.weight ?? null])).map((d) => (d === undefined ? undefined : flip(d)));
  decls.forEach((d, i) => {
    if (d !== undefined) take(i, d);
  });
  const ins: (Float32Array | Float64Array | undefined)[] = [];
  plan.vars.forEach((v, i) => {
    if (v === undefined) return;
    if (i === lifted.index) {
      // The CPU backend computes in float64, as it did with literals printed in its code (the
      // cluster passes them on as they are to its workers' backends).
      ins[i] = backend.name === 'cpu' || backend.name === 'cluster' ? Float64Array.from(lifted.values) : Float32Array.from(lifted.values);
      return;
    }
    const d = decls[i];
    if (d !== undefined && (d.dim !== v.dim || d.cat !== v.cat)) {
      throw new DimensionError(`${nameOf(i)} is declared Var(${i},${flip(d).dim},${flip(d).cat}) but the formula reads it as ${flip(v).cat === v.cat ? v.key : `Var(${i},${v.dim},${flip(v).cat})`}`);
    }
    ins[i] = asFloat(checked[i] ?? take(i, v), dtype);
  });
  // M and N here are the kept and the reduced extent (for axis 0: N and M of the arguments).
  const M = extent[0] ?? 1;
  const N = extent[1] ?? 1;
  if (plan.reduction.usesK && plan.K > N) {
    throw new ReductionError(`${plan.reduction.name}: K = ${plan.K} is larger than the reduced extent ${N}`);
  }
  if (N === 0 && plan.reduction.name !== 'Sum') {
    throw new ReductionError(`${plan.reduction.name} over an empty axis has no value`);
  }
  // Checked against the extents: a malformed array is a DataError naming it.
  const ranges = opts.ranges === undefined ? undefined : kernelRanges(opts.ranges, opts.axis, M, N);
  const batchShape = broadcastBatch(batched);
  if (batchShape.length > 0) {
    if (ranges !== undefined) throw new BackendError('block-sparse ranges and batch dimensions cannot be combined in one reduction: reduce each batch with its own ranges');
    // Every batch in one kernel run: each variable's rows start at its batch offset (kernel/batch.ts).
    const run = batchRun(batchShape, plan.vars.map((v, i) => (v === undefined ? undefined : batched[i])));
    const outs = run.count === 0 ? plan.outputs.map((o) => (o.int ? new Int32Array(0) : floatArray(plan.dtype, 0))) : await runBatched(backend, plan, ins, M, N, run);
    opts.onProgress?.(1);
    return outs.map((data, o) => ({ data, shape: [...batchShape, M, ...plan.outputs[o]!.rowShape] }));
  }
  const report = opts.onProgress;
  const per = opts.progressPairs ?? PROGRESS_PAIRS;
  const chunks = Math.min(M, Math.ceil((ranges?.pairs ?? M * Math.max(1, N)) / per));
  // Ranged reductions run in one call (their segments index the whole kept axis).
  if (report === undefined || chunks <= 1 || ranges !== undefined) {
    const outs = await backend.run(plan, ins, M, N, ranges);
    report?.(1);
    return outs.map((data, o) => ({ data, shape: [M, ...plan.outputs[o]!.rowShape] }));
  }
  // Kept rows are independent: run them in slices (views of the i-side inputs), one dispatch each.
  const rowsPer = Math.ceil(M / chunks);
  const outs = plan.outputs.map((o) => (o.int ? new Int32Array(M * o.width) : floatArray(plan.dtype, M * o.width)));
  for (let r0 = 0; r0 < M; r0 += rowsPer) {
    const r1 = Math.min(M, r0 + rowsPer);
    const slice = ins.map((data, i) => {
      const v = plan.vars[i];
      return data === undefined || v === undefined || v.cat !== Cat.i ? data : data.subarray(r0 * v.dim, r1 * v.dim);
    });
    const part = await backend.run(plan, slice, r1 - r0, N);
    part.forEach((data, o) => outs[o]!.set(data, r0 * plan.outputs[o]!.width));
    report(r1 / M);
  }
  return outs.map((data, o) => ({ data, shape: [M, ...plan.outputs[o]!.rowShape] }));
}

/**
 * One batched kernel run on a backend that takes batches (CPU, WebGPU); a backend without them
 * (the cluster) runs batch by batch on views of each variable's rows.
 */
function runBatched(
  backend: Backend,
  plan: KernelPlan,
  ins: readonly (Float32Array | Float64Array | undefined)[],
  M: number,
  N: number,
  run: BatchRun,
): Promise<(Float32Array | Float64Array | Int32Array)[]> {
  if (backend.batches === true) return backend.run(plan, ins, M, N, undefined, run);
  return eachBatch(plan.vars, plan.outputs, ins, M, N, run, (views) => backend.run(plan, views, M, N), plan.dtype === 'float64');
}

/**
 * Where a computation with float64 data (argument `who`) runs, and in what: in float64 on the CPU
 * backend and the cluster (whose workers run it on their backend: a WebGPU worker refuses it);
 * on WebGPU (no f64 in WGSL) as `init({ float64 })`
 * says: on the CPU backend (`'cpu'`), in float32 (`'downcast'`), or never silently (`'error'`).
 */
function float64Backend(backend: Backend, who: string): { backend: Backend; dtype: Dtype } {
  // The cluster's workers run float64 plans on their own backends (a CPU worker: float64).
  if (backend.name === 'cpu' || backend.name === 'cluster') return { backend, dtype: 'float64' };
  const policy = float64Policy();
  if (policy === 'cpu') return { backend: getBackend('cpu'), dtype: 'float64' };
  if (policy === 'downcast') return { backend, dtype: 'float32' };
  const why = `the ${backend.name === 'webgpu' ? 'WebGPU' : backend.name} backend computes in float32 only (WGSL has no f64)`;
  throw new BackendError(
    `${who} holds float64 data, but ${why}: use { backend: 'cpu' } for float64 results, init({ float64: 'cpu' }) to run float64 reductions on the CPU backend, or init({ float64: 'downcast' }) to accept float32 compute`,
  );
}
