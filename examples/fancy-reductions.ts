/**
 * The pykeops "Fancy reductions, solving linear systems" tutorial, reproduced with kernelflow's
 * LazyTensor API: S_ij = |x_i - y_j|^2 and V_ij = x_i - y_j reduced every way KeOps can, then a
 * kernel linear system solved with `K_xx.solve(b_i, { alpha })`, checked, and differentiated.
 *
 * Run: npm run example   (or npx tsx examples/fancy-reductions.ts [--M 1000] [--N 2000] [--backend auto|cpu|webgpu] [--seed 0])
 * (M, N) defaults to (100000, 200000) on a GPU and (1000, 2000) on the CPU backend or a software
 * WebGPU adapter (lavapipe). The backend may also be chosen with KF_BACKEND=cpu.
 */
import { Vi, Vj, backendName, grad, init, shutdown, softwareAdapter, source, type Node, type Tensor } from '../src/index.js';
import { Rng, backendFlag, flag, intFlag, seconds } from './lib/cli.js';
import { progressLine, solveProgressText } from './lib/progress.js';

await init({ backend: backendFlag() });
const big = backendName() === 'webgpu' && !softwareAdapter(); // lavapipe is a CPU: CPU sizes
const M = intFlag('M', big ? 100_000 : 1000);
const N = intFlag('N', big ? 200_000 : 2000);
const D = 3;
const rng = new Rng(Number(flag('seed') ?? 0));

// ## LogSumExp, KMin and advanced reductions

const x = source(rng.randn(M * D), [M, D], 'x'); // torch.randn(M, D)
const y = source(rng.randn(N * D), [N, D], 'y'); // torch.randn(N, D)
const x_i = Vi(x); // (M, 1, D) LazyTensor
const y_j = Vj(y); // (1, N, D) LazyTensor
const V_ij = x_i.sub(y_j); // (M, N, D) symbolic tensor of differences
const S_ij = V_ij.square().sum(-1); // (M, N, 1) = (M, N) symbolic matrix of squared distances

console.log(`kernelflow LazyTensor\nformula: ${S_ij.formulaString}\nshape: (${S_ij.shape.join(', ')})`);
console.log(`kernelflow LazyTensor\nformula: ${V_ij.formulaString}\nshape: (${V_ij.shape.join(', ')})`);

const shape = (t: Tensor): string => `[${t.shape.join(', ')}]`;
/** Reads the node(s) and prints the label with the shape(s), as the tutorial prints `.shape`. */
const show = async (label: string, node: Node | readonly Node[]): Promise<Tensor[]> => {
  const t0 = performance.now();
  const ts = await Promise.all((Array.isArray(node) ? node : [node]).map((n: Node) => n.read()));
  console.log(`${label.padEnd(82)} ${ts.map(shape).join(' ')}  (${seconds(t0)} s)`);
  return ts;
};

await show("Sum reduction of S_ij wrt. the 'N' dimension:", S_ij.sum(1));
await show("Sum reduction of V_ij wrt. the 'M' dimension:", V_ij.sum(0));
await show("LogSumExp reduction of S_ij wrt. the 'M' dimension:", S_ij.logsumexp(0));
await show("LogSumExp reduction of S_ij, with 'weight' V_ij, wrt. the 'N' dimension:", S_ij.logsumexp(1, { weight: V_ij }));
await show("Min    reduction of S_ij wrt. the 'M' dimension:", S_ij.min(0));
await show("ArgMin reduction of S_ij wrt. the 'N' dimension:", S_ij.argmin(1));
await show("Max    reduction of V_ij wrt. the 'M' dimension:", V_ij.max(0));
await show("ArgMax reduction of V_ij wrt. the 'N' dimension:", V_ij.argmax(1));
await show("Min-ArgMin reduction on S_ij wrt. the 'M' dimension:", S_ij.minArgmin(0));
await show("Max-ArgMax reduction on V_ij wrt. the 'N' dimension:", V_ij.maxArgmax(1));
let K = 5;
await show(`KMin    reduction of S_ij wrt. the 'M' dimension (K=${K}):`, S_ij.kmin(K, 0));
await show(`ArgKMin reduction of S_ij wrt. the 'N' dimension (K=${K}):`, S_ij.argKmin(K, 1));
K = 7; // It even works on vector formulas!
await show(`KMin    reduction of V_ij wrt. the 'M' dimension (K=${K}):`, V_ij.kmin(K, 0));
await show(`ArgKMin reduction of V_ij wrt. the 'N' dimension (K=${K}):`, V_ij.argKmin(K, 1));
await show("SumSoftMaxWeight reduction of S_ij, with weights V_ij, wrt. the 'N' dimension:", S_ij.sumSoftmaxWeight(V_ij, 1));

// ## Solving linear systems: a* = (alpha Id + K_xx)^-1 b

const xs = source(rng.randn(M * D), [M, D], 'x'); // Random point cloud
const x_i2 = Vi(xs); // (M, 1, D) LazyTensor
const x_j = Vj(xs); // (1, M, D) LazyTensor
const K_xx = x_i2.sub(x_j).square().sum(-1).neg().exp(); // Symbolic (M, M) Gaussian kernel matrix

const alpha = 0.1; // "Ridge" regularization parameter
const b_i = source(rng.randn(M * 4), [M, 4], 'b'); // Target signal, supported by the x_i's
const a_i = K_xx.solve(b_i, { alpha }); // Source signal, supported by the x_i's
let iterations = 0;
const line = progressLine('K_xx.solve'); // shown on stderr when the solve takes more than a second
const progress = a_i.progress().subscribe((p) => {
  iterations = p.iter;
  line.update(solveProgressText(p));
});
let t0 = performance.now();
const a = await a_i.read();
line.done();
progress.unsubscribe();
console.log(`a_i is now a Tensor of shape ${shape(a)}.  (${seconds(t0)} s, ${iterations} CG iterations)`);

// As expected, (alpha Id + K_xx) a ~= b. A formula of the i index alone, reduced over j, is an
// elementwise map: c_i = alpha * a_i + K_xx @ a_i is one more node of the graph.
const c_i = Vi(a_i).mul(alpha).add(Vi(K_xx.matmul(a_i))).sum(1); // Reconstructed target signal
const [c, b] = await Promise.all([c_i.read(), b_i.read()]);
let se = 0;
for (let k = 0; k < b.data.length; k++) se += (c.data[k]! - b.data[k]!) ** 2;
/** Python's '{:.2e}': two digits of exponent. */
const sci = (v: number): string => v.toExponential(2).replace(/e([+-])(\d)$/, 'e$10$2');
console.log(`Mean squared reconstruction error: ${sci(se / b.data.length)}`);

// solve() supports gradients, as (nearly) every node does: [g_i] = torch.autograd.grad((a_i**2).sum(), [x])
const [g_i] = grad(Vi(a_i).square().sum(-1).sum(0), [xs]);
t0 = performance.now();
const gx = await g_i!.read();
console.log(`g_i is now a Tensor of shape ${shape(gx)}.  (${seconds(t0)} s)`);
console.log(`(backend: ${backendName()}${softwareAdapter() ? ', software adapter' : ''})`);

await shutdown();
