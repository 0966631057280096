import { Cat } from '../graph/formula.js';
import { BackendError, DimensionError, isTransient, ReductionError } from '../errors.js';
import { mapVars, mkVar, variables, type Formula, type VarNode } from '../graph/formula.js';
import { batchDims, batchRun, broadcastBatch, eachBatch, type BatchedArg, type BatchRun } from '../kernel/batch.js';
import { liftLiterals, liftRootLiterals } from '../kernel/literals.js';
import { makeFusedPlan, makePlan, type KernelPlan } from '../kernel/plan.js';
import { kernelRanges, type KernelRanges, type Ranges } from '../kernel/ranges.js';
import { record } from '../stats.js';
import { fusionLimits } from './fusion.js';
import type { ReductionSpec } from '../ops/reductions.js';
import { float64Policy, getBackend, resolveBackend, type Backend, type BackendChoice } from './backends.js';
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

/** A reduction checked and ready to run: its plan, its inputs by variable index, its extents. */
export interface Prepared {
  readonly plan: KernelPlan;
  /** Data of variable v of the plan (the literal parameter at `literal`, float64 on the CPU). */
  readonly ins: (Float32Array | Float64Array | undefined)[];
  /** Index of the literal parameter variable (-1: none). */
  readonly literal: number;
  /** The kept and the reduced extent (for axis 0: N and M of the arguments). */
  readonly M: number;
  readonly N: number;
  readonly backend: Backend;
  /** Block-sparse ranges, checked against the extents. */
  readonly ranges: KernelRanges | undefined;
  /** The broadcast batch shape ([] unbatched) and each argument's rows and batch dims. */
  readonly batchShape: readonly number[];
  readonly batched: readonly (BatchedArg | undefined)[];
}

/**
 * Checks a reduction's arguments and plans it: everything `executeReduction` throws before it
 * runs a kernel (dimension errors naming the culprit, K larger than the reduced extent...).
 */
export async function prepareReduction(formula: Formula, opts: ReductionSpec & ExecuteOptions, args: readonly (TensorLike | undefined)[], info: ReductionArguments): Promise<Prepared> {
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
      ins[i] = literalData(backend, lifted.values);
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
  if (batchShape.length > 0 && ranges !== undefined) {
    throw new BackendError('block-sparse ranges and batch dimensions cannot be combined in one reduction: reduce each batch with its own ranges');
  }
  return { plan, ins, literal: lifted.index, M, N, backend, ranges, batchShape, batched };
}

