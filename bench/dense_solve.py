"""Dense float64 reference for bench/solve.ts where a JavaScript Cholesky would take too long (n = 2e4:
a 3.2 GB matrix, O(n^3)). Optional: the bench runs without it (no numpy, no reference), and no
test or CI step uses it.

Usage: python3 bench/dense_solve.py DIR n D Dv g alpha
Reads DIR/x.f32 ([n, D] float32) and DIR/b.f32 ([n, Dv] float32), builds A = alpha I + K with
K_ij = exp(-g |x_i - x_j|^2) in float64 (in row blocks, so the only n x n array is A itself),
solves A c = b with numpy.linalg.solve (float64 LU) and writes
DIR/c.f64 ([n, Dv] float64). Prints one JSON line: seconds and the method used.
"""
import json
import sys
import time

import numpy as np


def main() -> None:
    d, n, D, Dv, g, alpha = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), float(sys.argv[5]), float(sys.argv[6])
    x = np.fromfile(f"{d}/x.f32", dtype=np.float32).astype(np.float64).reshape(n, D)
    b = np.fromfile(f"{d}/b.f32", dtype=np.float32).astype(np.float64).reshape(n, Dv)
    t0 = time.perf_counter()
    A = np.empty((n, n), dtype=np.float64)
    for r0 in range(0, n, 1024):
        r1 = min(n, r0 + 1024)
        # |x_i - x_j|^2 exactly as the difference form (the expansion |x|^2 + |y|^2 - 2 x.y cancels).
        d2 = np.zeros((r1 - r0, n))
        for k in range(D):
            diff = x[r0:r1, k, None] - x[None, :, k]
            d2 += diff * diff
        np.exp(-g * d2, out=A[r0:r1])
    A[np.diag_indices(n)] += alpha
    # numpy's LAPACK (LU with partial pivoting, float64). scipy's cho_factor would halve the work,
    # but the scipy on the machine these results come from crashes in potrf at n = 2e4.
    c = np.linalg.solve(A, b)
    method = "numpy.linalg.solve (float64 LU)"
    c.astype(np.float64).tofile(f"{d}/c.f64")
    print(json.dumps({"seconds": time.perf_counter() - t0, "method": method}))


if __name__ == "__main__":
    main()
