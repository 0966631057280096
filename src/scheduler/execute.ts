import { Cat } from '../graph/formula.js';
import { DimensionError, ReductionError } from '../errors.js';
import type { Formula, VarNode } from '../graph/formula.js';
import { liftLiterals } from '../kernel/literals.js';
import { makePlan } from '../kernel/plan.js';
import type { ReductionSpec } from '../ops/reductions.js';
import { getBackend, type BackendChoice } from './backends.js';
import { asFloat32, checkTensor, type Tensor, type TensorLike } from '../tensor.js';

/** Rows of a variable's data, after checking its trailing dimension; `name` is the culprit. */
function rowsOf(v: VarNode, t: TensorLike, name: string): number {
  const s = t.shape;
  if (v.cat === Cat.param) {
    const ok = (s.length === 1 && s[0] === v.dim) || (s.length === 2 && s[0] === 1 && s[1] === v.dim) || (s.length === 0 && v.dim === 1);
    if (!ok) throw new DimensionError(`${name}: a parameter of dimension ${v.dim} needs shape [${v.dim}], got [${s.join(', ')}]`);
    return 1;
  }
  const last = s.length === 1 ? 1 : s[s.length - 1];
  if (s.length < 1 || s.length > 2 || last !== v.dim) {
    throw new DimensionError(`${name}: expected shape [n, ${v.dim}], got [${s.join(', ')}]`);
  }
  return s[0]!;
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
}

/**
 * Runs one fused reduction: `args[v]` is the data of variable index v, `names[v]` its name for
 * messages. Extents come from the data; a formula without j (or i) variables has that extent 1.
 */
export async function executeReduction(
  formula: Formula,
  opts: ReductionSpec & ExecuteOptions,
  args: readonly (TensorLike | undefined)[],
  names: readonly string[] = [],
): Promise<Tensor[]> {
  // Literals become data of one parameter variable, so new constants reuse the compiled kernel.
  const lifted = liftLiterals(formula, opts.weight ?? null);
  const plan = makePlan(lifted.f, { ...opts, weight: lifted.g });
  const backend = getBackend(opts.backend);
  const nameOf = (i: number): string => names[i] ?? `argument ${i}`;
  const extent: [number | undefined, number | undefined] = [undefined, undefined];
  const who: [string, string] = ['', ''];
  const ins: (Float32Array | Float64Array | undefined)[] = [];
  plan.vars.forEach((v, i) => {
    if (v === undefined) return;
    if (i === lifted.index) {
      // The CPU backend computes in float64, as it did with literals printed in its code.
      ins[i] = backend.name === 'cpu' ? Float64Array.from(lifted.values) : Float32Array.from(lifted.values);
      return;
    }
    const t = args[i];
    if (t === undefined) throw new DimensionError(`${nameOf(i)} (${v.key}) is used by the formula but was not given`);
    const checked = checkTensor(t, nameOf(i));
    const rows = rowsOf(v, checked, nameOf(i));
    if (v.cat !== Cat.param) {
      const seen = extent[v.cat];
      if (seen !== undefined && seen !== rows) {
        throw new DimensionError(`${nameOf(i)} has ${rows} rows but ${who[v.cat]} has ${seen} (both are indexed by ${v.cat === Cat.i ? 'the kept' : 'the reduced'} axis)`);
      }
      extent[v.cat] = rows;
      who[v.cat] = nameOf(i);
    }
    ins[i] = asFloat32(checked);
  });
  const M = extent[0] ?? 1;
  const N = extent[1] ?? 1;
  if (plan.reduction.usesK && plan.K > N) {
    throw new ReductionError(`${plan.reduction.name}: K = ${plan.K} is larger than the reduced extent ${N}`);
  }
  if (N === 0 && plan.reduction.name !== 'Sum') {
    throw new ReductionError(`${plan.reduction.name} over an empty axis has no value`);
  }
  const report = opts.onProgress;
  const per = opts.progressPairs ?? PROGRESS_PAIRS;
  const chunks = Math.min(M, Math.ceil((M * Math.max(1, N)) / per));
  if (report === undefined || chunks <= 1) {
    const outs = await backend.run(plan, ins, M, N);
    report?.(1);
    return outs.map((data, o) => ({ data, shape: [M, ...plan.outputs[o]!.rowShape] }));
  }
  // Kept rows are independent: run them in slices (views of the i-side inputs), one dispatch each.
  const rowsPer = Math.ceil(M / chunks);
  const outs = plan.outputs.map((o) => (o.int ? new Int32Array(M * o.width) : new Float32Array(M * o.width)));
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
