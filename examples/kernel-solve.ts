/**
 * The pykeops "KernelSolve reduction" tutorial, reproduced with kernelflow: solve a Gaussian
 * kernel linear system (alpha Id + K_xx) c = b by conjugate gradient, compare it with a dense
 * float64 Cholesky solve (the tutorial compares with torch.linalg.solve), then compare the
 * derivative of <e, c> with respect to the points x, and plot the first 40 values of each.
 *
 * Run: npx tsx examples/kernel-solve.ts [--N 500] [--out out] [--backend auto|cpu|webgpu] [--seed 0]
 * N defaults to 5000 on a GPU and 500 on the CPU backend or a software WebGPU adapter (lavapipe).
 * The backend may also be chosen with KF_BACKEND=cpu.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Vi, Vj, backendName, grad, init, kernelSolve, shutdown, softwareAdapter, source, type Tensor } from '../src/index.js';
import { Rng, backendFlag, flag, intFlag, seconds } from './lib/cli.js';
import { cholesky, choleskySolve, gaussianMatrix, relErr, solveGradX } from './lib/dense.js';
import { BLUE, ORANGE, linePlotSvg, type Panel } from './lib/svg.js';
import { progressLine, solveProgressText } from './lib/progress.js';

await init({ backend: backendFlag() });
const N = intFlag('N', backendName() === 'webgpu' && !softwareAdapter() ? 5000 : 500); // Number of points
const D = 2; // Dimension of the ambient space
const Dv = 2; // Dimension of the vectors (= number of linear problems to solve)
const sigma = 0.1; // Radius of our RBF kernel
const outDir = flag('out') ?? 'out';
const rng = new Rng(Number(flag('seed') ?? 0));

const x = rng.rand(N * D); // torch.rand(N, D)
const b = rng.rand(N * Dv); // torch.rand(N, Dv)
const g = Math.fround(0.5 / sigma ** 2); // Parameter of the Gaussian RBF kernel
const G = Float32Array.of(g);

// KeOps kernel: a Gaussian RBF kernel, and its inverse with a ridge regularization alpha.
const formula = 'Exp(- g * SqDist(x,y)) * b';
const aliases = [
  `x = Vi(${D})`, // First arg:  i-variable of size D
  `y = Vj(${D})`, // Second arg: j-variable of size D
  `b = Vj(${Dv})`, // Third arg:  j-variable of size Dv
  'g = Pm(1)', // Fourth arg: scalar parameter
];
const alpha = 0.01;
const Kinv = kernelSolve(formula, aliases, 'b', { axis: 1 });

const X = { data: x, shape: [N, D] };
const B = { data: b, shape: [N, Dv] };
console.log(`Solving a Gaussian linear system, with ${N} points in dimension ${D}.`);
let t0 = performance.now();
// A solve that runs for more than a second shows its progress on one line of stderr.
const line = progressLine('kernelSolve');
const c = await Kinv(X, X, B, { data: G, shape: [1] }, { alpha, onProgress: (p) => line.update(solveProgressText(p)) });
line.done();
console.log(`Timing (kernelflow implementation, ${backendName()}): ${seconds(t0)} s`);

// The straightforward dense implementation: materialise alpha Id + K_xx in float64, Cholesky, solve.
if (N > 2000) process.stderr.write(`(the dense reference factorises a ${N} x ${N} matrix in single-threaded JavaScript: O(N^3), expect tens of seconds)\n`);
t0 = performance.now();
const L = cholesky(gaussianMatrix(x, N, D, g, alpha), N);
const cDense = choleskySolve(L, N, b, Dv);
console.log(`Timing (dense float64 implementation): ${seconds(t0)} s`);
console.log(`Relative error = ${relErr(c.data, cDense).toExponential(3)}`);

/** The tutorial's figure: one panel per column, first 40 values, kernelflow solid and dense dashed. */
function comparison(file: string, name: string, title: string, got: ArrayLike<number>, want: ArrayLike<number>, cols: number): string {
  const column = (v: ArrayLike<number>, col: number): number[] => Array.from({ length: Math.min(40, N) }, (_, i) => v[i * cols + col]!);
  const panels: Panel[] = Array.from({ length: cols }, (_, col) => ({
    title: `${name}[:40, ${col}]`,
    series: [
      { label: 'kernelflow', values: column(got, col), color: BLUE },
      { label: 'dense float64', values: column(want, col), color: ORANGE, dashed: true },
    ],
  }));
  mkdirSync(outDir, { recursive: true });
  const path = join(outDir, file);
  writeFileSync(path, linePlotSvg(panels, { title: `${title}, N = ${N}: kernelflow vs dense float64` }));
  return path;
}
console.log(`Plot written to ${comparison('kernel-solve.svg', 'c', 'c = (\u03b1 Id + K_xx)\u207b\u00b9 b', c.data, cDense, Dv)}`);

// Compare the derivatives of <e, c> with respect to x. kernelSolve gives values; derivatives come
// from the graph API: the same solve as a node whose input x is a source, and grad() over it.
console.log('1st order derivative');
const e = rng.randn(N * D); // torch.randn(N, D)
const xs = source(x, [N, D], 'x');
const bs = source(b, [N, Dv], 'b');
const cNode = Vi(xs).sqdist(Vj(xs)).mul(-g).exp().solve(bs, { alpha });
let iterations = 0;
const graphLine = progressLine('K_xx.solve');
const progress = cNode.progress().subscribe((p) => {
  iterations = p.iter;
  graphLine.update(solveProgressText(p));
});
t0 = performance.now();
const cGraph = await cNode.read(); // c, as computed by the forward pass that autograd records
graphLine.done();
console.log(
  `(graph API: c = K_xx.solve(b, { alpha }) in ${seconds(t0)} s, ${iterations} CG iterations, ` +
    `relative difference to kernelSolve's c = ${relErr(cGraph.data, c.data).toExponential(2)})`,
);
progress.unsubscribe();
const [uNode] = grad(cNode, [xs], { data: e, shape: [N, D] });
t0 = performance.now();
const u: Tensor = await uNode!.read();
console.log(`Timing (kernelflow derivative): ${seconds(t0)} s`);

// Dense: the adjoint a = (alpha Id + K)^-1 e reuses the Cholesky factor (as autograd reuses the
// factorisation), then u_i = 2g sum_j (a_i.c_j + a_j.c_i) K_ij (x_i - x_j), see lib/dense.ts.
t0 = performance.now();
const aDense = choleskySolve(L, N, e, Dv);
const uDense = solveGradX(x, aDense, cDense, N, D, Dv, g);
console.log(`Timing (dense float64 derivative): ${seconds(t0)} s`);
console.log(`Relative error = ${relErr(u.data, uDense).toExponential(3)}`);
console.log(`Plot written to ${comparison('kernel-solve-grad.svg', 'u', 'u = \u2202\u27e8e, c\u27e9/\u2202x', u.data, uDense, D)}`);

await shutdown();
