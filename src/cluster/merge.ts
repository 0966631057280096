/**
 * Sharding a reduction and merging the shards' results, written once per reduction family.
 *
 * A split of the kept rows is exact: each shard is the same reduction over its rows, and the
 * results are concatenated. A split of the reduced axis runs, per block of j, reductions whose
 * finalized outputs carry enough of the block's partial state to merge them here, in block order
 * (so ties keep the lower index, as the unsplit kernels do):
 * - Sum: the block sums, added (float64; every merge computes in float64, see `mergeReduced`).
 * - Min, Max: the block extrema. ArgMin, ArgMax, Min_ArgMin, Max_ArgMax: the blocks run
 *   Min_ArgMin / Max_ArgMax (the value is needed to compare); a later block wins only when
 *   strictly better.
 * - KMin, ArgKMin, KMin_ArgKMin: the blocks run KMin_ArgKMin; the sorted K-lists are merged
 *   stably (on equal values the earlier block's, lower, indices first).
 * - LogSumExp (no weight): log-sum-exp of the blocks' log-sum-exps.
 * - SumSoftMaxWeight and weighted LogSumExp: the blocks run SumSoftMaxWeight(F, G) and
 *   LogSumExp(F) (the block's log-normaliser L_b); with L = lse_b L_b, the softmax-weighted sum is
 *   sum_b exp(L_b - L) S_b and the weighted log-sum-exp is L + log of that (weights of either sign).
 * Block-local indices are offset by the block's first j.
 */
import type { KernelPlan } from '../kernel/plan.js';

/** Outputs of one job of one shard (per reduction output). */
export type Outputs = readonly (Float32Array | Float64Array | Int32Array)[];

/** One reduction a reduced-axis shard runs (the formula and weight are the plan's). */
export interface ShardJobKind {
  readonly reduction: string;
  readonly K: number;
  readonly weight: boolean;
}

/** What a shard of a reduced-axis split returns: one Outputs per job, and where its block starts. */
export interface Partial {
  readonly j0: number;
  readonly jobs: readonly Outputs[];
}

const EXTREMUM_PAIR: Readonly<Record<string, string>> = {
  Min: 'Min',
  Max: 'Max',
  ArgMin: 'Min_ArgMin',
  Min_ArgMin: 'Min_ArgMin',
  ArgMax: 'Max_ArgMax',
  Max_ArgMax: 'Max_ArgMax',
};
const KFAMILY = new Set(['KMin', 'ArgKMin', 'KMin_ArgKMin']);

/** The reductions each block of a reduced-axis split runs for this plan. */
export function reducedJobs(plan: KernelPlan): ShardJobKind[] {
  const name = plan.reduction.name;
  const weighted = plan.g !== null;
  if (name === 'SumSoftMaxWeight' || (name === 'LogSumExp' && weighted)) {
    return [
      { reduction: 'SumSoftMaxWeight', K: 0, weight: true },
      { reduction: 'LogSumExp', K: 0, weight: false },
    ];
  }
  if (KFAMILY.has(name)) return [{ reduction: 'KMin_ArgKMin', K: plan.K, weight: false }];
  const ext = EXTREMUM_PAIR[name];
  if (ext !== undefined) return [{ reduction: ext, K: 0, weight: false }];
  return [{ reduction: name, K: plan.K, weight: weighted }];
}

/** Concatenates the outputs of a row split: `parts[s]` covers rows from `i0s[s]`. */
export function concatRows(plan: KernelPlan, M: number, parts: readonly { i0: number; outs: Outputs }[]): (Float32Array | Float64Array | Int32Array)[] {
  return plan.outputs.map((o, k) => {
    const out = o.int ? new Int32Array(M * o.width) : plan.dtype === 'float64' ? new Float64Array(M * o.width) : new Float32Array(M * o.width);
    for (const p of parts) out.set(p.outs[k]!, p.i0 * o.width);
    return out;
  });
}

/**
 * Merges the partial results of a reduced-axis split (parts in any order; merged in block order).
 * The merges compute in float64 and round once at the end to the plan's dtype (a float32 value
 * survives the round trip exactly, so float32 results are what a float32 merge gives).
 */
export function mergeReduced(plan: KernelPlan, M: number, parts: readonly Partial[]): (Float32Array | Float64Array | Int32Array)[] {
  const outs = merged(plan, M, parts);
  return plan.dtype === 'float64' ? outs : outs.map((a) => (a instanceof Float64Array ? Float32Array.from(a) : a));
}

function merged(plan: KernelPlan, M: number, parts: readonly Partial[]): (Float64Array | Int32Array)[] {
  const ps = [...parts].sort((a, b) => a.j0 - b.j0);
  const name = plan.reduction.name;
  const D = plan.f.dim;
  if (name === 'SumSoftMaxWeight' || (name === 'LogSumExp' && plan.g !== null)) return [softmaxMerge(ps, M, plan.g!.dim, name === 'LogSumExp')];
  if (KFAMILY.has(name)) {
    const [vals, idx] = kminMerge(ps, M, D, plan.K);
    return name === 'KMin' ? [vals] : name === 'ArgKMin' ? [idx] : [vals, idx];
  }
  if (name === 'Sum') return [sumMerge(ps, M * D)];
  if (name === 'LogSumExp') return [lseMerge(ps, M * D)];
  if (name === 'Min' || name === 'Max') return [extremumValues(ps, M * D, name === 'Min')];
  if (EXTREMUM_PAIR[name] !== undefined) {
    const [vals, idx] = extremumMerge(ps, M * D, name.startsWith('Min') || name === 'ArgMin');
    return name.startsWith('Arg') ? [idx] : [vals, idx];
  }
  throw new Error(`no cluster merge for reduction ${name}`);
}

