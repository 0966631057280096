/**
 * Kernel value errors of the solve bench's operator (issue 19): for the seed problem of
 * bench/solve.ts (n points, Gaussian sigma 0.1), per backend, the relative error of the kernel
 * values K(x_i, x_l) of four landmark columns against float64, binned by the exponent g·|x_i - x_l|²
 * (mean: bias, rms: noise), and the time of one K·c. When bench/solve.ts has cached the dense
 * float64 solution c for this n (in the OS temp directory), also the residual of that c under each
 * backend's operator and the error of K·c on 200 rows. Measured at n = 2e4 (lavapipe): rms
 * 1.75e-7 (exponent 0-5) to 1.6e-6 (25-30), mean 1e-7 to 5e-7; the CPU backend 2.5e-8 (its
 * float32 output). See bench/solve_error_model.py for what such errors do to the solution.
 * Usage: npx tsx bench/solve-kernel-error.ts [n]
 */
import { existsSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { init, shutdown } from '../src/index.js';
import { Cat, mkVar } from '../src/graph/formula.js';
import { op } from '../src/ops/build.js';
import { executeReduction } from '../src/scheduler/execute.js';
const n = Number(process.argv[2] ?? 20000), D = 2, Dv = 2, alpha = 0.01, g = Math.fround(50);
let s = 7 + n;
const rand = (m: number) => Float32Array.from({ length: m }, () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648));
const x = rand(n * D), b = rand(n * Dv);
const cached = join(tmpdir(), `kernelflow-bench-solve-dense-${n}-7.f64`);
const c = existsSync(cached) ? (() => { const buf = readFileSync(cached); return new Float64Array(buf.buffer, buf.byteOffset, n * Dv); })() : null;
const K = op('Exp', [op('Minus', [op('Mult', [mkVar(2, 1, Cat.param), op('SqDist', [mkVar(0, D, Cat.i), mkVar(1, D, Cat.j)])])])]);
const Kc = op('Mult', [K, mkVar(3, Dv, Cat.j)]);
const vals = [{ data: x, shape: [n, D] }, { data: x, shape: [n, D] }, { data: Float32Array.of(g), shape: [1] }];
// float64 K c for a subset of rows
const rowsIdx = Array.from({ length: 200 }, (_, k) => Math.floor(k * n / 200));
const exact = c === null ? [] : rowsIdx.map((i) => { const o=[0,0]; for (let j=0;j<n;j++){let d2=0;for(let k=0;k<D;k++)d2+=(x[i*D+k]!-x[j*D+k]!)**2;const kv=Math.exp(-g*d2);o[0]+=kv*c[j*Dv]!;o[1]+=kv*c[j*Dv+1]!;} return o; });
for (const backend of ['webgpu', 'cpu'] as const) {
  await init({ backend });
  const c32 = Float32Array.from(c ?? []);
  for (let rep = 0; rep < (c === null ? 0 : 2); rep++) {
    const t0 = performance.now();
    const [out] = await executeReduction(Kc, { reduction: 'Sum', axis: 1, backend }, [...vals, { data: c32, shape: [n, Dv] }]);
    const ms = performance.now() - t0;
    let num = 0, den = 0, e2 = 0, m2 = 0;
    for (let k = 0; k < n * Dv; k++) { num += (b[k]! - out!.data[k]! - alpha * c![k]!) ** 2; den += b[k]! ** 2; }
    rowsIdx.forEach((i, r) => { for (let q=0;q<Dv;q++){ e2 += (out!.data[i*Dv+q]! - exact[r]![q]!)**2; m2 += exact[r]![q]!**2; } });
    console.log(backend, 'matvec ms', ms.toFixed(0), 'resid of dense c under this operator', Math.sqrt(num/den).toExponential(2), 'K c rel err (200 rows)', Math.sqrt(e2/m2).toExponential(2));
  }
  // per-pair kernel error: columns via unit vectors for 4 landmarks
  const B = 4; const e = new Float32Array(n*B); const lm=[0,1,2,3];
  const cols = op('Mult', [K, mkVar(3, B, Cat.j)]);
  const xi = Float32Array.from(lm.flatMap((l)=>[x[l*D]!, x[l*D+1]!]));
  const unit = new Float32Array(B*B); for (let q=0;q<B;q++) unit[q*B+q]=1;
  const [C] = await executeReduction(cols, { reduction: 'Sum', axis: 1, backend }, [vals[0], { data: xi, shape: [B, D] }, vals[2], { data: unit, shape: [B, B] }]);
  const bins = new Map<number, number[]>();
  for (let i=0;i<n;i++) for (let q=0;q<B;q++){ let d2=0; for(let k=0;k<D;k++) d2+=(x[i*D+k]!-xi[q*D+k]!)**2; const arg=g*d2; if (arg>30) continue; const kv=Math.exp(-arg); const rel=(C!.data[i*B+q]!-kv)/kv; const bin=Math.floor(arg/5); (bins.get(bin)??bins.set(bin,[]).get(bin)!).push(rel);}
  for (const [bin, a] of [...bins].sort((p,q)=>p[0]-q[0])) { const mean=a.reduce((s,v)=>s+v,0)/a.length; const rms=Math.sqrt(a.reduce((s,v)=>s+v*v,0)/a.length); console.log(backend, `arg ${bin*5}-${bin*5+5}: pairs ${a.length} mean rel ${mean.toExponential(2)} rms ${rms.toExponential(2)} (eps32=${(2**-24).toExponential(2)})`); }
  await shutdown();
}
