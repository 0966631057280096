import { KernelflowError } from '../errors.js';
import { record } from '../stats.js';

/**
 * What the landmark search asks of a kernel K (n × n, symmetric positive semi-definite): its
 * diagonal, and blocks of its columns (`columns(idx)` is K[:, idx], [n, idx.length] row-major,
 * in one kernel dispatch). Kernels evaluated in float32 are fine: the factor below stays
 * positive semi-definite whatever their rounding.
 */
export interface KernelColumns {
  readonly n: number;
  diagonal(): Promise<Float64Array>;
  columns(idx: Int32Array): Promise<Float32Array>;
}

/**
 * How landmarks are chosen:
 * - `'greedy'`: pivoted partial Cholesky: each pivot is (up to a factor 2, see below) the point
 *   with the largest residual diagonal K_ii - (F F^T)_ii, i.e. the point the landmarks so far
 *   explain worst;
 * - `'rpcholesky'`: randomly pivoted Cholesky (pivots drawn with probability proportional to the
 *   residual diagonal; Chen, Epperly, Tropp and Webber 2023), blocked with rejection;
 * - `'uniform'`: uniformly random points (pivots in a seeded random order).
 * All three build the same factor, skip pivots the landmarks already explain (residual at the
 * float32 noise floor) and stop when the residual diagonal is below `stop` everywhere.
 * @example
 * ```ts
 * import { source, Vi, Vj, type LandmarkRule } from 'kernelflow';
 * const n = 3000;
 * const x = source(Float32Array.from({ length: n * 2 }, Math.random), [n, 2]);
 * const landmarks: LandmarkRule = 'uniform';
 * const c = Vi(x).sqdist(Vj(x)).mul(-50).exp().solve(x, { alpha: 0.01, rank: 256, landmarks });
 * await c.read();
 * console.log(c.lastSolve?.iterations); // more than with the default 'greedy'
 * ```
 */
export type LandmarkRule = 'greedy' | 'rpcholesky' | 'uniform';

export interface PivotedCholeskyOptions {
  readonly rule: LandmarkRule;
  /** Most landmarks (columns of F). */
  readonly maxRank: number;
  /** Stops once every residual diagonal entry is at most this. */
  readonly stop: number;
  /** Candidate pivots per round: the kernel columns of one dispatch. */
  readonly block: number;
  readonly seed?: number;
  /** Candidate order for `'uniform'` (default: a seeded random permutation of 0..n-1). */
  readonly order?: Int32Array;
  /** Checked after each round: a cancelled search returns the factor so far. */
  readonly cancelled?: () => boolean;
  /** Called after each round with the landmarks so far and the largest residual diagonal entry. */
  readonly onRound?: (rank: number, maxResidual: number) => void;
}

/**
 * A low-rank factor K ≈ F F^T from a partial Cholesky: F is [n, rank] row-major float32 (half the
 * memory and bandwidth of float64; the preconditioner built from it is exactly symmetric positive
 * definite whatever its rounding). `pivots` are the landmarks in the order taken.
 */
export interface NystromFactor {
  readonly F: Float32Array;
  readonly n: number;
  readonly rank: number;
  readonly pivots: Int32Array;
  /** The largest residual diagonal entry K_ii - (F F^T)_ii left. */
  readonly maxResidual: number;
  /** Kernel columns computed (pivots plus rejected candidates) and the dispatches that did it. */
  readonly columnsComputed: number;
  readonly dispatches: number;
  /** Pivots whose column was float32 noise (it drove a residual diagonal entry below -floor) and was dropped. */
  readonly dropped: number;
  /** Milliseconds in kernel dispatches (columns, diagonal) and in host arithmetic. */
  readonly kernelMs: number;
  readonly hostMs: number;
  /** Bytes of F, counted in `stats().bytesAllocated` until {@link releaseWorkspace}. */
  readonly bytes: number;
}

/**
 * The smallest pivot taken, relative to the largest residual diagonal entry (uniform and
 * rpcholesky; greedy takes 1/2). A pivot d_p scales its column by 1/sqrt(d_p), and the float32
 * noise of the kernel columns and of F with it: entries of F stay below 1/sqrt(RELATIVE_PIVOT) = 32
 * times the largest residual's square root. Without the bound, uniform landmarks at n = 5000 took
 * pivots at 1e-6 of the largest residual and the residual diagonal went to -8e4 (measured).
 */
