/**
 * The pykeops "fancy reductions" tutorial, reproduced with kernelflow's LazyTensor API:
 * S_ij = |x_i - y_j|^2 and V_ij = x_i - y_j, reduced every way KeOps can.
 * Run: npm run example            (sizes: --M 1000 --N 2000 by default on the CPU backend)
 */
import { Pm, Vi, Vj, backendName, init, shutdown, softwareAdapter, source, type Node, type Tensor } from '../src/index.js';

const arg = (name: string, dflt: number): number => {
  const at = process.argv.indexOf(`--${name}`);
  return at > 0 ? Number(process.argv[at + 1]) : dflt;
};

await init();
const big = backendName() === 'webgpu' && !softwareAdapter(); // lavapipe is a CPU: CPU sizes
const M = arg('M', big ? 100_000 : 1000);
const N = arg('N', big ? 200_000 : 2000);
const D = 3;
const rand = (n: number): Float32Array => Float32Array.from({ length: n }, () => Math.random());

const x = source(rand(M * D), [M, D], 'x');
const y = source(rand(N * D), [N, D], 'y');
const x_i = Vi(x); // (M, 1, D) LazyTensor
const y_j = Vj(y); // (1, N, D) LazyTensor
const V_ij = x_i.sub(y_j); // (M, N, D) symbolic tensor of differences
const S_ij = V_ij.square().sum(-1); // (M, N) symbolic matrix of squared distances

console.log(`kernelflow LazyTensor\nformula: ${S_ij.toString()}\nshape: (${M}, ${N})`);
console.log(`kernelflow LazyTensor\nformula: ${V_ij.toString()}\nshape: (${M}, ${N}, ${D})`);

const show = async (label: string, node: Node | readonly Node[]): Promise<Tensor[]> => {
  const t0 = performance.now();
  const ts = await Promise.all((Array.isArray(node) ? node : [node]).map((n: Node) => n.read()));
  const shapes = ts.map((t) => `[${t.shape.join(', ')}]`).join(' ');
  console.log(`${label.padEnd(62)} ${shapes}  (${(performance.now() - t0).toFixed(0)} ms)`);
  return ts;
};

await show("Sum reduction of S_ij wrt. the 'N' dimension:", S_ij.sum(1));
await show("Sum reduction of V_ij wrt. the 'M' dimension:", V_ij.sum(0));
await show("LogSumExp reduction of S_ij wrt. the 'M' dimension:", S_ij.logsumexp(0));
await show("LogSumExp of S_ij, with 'weight' V_ij, wrt. the 'N' dimension:", S_ij.logsumexp(1, { weight: V_ij }));
await show("Min    reduction of S_ij wrt. the 'M' dimension:", S_ij.min(0));
await show("ArgMin reduction of S_ij wrt. the 'N' dimension:", S_ij.argmin(1));
await show("Max    reduction of V_ij wrt. the 'M' dimension:", V_ij.max(0));
await show("ArgMax reduction of V_ij wrt. the 'N' dimension:", V_ij.argmax(1));
await show("Min-ArgMin reduction on S_ij wrt. the 'M' dimension:", S_ij.minArgmin(0));
await show("Max-ArgMax reduction on V_ij wrt. the 'N' dimension:", V_ij.maxArgmax(1));
await show("KMin    reduction of S_ij wrt. the 'M' dimension (K=5):", S_ij.kmin(5, 0));
await show("ArgKMin reduction of S_ij wrt. the 'N' dimension (K=5):", S_ij.argKmin(5, 1));
await show("KMin    reduction of V_ij wrt. the 'M' dimension (K=7):", V_ij.kmin(7, 0));
await show("ArgKMin reduction of V_ij wrt. the 'N' dimension (K=7):", V_ij.argKmin(7, 1));
await show("SumSoftMaxWeight of S_ij, with weights V_ij, wrt. 'N':", S_ij.sumSoftmaxWeight(V_ij, 1));

// A Gaussian kernel product, the building block of the solve section (CG solve: coming with issue 5).
const b = source(rand(N * 4), [N, 4], 'b');
const [a] = await show('Gaussian kernel product K_ij @ b_j:', S_ij.mul(Pm(-1)).exp().matmul(b));
console.log(`a[0] = [${[...a!.data.subarray(0, 4)].map((v) => v.toFixed(4)).join(', ')}]  (backend: ${backendName()})`);
await shutdown();
