/** Dense float64 linear algebra for references: Gaussian kernel matrices and Cholesky solves. */

export function gaussianMatrix(x: ArrayLike<number>, n: number, D: number, g: number, alpha: number): Float64Array {
  const A = new Float64Array(n * n);
  for (let i = 0; i < n; i++)
    for (let j = 0; j < n; j++) {
      let d2 = 0;
      for (let k = 0; k < D; k++) d2 += (x[i * D + k]! - x[j * D + k]!) ** 2;
      A[i * n + j] = Math.exp(-g * d2) + (i === j ? alpha : 0);
    }
  return A;
}

/** Solves A c = b (A symmetric positive definite, n×n; b [n, cols]) by Cholesky, in float64. */
export function choleskySolve(A0: Float64Array, n: number, b: ArrayLike<number>, cols: number): Float64Array {
  const A = Float64Array.from(A0);
  for (let j = 0; j < n; j++) {
    let d = A[j * n + j]!;
    for (let k = 0; k < j; k++) d -= A[j * n + k]! ** 2;
    const l = Math.sqrt(d);
    A[j * n + j] = l;
    for (let i = j + 1; i < n; i++) {
      let s = A[i * n + j]!;
      for (let k = 0; k < j; k++) s -= A[i * n + k]! * A[j * n + k]!;
      A[i * n + j] = s / l;
    }
  }
  const c = Float64Array.from(b);
  for (let col = 0; col < cols; col++) {
    for (let i = 0; i < n; i++) {
      let s = c[i * cols + col]!;
      for (let k = 0; k < i; k++) s -= A[i * n + k]! * c[k * cols + col]!;
      c[i * cols + col] = s / A[i * n + i]!;
    }
    for (let i = n - 1; i >= 0; i--) {
      let s = c[i * cols + col]!;
      for (let k = i + 1; k < n; k++) s -= A[k * n + i]! * c[k * cols + col]!;
      c[i * cols + col] = s / A[i * n + i]!;
    }
  }
  return c;
}

export function relErr(got: ArrayLike<number>, want: ArrayLike<number>): number {
  let num = 0;
  let den = 0;
  for (let k = 0; k < want.length; k++) {
    num += (got[k]! - want[k]!) ** 2;
    den += want[k]! ** 2;
  }
  return Math.sqrt(num / den);
}