const RELATIVE_PIVOT = 2 ** -10;

/**
 * Residuals below this fraction of the largest diagonal entry are float32 noise: kernel columns
 * come with a few ulps of error (1.7e-7 measured on lavapipe for the Gaussian), F is stored in
 * float32, so a residual r = K_ip - F_i . F_p is known to about 3e-7 and a pivot of 1e-6 would
 * turn that into a column of noise (measured: uniform landmarks at n = 5000 sent the residual
 * diagonal to -15 once pivots reached 1e-6).
 */
const NOISE_FLOOR = 2 ** -16;

/** The fewest candidates a round asks for (see `want` in pivotedCholesky). */
const MIN_CANDIDATES = 4;

/** A seeded generator of uniform numbers in [0, 1) (an LCG: enough to pick landmarks). */
function lcg(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
}

/**
 * Pivoted partial Cholesky of a kernel matrix, blocked: each round picks `block` candidate pivots
 * by the rule, computes their kernel columns in one dispatch, subtracts what the factor already
 * explains (R = K[:, S] - F F[S, :]^T, the O(n · rank · block) host product) and takes the
 * candidates one by one, each against the residual left by those taken before it:
 * - greedy: a candidate is taken when its residual is at least half the current largest one (so
 *   every pivot is within a factor 2 of the exact greedy pivot; the first candidate of a round is
 *   the exact one);
 * - rpcholesky: taken with probability residual now / residual when drawn (exactly the
 *   distribution of one-at-a-time RPCholesky: Epperly, Tropp and Webber 2024, "accelerated");
 * - uniform: taken unless already explained.
 * A candidate whose residual is at the noise floor of float32 kernels (2^-20 of the largest
 * diagonal entry) or below `stop` is never taken, so near-duplicate landmarks are skipped
 * instead of making the factorisation fail.
 */
