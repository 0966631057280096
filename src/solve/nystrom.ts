import { KernelflowError } from '../errors.js';

/** Dense float64 helpers for the m×m systems of the preconditioner (m is a few hundred). */
function cholesky(S: Float64Array, m: number): Float64Array {
  const L = new Float64Array(m * m);
  for (let j = 0; j < m; j++) {
    let d = S[j * m + j]!;
    for (let k = 0; k < j; k++) d -= L[j * m + k]! ** 2;
    if (!(d > 0)) throw new KernelflowError('SOLVE', `Nyström preconditioner: the landmark system is not positive definite (pivot ${j} = ${d})`);
    const ljj = Math.sqrt(d);
    L[j * m + j] = ljj;
    for (let i = j + 1; i < m; i++) {
      let s = S[i * m + j]!;
      for (let k = 0; k < j; k++) s -= L[i * m + k]! * L[j * m + k]!;
      L[i * m + j] = s / ljj;
    }
  }
  return L;
}

/** Solves L L^T u = t in place for `cols` right-hand sides stored [m, cols]. */
function choleskySolve(L: Float64Array, m: number, t: Float64Array, cols: number): void {
  for (let c = 0; c < cols; c++) {
    for (let i = 0; i < m; i++) {
      let s = t[i * cols + c]!;
      for (let k = 0; k < i; k++) s -= L[i * m + k]! * t[k * cols + c]!;
      t[i * cols + c] = s / L[i * m + i]!;
    }
    for (let i = m - 1; i >= 0; i--) {
      let s = t[i * cols + c]!;
      for (let k = i + 1; k < m; k++) s -= L[k * m + i]! * t[k * cols + c]!;
      t[i * cols + c] = s / L[i * m + i]!;
    }
  }
}

/**
 * Nyström preconditioner for (alpha I + K) (Falkon-style): K ≈ K_nm K_mm^-1 K_mn from m landmarks,
 * inverted by Woodbury: P^-1 r = (r - K_nm (alpha K_mm + K_mn K_nm)^-1 K_mn r) / alpha.
 * `Knm` is [n, m], `Kmm` is [m, m], both dense float64.
 */
export function nystromPreconditioner(Knm: Float64Array, Kmm: Float64Array, n: number, m: number, alpha: number): (r: Float64Array) => Float64Array {
  // Kmm comes from float32 kernels: a near-duplicate landmark pair leaves it indefinite by a few
  // float32 ulps per entry. A jitter above that error (m ulps of its largest entry) keeps
  // alpha (Kmm + eps I) + Kmn Knm positive definite and barely changes the preconditioner.
  let maxDiag = 0;
  for (let a = 0; a < m; a++) maxDiag = Math.max(maxDiag, Math.abs(Kmm[a * m + a]!));
  const eps = m * 2 ** -21 * maxDiag;
  const S = new Float64Array(m * m);
  for (let a = 0; a < m; a++) for (let b = 0; b < m; b++) S[a * m + b] = alpha * (Kmm[a * m + b]! + (a === b ? eps : 0));
  // S += K_mn K_nm, accumulated row by row of K_nm (cache-friendly, symmetric half then mirrored).
  for (let i = 0; i < n; i++) {
    const row = i * m;
    for (let a = 0; a < m; a++) {
      const ka = Knm[row + a]!;
      if (ka === 0) continue;
      for (let b = 0; b <= a; b++) S[a * m + b]! += ka * Knm[row + b]!;
    }
  }
  // Symmetrise from the lower half: Kmm's two float32 halves may differ in the last bit.
  for (let a = 0; a < m; a++) for (let b = 0; b < a; b++) S[b * m + a] = S[a * m + b]!;
  const L = cholesky(S, m);
  return (r: Float64Array): Float64Array => {
    const cols = r.length / n;
    const t = new Float64Array(m * cols);
    for (let i = 0; i < n; i++)
      for (let a = 0; a < m; a++) {
        const k = Knm[i * m + a]!;
        for (let c = 0; c < cols; c++) t[a * cols + c]! += k * r[i * cols + c]!;
      }
    choleskySolve(L, m, t, cols);
    const z = new Float64Array(r.length);
    for (let i = 0; i < n; i++)
      for (let c = 0; c < cols; c++) {
        let s = 0;
        for (let a = 0; a < m; a++) s += Knm[i * m + a]! * t[a * cols + c]!;
        z[i * cols + c] = (r[i * cols + c]! - s) / alpha;
      }
    return z;
  };
}

/** m distinct row indices out of n, deterministic for a seed (a partial Fisher-Yates shuffle). */
export function pickLandmarks(n: number, m: number, seed = 1): Int32Array {
  const idx = Int32Array.from({ length: n }, (_, k) => k);
  let s = seed >>> 0;
  const next = (): number => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 4294967296;
  };
  for (let k = 0; k < Math.min(m, n); k++) {
    const j = k + Math.floor(next() * (n - k));
    [idx[k], idx[j]] = [idx[j]!, idx[k]!];
  }
  return idx.slice(0, Math.min(m, n)).sort();
}