/** The data of the literal parameter: the CPU backend computes in float64, as it did with literals printed in its code (the cluster passes them on as they are to its workers' backends). */
function literalData(backend: Backend, values: readonly number[]): Float32Array | Float64Array {
  return backend.name === 'cpu' || backend.name === 'cluster' ? Float64Array.from(values) : Float32Array.from(values);
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
  const { plan, ins, M, N, backend, ranges, batchShape, batched } = await prepareReduction(formula, opts, args, info);
  if (batchShape.length > 0) {
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

/** One reduction offered to a fused run: what `executeReduction` takes. */
export interface FusedMember {
  readonly formula: Formula;
  readonly opts: ReductionSpec & { readonly backend?: BackendChoice };
  readonly args: readonly (TensorLike | undefined)[];
  readonly info?: ReductionArguments;
}

/** A settled outcome. */
export type Settled<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: unknown };

/** What `executeFused` did. */
export interface FusedOutcome {
  /** Per member: its outputs, or the fault of its fused kernel; undefined when it is left to run alone. */
  readonly results: readonly (Settled<Tensor[]> | undefined)[];
  /** The members that ran together, as lists of member indices, one per fused kernel. */
  readonly groups: readonly (readonly number[])[];
}

/**
 * Runs sibling reductions as fused kernels (issue 17): members with the same extents (kept and
 * reduced) on the same backend run as one kernel, whose formulas read one variable space (an
 * argument several members read, the same data at the same category and dimension, is one
 * variable), so their shared temporaries are computed once. A group that would exceed a limit of
 * one kernel (the device's storage buffers per stage, `FUSED_STATE_MAX` floats of state per row,
 * the node limit) is cut into consecutive groups that fit; a member alone in its group, one whose
 * arguments do not check, and the members of a fused kernel that failed with anything but a
 * transient fault are left to run alone (`results[k]` undefined), so that each settles exactly as
 * it would without fusion. A transient fault (a lost device) is every member's outcome, as it
 * would have been alone: the scheduler retries them on the next read. Never rejects.
 */
export async function executeFused(members: readonly FusedMember[]): Promise<FusedOutcome> {
  const results: (Settled<Tensor[]> | undefined)[] = members.map(() => undefined);
  const groups: number[][] = [];
  const outcome = { results, groups };
  const prepared = await Promise.all(
    members.map(async (m) => {
      try {
        const p = await prepareReduction(m.formula, m.opts, m.args, m.info ?? {});
        // Fused kernels are float32, dense and unbatched: the others run alone.
        return p.plan.dtype === 'float32' && p.ranges === undefined && p.batchShape.length === 0 ? p : undefined;
      } catch {
        return undefined; // it fails alone, with the same error
      }
    }),
  );
  const choice = members[0]?.opts.backend;
  let backend: Backend;
  let caps: Awaited<ReturnType<NonNullable<Backend['fusion']>>>;
  try {
    backend = await resolveBackend(choice);
    if (backend.fusion === undefined) return outcome; // a backend that runs no fused plans (the cluster)
    caps = await backend.fusion();
  } catch {
    return outcome; // each member meets the problem alone
  }
  const limits = fusionLimits(caps.maxBindings);

  /** The fused plan of members `ks` and its inputs, or undefined when it would not fit one kernel. */
  const fuse = (ks: readonly number[]): { plan: KernelPlan; ins: (Float32Array | Float64Array | undefined)[] } | undefined => {
    const ids = new Map<unknown, Map<string, number>>();
    const ins: (Float32Array | Float64Array | undefined)[] = [];
    const parts = ks.map((k) => {
      const m = members[k]!;
      const data = prepared[k]!.ins;
      // The same argument at the same category and dimension is one variable of the fused kernel.
      const global = (v: VarNode): Formula => {
        const src = m.args[v.index];
        const byUse = ids.get(src) ?? ids.set(src, new Map()).get(src)!;
        let at = byUse.get(`${v.cat}:${v.dim}`);
        if (at === undefined) {
          byUse.set(`${v.cat}:${v.dim}`, (at = ins.length));
          ins.push(data[v.index]);
        }
        return mkVar(at, v.dim, v.cat);
      };
      const weight = m.opts.weight ?? null;
      return { f: mapVars(m.formula, global), g: weight === null ? null : mapVars(weight, global), opts: m.opts };
    });
    // Literals of every part become one parameter variable, after the arguments.
    const lifted = liftRootLiterals(parts.flatMap((p) => (p.g === null ? [p.f] : [p.f, p.g])));
    let at = 0;
    const specs = parts.map((p) => {
      const formula = lifted.roots[at++]!;
      const weight = p.g === null ? null : lifted.roots[at++]!;
      return { formula, spec: { reduction: p.opts.reduction, axis: p.opts.axis, ...(p.opts.K === undefined ? {} : { K: p.opts.K }), weight } };
    });
    if (lifted.index >= 0) ins[lifted.index] = literalData(backend, lifted.values);
    let plan: KernelPlan;
    try {
      plan = makeFusedPlan(specs);
    } catch {
      return undefined; // more nodes than one kernel takes
    }
    if (caps.bindings(plan) > limits.storageBuffers || caps.stateWidth(plan) > limits.stateWidth) return undefined;
    return { plan, ins };
  };

  /** Runs members `ks` as one kernel and hands each its outputs. */
  const run = async (ks: readonly number[], fused: { plan: KernelPlan; ins: (Float32Array | Float64Array | undefined)[] }): Promise<void> => {
    const { M, N } = prepared[ks[0]!]!;
    const { plan, ins } = fused;
    try {
      const outs = await backend.run(plan, ins, M, N);
      record.fused(ks.length);
      let o = 0;
      ks.forEach((k, n) => {
        const value = plan.parts[n]!.outputs.map((out) => ({ data: outs[o++]!, shape: [M, ...out.rowShape] }));
        results[k] = { ok: true, value };
      });
      groups.push([...ks]);
    } catch (error) {
      if (!isTransient(error)) return; // each member runs alone and settles as it would have
      for (const k of ks) results[k] = { ok: false, error };
      groups.push([...ks]);
    }
  };

  // Members with the same extents, in order; each cut greedily into groups that fit one kernel.
  const buckets = new Map<string, number[]>();
  prepared.forEach((p, k) => {
    if (p === undefined || members[k]!.opts.backend !== choice) return;
    const key = `${p.M}x${p.N}`;
    (buckets.get(key) ?? buckets.set(key, []).get(key)!).push(k);
  });
  const runs: Promise<void>[] = [];
  for (const ks of buckets.values()) {
    let group: number[] = [];
    let plan: ReturnType<typeof fuse>;
    const close = (): void => {
      if (group.length >= 2 && plan !== undefined) runs.push(run(group, plan));
    };
    for (const k of ks) {
      const next = group.length === 0 ? undefined : fuse([...group, k]);
      if (group.length === 0 || next !== undefined) {
        group = [...group, k];
        plan = next;
        continue;
      }
      close();
      group = [k];
      plan = undefined;
    }
    close();
  }
  await Promise.all(runs);
  return outcome;
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