export async function pivotedCholesky(K: KernelColumns, opts: PivotedCholeskyOptions): Promise<NystromFactor> {
  const n = K.n;
  const cap = Math.max(0, Math.min(opts.maxRank, n));
  const B = Math.max(1, Math.min(opts.block, n));
  let kernelMs = 0;
  let hostMs = 0;
  let dispatches = 0;
  let t = performance.now();
  const d = await K.diagonal();
  dispatches++;
  kernelMs += performance.now() - t;
  t = performance.now();
  let diagMax = 0;
  for (let i = 0; i < n; i++) diagMax = Math.max(diagMax, Math.abs(d[i]!));
  for (let i = 0; i < n; i++) {
    // A positive semi-definite kernel has K(x, x) >= 0: anything below the noise floor is not one.
    if (d[i]! < -diagMax * NOISE_FLOOR || Number.isNaN(d[i]!)) {
      throw new KernelflowError('SOLVE', `Nyström preconditioner: the kernel's diagonal is negative (K(x_i, x_i) = ${d[i]} at row ${i})`);
    }
  }
  const floor = Math.max(opts.stop, diagMax * NOISE_FLOOR);
  // Host workspaces count in stats().bytesAllocated like backend buffers: F, the residual diagonal
  // (twice), the taken flags, and per round the candidates' columns and residuals.
  let held = 0;
  const hold = (bytes: number): void => {
    record.alloc(bytes);
    held += bytes;
  };
  const release = (bytes: number): void => {
    record.free(bytes);
    held -= bytes;
  };
  const work = n * (8 + 8 + 1) + cap * 4;
  hold(n * cap * 4 + work);
  try {
    const F = new Float32Array(n * cap); // row-major with stride cap; compacted at the end
    const pivots = new Int32Array(cap);
    const taken = new Uint8Array(n);
    let k = 0;
    let columnsComputed = 0;
    const rand = lcg(opts.seed ?? 1);
    let order: Int32Array | undefined = opts.order;
    if (opts.rule === 'uniform' && order === undefined) {
      order = Int32Array.from({ length: n }, (_, i) => i);
      for (let i = n - 1; i > 0; i--) {
        const j = Math.floor(rand() * (i + 1));
        const tmp = order[i]!;
        order[i] = order[j]!;
        order[j] = tmp;
      }
    }
    let next = 0; // uniform: the next candidate in `order`
    const maxOf = (): number => {
      let m = 0;
      for (let i = 0; i < n; i++) if (d[i]! > m) m = d[i]!;
      return m;
    };
    let maxResidual = maxOf();
    let idle = 0;
    let dropped = 0;
    // Candidates per round: the block, or twice what the last round took when fewer were taken
    // (late rounds of rpcholesky and greedy take one or two of a block: each candidate costs
    // n·rank host multiply-adds, so a short round is cheaper; the dispatch is padded to the block).
    let want = B;
    const dNew = new Float64Array(n);
    hostMs += performance.now() - t;
    while (k < cap && maxResidual > floor) {
      t = performance.now();
      const S = pickCandidates(opts.rule, d, taken, Math.min(want, cap - k), rand, order, next, floor);
      if (opts.rule === 'uniform') next = S.next;
      const cand = S.idx;
      if (cand.length === 0) break;
      hostMs += performance.now() - t;
      t = performance.now();
      const roundBytes = n * cand.length * (4 + 8) + cand.length * cap * 8;
      hold(roundBytes);
      const C = await K.columns(cand);
      dispatches++;
      columnsComputed += cand.length;
      kernelMs += performance.now() - t;
      t = performance.now();
      const m = cand.length;
      // R[i, c] = C[i, c] - F[i, :k] . F[cand[c], :k], float64, [n, m] row-major.
      const R = residualColumns(F, cap, k, C, cand, n);
      const drawn = cand.map((c) => d[c]!);
      let accepted = 0;
      for (let c = 0; c < m && k < cap; c++) {
        const p = cand[c]!;
        const dp = R[p * m + c]!;
        let take = dp > floor && taken[p] === 0;
        if (take && opts.rule === 'greedy') take = dp >= 0.5 * maxResidual;
        else if (take) take = dp >= RELATIVE_PIVOT * maxResidual && (opts.rule === 'uniform' || rand() * drawn[c]! < dp);
        if (!take) continue;
        // New column f = R[:, c] / sqrt(dp). A column that sends some residual diagonal entry below
        // -floor is float32 noise amplified by a small pivot: it is dropped, not taken.
        const s = 1 / Math.sqrt(dp);
        let mx = 0;
        let mn = 0;
        for (let i = 0; i < n; i++) {
          const f = Math.fround(R[i * m + c]! * s);
          F[i * cap + k] = f;
          const di = d[i]! - f * f;
          dNew[i] = di;
          if (di > mx && i !== p) mx = di;
          if (di < mn && i !== p) mn = di;
        }
        if (mn < -floor) {
          taken[p] = 1;
          dropped++;
          continue;
        }
        d.set(dNew);
        // The later candidates' residuals lose f f[cand[e]].
        if (c + 1 < m) {
          const fc = new Float64Array(m);
          for (let e = c + 1; e < m; e++) fc[e] = F[cand[e]! * cap + k]!;
          for (let i = 0; i < n; i++) {
            const f = F[i * cap + k]!;
            if (f === 0) continue;
            const row = i * m;
            for (let e = c + 1; e < m; e++) R[row + e]! -= f * fc[e]!;
          }
        }
        d[p] = 0;
        taken[p] = 1;
        pivots[k] = p;
        k++;
        accepted++;
        maxResidual = mx;
      }
      idle = accepted === 0 ? idle + 1 : 0;
      want = Math.min(B, Math.max(MIN_CANDIDATES, 2 * accepted));
      release(roundBytes);
      hostMs += performance.now() - t;
      opts.onRound?.(k, maxResidual);
      // Rounds that take nothing (rpcholesky drawing explained points) end the search after a few.
      if (idle >= 4 || (opts.rule === 'uniform' && next >= n) || opts.cancelled?.() === true) break;
    }
    t = performance.now();
    let out: Float32Array = F;
    if (k < cap) {
      hold(n * k * 4);
      out = compact(F, n, cap, k);
      release(n * cap * 4);
    }
    hostMs += performance.now() - t;
    release(work);
    // F's bytes stay counted: they are the caller's to release (releaseWorkspace) when done with it.
    held -= out.byteLength;
    return { F: out, n, rank: k, pivots: pivots.slice(0, k), maxResidual, columnsComputed, dispatches, dropped, kernelMs, hostMs, bytes: out.byteLength };
  } finally {
    record.free(held);
  }
}