function sumMerge(ps: readonly Partial[], n: number): Float64Array {
  const acc = new Float64Array(n);
  for (const p of ps) {
    const s = p.jobs[0]![0]!;
    for (let k = 0; k < n; k++) acc[k]! += s[k]!;
  }
  return Float64Array.from(acc);
}

/** log sum_b exp(x_b), stably; -Infinity when every x_b is. */
function lse(xs: readonly number[]): number {
  let m = -Infinity;
  for (const x of xs) if (x > m) m = x;
  if (m === -Infinity || !Number.isFinite(m)) return m;
  let s = 0;
  for (const x of xs) s += Math.exp(x - m);
  return m + Math.log(s);
}

function lseMerge(ps: readonly Partial[], n: number): Float64Array {
  const out = new Float64Array(n);
  const xs = new Array<number>(ps.length);
  for (let k = 0; k < n; k++) {
    for (let b = 0; b < ps.length; b++) xs[b] = ps[b]!.jobs[0]![0]![k]!;
    out[k] = lse(xs);
  }
  return out;
}

function softmaxMerge(ps: readonly Partial[], M: number, G: number, log: boolean): Float64Array {
  const out = new Float64Array(M * G);
  const L = new Array<number>(ps.length);
  for (let i = 0; i < M; i++) {
    for (let b = 0; b < ps.length; b++) L[b] = ps[b]!.jobs[1]![0]![i]!;
    const total = lse(L);
    for (let k = 0; k < G; k++) {
      let s = 0;
      for (let b = 0; b < ps.length; b++) {
        const w = Math.exp(L[b]! - total);
        // A block whose terms all have F = -inf has weight 0 (and a 0/0 average): it adds nothing.
        if (w !== 0) s += w * ps[b]!.jobs[0]![0]![i * G + k]!;
      }
      out[i * G + k] = log ? total + Math.log(s) : s;
    }
  }
  return out;
}

function extremumValues(ps: readonly Partial[], n: number, min: boolean): Float64Array {
  const out = Float64Array.from(ps[0]!.jobs[0]![0]!);
  for (const p of ps.slice(1)) {
    const v = p.jobs[0]![0]!;
    for (let k = 0; k < n; k++) if (min ? v[k]! < out[k]! : v[k]! > out[k]!) out[k] = v[k]!;
  }
  return out;
}

function extremumMerge(ps: readonly Partial[], n: number, min: boolean): [Float64Array, Int32Array] {
  const vals = Float64Array.from(ps[0]!.jobs[0]![0]!);
  const idx = new Int32Array(n);
  const first = ps[0]!.jobs[0]![1]!;
  for (let k = 0; k < n; k++) idx[k] = first[k]! + ps[0]!.j0;
  for (const p of ps.slice(1)) {
    const [v, a] = p.jobs[0]!;
    // Strictly better only: on ties the earlier block's (lower) index stays.
    for (let k = 0; k < n; k++) {
      if (min ? v![k]! < vals[k]! : v![k]! > vals[k]!) {
        vals[k] = v![k]!;
        idx[k] = a![k]! + p.j0;
      }
    }
  }
  return [vals, idx];
}

/** Stable merge of the blocks' ascending K-lists, per row and coordinate (layout: value r of coordinate d at r*D + d). */
function kminMerge(ps: readonly Partial[], M: number, D: number, K: number): [Float64Array, Int32Array] {
  const W = K * D;
  const vals = new Float64Array(M * W);
  const idx = new Int32Array(M * W);
  const av = new Float64Array(K);
  const ai = new Int32Array(K);
  const tv = new Float64Array(K);
  const ti = new Int32Array(K);
  for (let i = 0; i < M; i++) {
    for (let d = 0; d < D; d++) {
      let n = 0;
      for (const p of ps) {
        const [v, a] = p.jobs[0]!;
        // Merge acc (n entries) with this block's list, taking acc on ties, keeping the first K.
        let x = 0;
        let y = 0;
        let t = 0;
        while (t < K) {
          const at = i * W + y * D + d;
          const hasY = y < K && a![at]! >= 0;
          if (x < n && (!hasY || av[x]! <= v![at]!)) {
            tv[t] = av[x]!;
            ti[t++] = ai[x++]!;
          } else if (hasY) {
            tv[t] = v![at]!;
            ti[t++] = a![at]! + p.j0;
            y++;
          } else break;
        }
        n = t;
        av.set(tv.subarray(0, n));
        ai.set(ti.subarray(0, n));
      }
      for (let r = 0; r < K; r++) {
        vals[i * W + r * D + d] = r < n ? av[r]! : Infinity;
        idx[i * W + r * D + d] = r < n ? ai[r]! : -1;
      }
    }
  }
  return [vals, idx];
}
