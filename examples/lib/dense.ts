/**
 * Dense float64 linear algebra, the reference the examples compare kernelflow with (what the pykeops
 * tutorials do with PyTorch): the Gaussian kernel matrix, its Cholesky factor, triangular solves,
 * and the closed-form derivative of a kernel solve with respect to the points.
 */

/** A = alpha Id + K, K_ij = exp(-g |x_i - x_j|^2), for n points x [n, D]: n*n float64, row-major. */
export function gaussianMatrix(x: ArrayLike<number>, n: number, D: number, g: number, alpha: number): Float64Array {
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    A[i * n + i] = 1 + alpha;
    for (let j = 0; j < i; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (x[i * D + k]! - x[j * D + k]!) ** 2;
      A[i * n + j] = A[j * n + i] = Math.exp(-g * d2);
    }
  }
  return A;
}

/**
 * The Cholesky factor L (A = L L^T) of a symmetric positive definite n*n matrix, in a copy. Each
 * entry is a dot product of two contiguous row prefixes (four accumulators); rows are done in
 * blocks of 16 so that row j is read from memory once per block rather than once per row, which
 * keeps JavaScript within a small factor of its arithmetic speed for n in the thousands.
 * Only the lower triangle of the result is meaningful.
 */
export function cholesky(A0: Float64Array, n: number): Float64Array {
  const L = Float64Array.from(A0);
  const B = 16;
  /** sum_{k<j} L[ri+k] L[rj+k]. */
  const dot = (ri: number, rj: number, j: number): number => {
    let s0 = 0, s1 = 0, s2 = 0, s3 = 0;
    let k = 0;
    for (; k + 3 < j; k += 4) {
      s0 += L[ri + k]! * L[rj + k]!;
      s1 += L[ri + k + 1]! * L[rj + k + 1]!;
      s2 += L[ri + k + 2]! * L[rj + k + 2]!;
      s3 += L[ri + k + 3]! * L[rj + k + 3]!;
    }
    for (; k < j; k++) s0 += L[ri + k]! * L[rj + k]!;
    return s0 + s1 + s2 + s3;
  };
  for (let i0 = 0; i0 < n; i0 += B) {
    const i1 = Math.min(n, i0 + B);
    for (let j = 0; j < i1; j++) {
      const rj = j * n;
      let i = Math.max(i0, j);
      if (i === j) {
        const d = L[rj + j]! - dot(rj, rj, j);
        if (!(d > 0)) throw new Error(`cholesky: the matrix is not positive definite (pivot ${j}: ${d})`);
        L[rj + j] = Math.sqrt(d);
        i++;
      }
      const ljj = L[rj + j]!;
      // Two rows at a time: each L[rj + k] loaded serves two products.
      for (; i + 1 < i1; i += 2) {
        const ra = i * n;
        const rb = ra + n;
        let a0 = 0, a1 = 0, b0 = 0, b1 = 0;
        let k = 0;
        for (; k + 1 < j; k += 2) {
          const l0 = L[rj + k]!;
          const l1 = L[rj + k + 1]!;
          a0 += L[ra + k]! * l0;
          a1 += L[ra + k + 1]! * l1;
          b0 += L[rb + k]! * l0;
          b1 += L[rb + k + 1]! * l1;
        }
        if (k < j) {
          a0 += L[ra + k]! * L[rj + k]!;
          b0 += L[rb + k]! * L[rj + k]!;
        }
        L[ra + j] = (L[ra + j]! - (a0 + a1)) / ljj;
        L[rb + j] = (L[rb + j]! - (b0 + b1)) / ljj;
      }
      if (i < i1) L[i * n + j] = (L[i * n + j]! - dot(i * n, rj, j)) / ljj;
    }
  }
  return L;
}

/** Solves L L^T c = b for b [n, cols] (row-major), given the Cholesky factor L. */
export function choleskySolve(L: Float64Array, n: number, b: ArrayLike<number>, cols: number): Float64Array {
  const c = Float64Array.from(b);
  const tmp = new Float64Array(cols);
  // Forward: L y = b, row by row (row i of L is contiguous).
  for (let i = 0; i < n; i++) {
    const ri = i * n;
    tmp.fill(0);
    for (let k = 0; k < i; k++) {
      const l = L[ri + k]!;
      for (let col = 0; col < cols; col++) tmp[col]! += l * c[k * cols + col]!;
    }
    for (let col = 0; col < cols; col++) c[i * cols + col] = (c[i * cols + col]! - tmp[col]!) / L[ri + i]!;
  }
  // Backward: L^T c = y; column i of L^T is row i of L, so subtract it from the rows above.
  for (let i = n - 1; i >= 0; i--) {
    const ri = i * n;
    for (let col = 0; col < cols; col++) c[i * cols + col] = c[i * cols + col]! / L[ri + i]!;
    for (let k = 0; k < i; k++) {
      const l = L[ri + k]!;
      for (let col = 0; col < cols; col++) c[k * cols + col]! -= l * c[i * cols + col]!;
    }
  }
  return c;
}

/**
 * The derivative of <e, c> with respect to x, where c = (alpha Id + K)^-1 b and
 * K_ij = exp(-g |x_i - x_j|^2): with the adjoint a = (alpha Id + K)^-1 e (A is symmetric),
 *   d<e, c> = -<a, dK c> = 2g sum_ij (a_i . c_j) K_ij (x_i - x_j) . (dx_i - dx_j),
 * so, collecting the dx_i terms of both sums (K is symmetric),
 *   u_i = 2g sum_j (a_i . c_j + a_j . c_i) K_ij (x_i - x_j).
 * `a` [n, Dv] and `c` [n, Dv] are given; returns u [n, D].
 */
export function solveGradX(
  x: ArrayLike<number>, a: ArrayLike<number>, c: ArrayLike<number>, n: number, D: number, Dv: number, g: number,
): Float64Array {
  const u = new Float64Array(n * D);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < i; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (x[i * D + k]! - x[j * D + k]!) ** 2;
      let w = 0;
      for (let v = 0; v < Dv; v++) w += a[i * Dv + v]! * c[j * Dv + v]! + a[j * Dv + v]! * c[i * Dv + v]!;
      w *= 2 * g * Math.exp(-g * d2);
      // The (i, j) and (j, i) terms: the weight is symmetric, x_i - x_j changes sign.
      for (let k = 0; k < D; k++) {
        const dx = w * (x[i * D + k]! - x[j * D + k]!);
        u[i * D + k]! += dx;
        u[j * D + k]! -= dx;
      }
    }
  }
  return u;
}

/** |got - want| / |want| in the Euclidean norm, in float64. */
export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let k = 0; k < want.length; k++) {
    num += (got[k]! - want[k]!) ** 2;
    den += want[k]! ** 2;
  }
  return Math.sqrt(num / den);
}