/** Stops counting a factor's or a preconditioner's bytes in stats() (its owner is done with it). */
export function releaseWorkspace(w: { readonly bytes: number }): void {
  record.free(w.bytes);
}

/** Up to `want` candidate pivots for a round (never taken ones; uniform: the next ones of `order`). */
function pickCandidates(
  rule: LandmarkRule,
  d: Float64Array,
  taken: Uint8Array,
  want: number,
  rand: () => number,
  order: Int32Array | undefined,
  next: number,
  floor: number,
): { idx: Int32Array; next: number } {
  const n = d.length;
  if (rule === 'uniform') {
    const out: number[] = [];
    let at = next;
    while (out.length < want && at < n) {
      const i = order![at++]!;
      if (taken[i] === 0 && d[i]! > floor) out.push(i);
    }
    return { idx: Int32Array.from(out), next: at };
  }
  if (rule === 'greedy') {
    // The `want` largest residuals, largest first (insertion into a short sorted list).
    const best: number[] = [];
    const val: number[] = [];
    for (let i = 0; i < n; i++) {
      const v = d[i]!;
      if (taken[i] !== 0 || v <= floor || (best.length === want && v <= val[want - 1]!)) continue;
      let at = best.length === want ? want - 1 : best.length;
      while (at > 0 && val[at - 1]! < v) {
        if (at < want) {
          best[at] = best[at - 1]!;
          val[at] = val[at - 1]!;
        }
        at--;
      }
      best[at] = i;
      val[at] = v;
    }
    return { idx: Int32Array.from(best), next };
  }
  // rpcholesky: `want` draws with probability proportional to the residual (duplicates dropped).
  const cum = new Float64Array(n);
  let total = 0;
  for (let i = 0; i < n; i++) {
    total += taken[i] === 0 ? Math.max(0, d[i]!) : 0;
    cum[i] = total;
  }
  const picked = new Set<number>();
  for (let s = 0; s < want && total > 0; s++) {
    const u = rand() * total;
    let lo = 0;
    let hi = n - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cum[mid]! > u) hi = mid;
      else lo = mid + 1;
    }
    picked.add(lo);
  }
  return { idx: Int32Array.from(picked), next };
}

/**
 * R = C - F[:, :k] G^T with G = F[cand, :k]: the candidates' kernel columns minus what the factor
 * explains. Four candidates per pass over a row of F (four dot products share its loads).
 */
function residualColumns(F: Float32Array, stride: number, k: number, C: Float32Array, cand: Int32Array, n: number): Float64Array {
  const m = cand.length;
  const R = new Float64Array(n * m);
  for (let e = 0; e < R.length; e++) R[e] = C[e]!;
  if (k === 0) return R;
  const G = new Float64Array(m * k);
  for (let c = 0; c < m; c++) for (let a = 0; a < k; a++) G[c * k + a] = F[cand[c]! * stride + a]!;
  for (let i = 0; i < n; i++) {
    const o = i * stride;
    const row = i * m;
    let c = 0;
    for (; c + 3 < m; c += 4) {
      const g0 = c * k;
      const g1 = g0 + k;
      const g2 = g1 + k;
      const g3 = g2 + k;
      let s0 = 0;
      let s1 = 0;
      let s2 = 0;
      let s3 = 0;
      for (let a = 0; a < k; a++) {
        const f = F[o + a]!;
        s0 += f * G[g0 + a]!;
        s1 += f * G[g1 + a]!;
        s2 += f * G[g2 + a]!;
        s3 += f * G[g3 + a]!;
      }
      R[row + c]! -= s0;
      R[row + c + 1]! -= s1;
      R[row + c + 2]! -= s2;
      R[row + c + 3]! -= s3;
    }
    for (; c < m; c++) {
      const g = c * k;
      let s = 0;
      for (let a = 0; a < k; a++) s += F[o + a]! * G[g + a]!;
      R[row + c]! -= s;
    }
  }
  return R;
}

/** The first k of `stride` columns of a row-major [n, stride] array. */
function compact(F: Float32Array, n: number, stride: number, k: number): Float32Array {
  const out = new Float32Array(n * k);
  for (let i = 0; i < n; i++) out.set(F.subarray(i * stride, i * stride + k), i * k);
  return out;
}
