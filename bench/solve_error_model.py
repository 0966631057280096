"""Where the WebGPU kernel solve's error against a dense float64 solve comes from (issue 19).

Dense float64 solves of the bench/solve.ts seed problem (points in the unit square, Gaussian
sigma 0.1, alpha 0.01, the same seeded points and b) with the kernel matrix perturbed by models
of float32 kernel evaluation: a bias (constant, or growing with the exponent as the rounding of
log2(e) gives), and symmetric random relative noise of a given size per pair. Prints the relative
error of each against the unperturbed solve. Measured at n = 5000: biases of 1e-7 give 3e-9,
random noise of 1e-7 per pair gives 1.1e-4, and the noise of the best float32 evaluation
(half an ulp times 1 + |exponent|) 5e-5: the random per-pair rounding of the kernel values,
amplified by 1/alpha, not the CG tolerance, bounds a float32 operator's solution.

Usage: python3 bench/solve_error_model.py [n]   (n = 5000: about 20 s; needs numpy)
"""
import sys

import numpy as np
n=int(sys.argv[1]) if len(sys.argv) > 1 else 5000; D=2; Dv=2; alpha=0.01; g=np.float32(50.0).astype(np.float64)
s=7+n
def rand(m):
    global s
    out=np.empty(m,dtype=np.float32)
    for k in range(m):
        s=(s*1103515245+12345)%2147483648; out[k]=s/2147483648
    return out
x=rand(n*D).astype(np.float64).reshape(n,D); b=rand(n*Dv).astype(np.float64).reshape(n,Dv)
d2=((x[:,None,:]-x[None,:,:])**2).sum(-1); arg=g*d2; K=np.exp(-arg)
I=np.eye(n)
c0=np.linalg.solve(K+alpha*I,b)
def err(Kt): c=np.linalg.solve(Kt+alpha*I,b); return np.linalg.norm(c-c0)/np.linalg.norm(c0)
rng=np.random.default_rng(1)
eps=2.0**-24
print('log2e bias 1.335e-8*arg', err(K*(1+1.335e-8*arg)))
print('const bias 1e-7', err(K*(1+1e-7)))
N=rng.standard_normal((n,n)); N=(N+N.T)/np.sqrt(2)
print('random sym rms 1e-7', err(K*(1+1e-7*N)))
print('random sym rms eps*arg', err(K*(1+eps*arg*N)))
print('random sym rms 0.5eps*(1+arg)', err(K*(1+0.5*eps*(1+arg)*N)))
# measured-like: bias 1e-7 + 1.3e-8 arg, rms ~ 1.75e-7..1.5e-6
print('measured-like', err(K*(1+ (7e-8+1.335e-8*arg) + (1.5e-7+4.5e-8*arg)*N)))
print('measured-like minus log2e bias', err(K*(1+ 7e-8 + (1.5e-7+4.5e-8*arg)*N)))
