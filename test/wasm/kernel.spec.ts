import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { CpuBackend } from '../../src/cpu/backend.js';
import { Cat, mkVar, type Formula } from '../../src/graph/formula.js';
import { makePlan } from '../../src/kernel/plan.js';
import { op } from '../../src/ops/build.js';
import { cpuKernels, init, shutdown } from '../../src/scheduler/backends.js';
import { moduleBytes, Code, SIMD_PROBE } from '../../src/wasm/encode.js';
import { compileWasmKernel, wasmProgram, wasmSimdAvailable } from '../../src/wasm/kernel.js';
import { parseKernel } from '../../src/wasm/parse.js';
import { rng, uniform } from '../helpers/random.js';

// The WASM path of the CPU backend: its encoder, parser and vector math, against float64 references.
const wasm = new CpuBackend(1, 'wasm');
const js = new CpuBackend(1, 'js');
const validate = (b: Uint8Array): boolean => (globalThis as unknown as { WebAssembly: { validate(b: Uint8Array): boolean } }).WebAssembly.validate(b);

test('Node has WebAssembly SIMD: the probe module validates, and a kernel module too', () => {
  assert.ok(wasmSimdAvailable());
  assert.ok(validate(SIMD_PROBE));
  const plan = makePlan(op('SqDist', [mkVar(0, 3, Cat.i), mkVar(1, 3, Cat.j)]), { reduction: 'ArgKMin', axis: 1, K: 5 });
  assert.ok(validate(compileWasmKernel(plan).bytes));
  // An empty function body: the encoder's smallest module.
  assert.ok(validate(moduleBytes(2, new Code(2), [])));
});

/** f(x_i) * y_j with y = [1]: the value of a unary op at each x, through the given backend. */
async function values(backend: CpuBackend, f: (x: Formula) => Formula, xs: readonly number[]): Promise<Float32Array> {
  const x = mkVar(0, 1, Cat.i);
  const plan = makePlan(op('Mult', [f(x), mkVar(1, 1, Cat.j)]), { reduction: 'Sum', axis: 1 });
  const [out] = await backend.run(plan, [Float32Array.from(xs), Float32Array.of(1)], xs.length, 1);
  return out as Float32Array;
}

/** Within `ulps` float32 units of the float64 value (exact for zeros, infinities and NaN). */
function closeF32(got: number, want: number, ulps: number, what: string): void {
  const w = Math.fround(want);
  if (!Number.isFinite(w) || w === 0) {
    assert.ok(Object.is(got, w) || (got === 0 && w === 0) || (Number.isNaN(got) && Number.isNaN(w)), `${what}: got ${got}, want ${w}`);
    return;
  }
  const ulp = Math.max(2 ** -149, 2 ** (Math.floor(Math.log2(Math.abs(w))) - 23));
  assert.ok(Math.abs(got - want) <= ulps * ulp, `${what}: got ${got}, want ${want} (${(Math.abs(got - want) / ulp).toFixed(2)} ulp)`);
}

test('vector exp is within 2 ulp of float64 over the float32 range; underflow gives 0, overflow Infinity, NaN stays NaN', async () => {
  const r = rng(5);
  const xs = [...uniform(r, 997, -87, 88.7), -Infinity, -1e4, -104, -88, 0, -0, 1e-9, -1e-9, 1, 88.72, 88.73, 89, 1e4, Infinity, NaN];
  const got = await values(wasm, (x) => op('Exp', [x]), xs);
  xs.forEach((x, k) => {
    const want = Math.exp(Math.fround(x));
    // Results below 2^-126 flush to 0 (documented in src/wasm/math.ts).
    if (want < 2 ** -126) assert.ok(got[k] === 0 || Math.abs(got[k]! - want) < 2 ** -126, `exp(${x}): got ${got[k]}`);
    else closeF32(got[k]!, want, 2, `exp(${x})`);
  });
});

test('vector log is within 4 ulp (2.5e-7 relative) of float64, subnormals included; 0 gives -Infinity, negatives NaN, as Math.log', async () => {
  const r = rng(6);
  const xs = [...uniform(r, 500, 1e-3, 10), ...uniform(r, 200, 0.7, 1.4), 1e-45, 3e-42, 1e-39, 1.1754943508222875e-38, 0.5, 1, 2, 1e30, 3.4e38, 0, -0, -1, -Infinity, Infinity, NaN];
  const got = await values(wasm, (x) => op('Log', [x]), xs);
  xs.forEach((x, k) => closeF32(got[k]!, Math.log(Math.fround(x)), 4, `log(${x})`));
});

test('lane-wise scalar math (Sin, Atan2 through Math) and lane-dependent branches (IfElse, Clamp, Sign) equal float64', async () => {
  const r = rng(8);
  const xs = [...uniform(r, 61, -3, 3), 0, -0, 1, -1];
  const cases: [string, (x: Formula) => Formula, (x: number) => number][] = [
    ['Sin', (x) => op('Sin', [x]), Math.sin],
    ['Atan2(x, 0.5 - x)', (x) => op('Atan2', [x, op('Subtract', [op('IntInv', [], [2]), x])]), (x) => Math.atan2(x, 0.5 - x)],
    ['Sign', (x) => op('Sign', [x]), Math.sign],
    ['Clamp', (x) => op('ClampInt', [x], [-1, 2]), (x) => Math.min(2, Math.max(-1, x))],
    ['IfElse', (x) => op('IfElse', [x, op('Square', [x]), op('Minus', [x])]), (x) => (x >= 0 ? x * x : -x)],
  ];
  for (const [name, f, ref] of cases) {
    const got = await values(wasm, f, xs);
    xs.forEach((x, k) => closeF32(got[k]!, ref(Math.fround(x)), 2, `${name}(${x})`));
  }
});

test('K-lists longer than the unrolled limit insert by a loop whose position differs between lanes: ArgKMin K = 20 equals the JS kernels', async () => {
  const r = rng(9);
  const [M, N, K] = [37, 300, 20];
  const plan = makePlan(op('SqDist', [mkVar(0, 2, Cat.i), mkVar(1, 2, Cat.j)]), { reduction: 'ArgKMin', axis: 1, K });
  // Quarter-grid data: squared distances are exact in float32 and float64, so ties break alike.
  const grid = (n: number) => Float32Array.from(uniform(r, n, -4, 4), (v) => Math.round(v * 4) / 4);
  const ins = [grid(M * 2), grid(N * 2)];
  assert.match(wasmProgram(plan), /while \(/);
  const [a] = await wasm.run(plan, ins, M, N);
  const [b] = await js.run(plan, ins, M, N);
  assert.equal([...a!], [...b!]);
});

test('module size grows at most linearly with D: unrolled up to 32 components, loops above (1000 is no bigger than 64)', () => {
  const size = (D: number): number => {
    const f = op('Mult', [op('Exp', [op('Minus', [op('SqDist', [mkVar(0, D, Cat.i), mkVar(1, D, Cat.j)])])]), mkVar(2, 1, Cat.j)]);
    return compileWasmKernel(makePlan(f, { reduction: 'Sum', axis: 1 })).bytes.length;
  };
  const [s8, s16, s32, s64, s1000] = [8, 16, 32, 64, 1000].map(size) as [number, number, number, number, number];
  assert.ok(s16 < 2.2 * s8 && s32 < 2.2 * s16, `unrolled: ${s8}, ${s16}, ${s32} bytes`);
  assert.ok(s64 < s32 && s1000 <= s64 * 1.05, `loops: ${s64}, ${s1000} bytes (unrolled 32: ${s32})`);
});

test('the parser reads the dialect it prints and refuses what it cannot compile, naming it', () => {
  const plan = makePlan(op('Exp', [op('SqDist', [mkVar(0, 3, Cat.i), mkVar(1, 3, Cat.j)])]), { reduction: 'LogSumExp', axis: 1 });
  assert.ok(parseKernel(wasmProgram(plan), compileGlobals()).body.length > 0);
  assert.throws(() => parseKernel('let a = b;', []), /unknown name 'b'/);
  assert.throws(() => parseKernel('let a = 1u;', []), /declared let with a i value/);
  assert.throws(() => parseKernel('let a = 1 % 2;', []), /cannot read ' ?% 2;'/);
});

/** The names a kernel program uses for plan above (what compileWasmKernel declares). */
function compileGlobals() {
  const s = (name: string, extra = {}) => ({ name, ty: 'i' as const, varying: false, slot: 0, ...extra });
  return [s('N'), s('G'), { ...s('XI0'), ty: 'array' as const, kind: 'vec' as const, baseParam: 2 }, { ...s('XJ1'), ty: 'array' as const, kind: 'scalar' as const, baseParam: 3 }, { ...s('O0'), ty: 'array' as const, kind: 'vec' as const, baseParam: 4 }];
}

test('init({ cpuKernels }) chooses the kernels; cpuKernels() says which, and both give the same Gaussian sum', async () => {
  const r = rng(10);
  const [M, N] = [203, 517];
  const x = mkVar(0, 3, Cat.i);
  const y = mkVar(1, 3, Cat.j);
  const plan = makePlan(op('Exp', [op('Minus', [op('SqDist', [x, y])])]), { reduction: 'Sum', axis: 1 });
  const ins = [Float32Array.from(uniform(r, M * 3)), Float32Array.from(uniform(r, N * 3))];
  const ref = Array.from({ length: M }, (_, i) => {
    let s = 0;
    for (let j = 0; j < N; j++) s += Math.exp(-[0, 1, 2].reduce((a, k) => a + (ins[0]![i * 3 + k]! - ins[1]![j * 3 + k]!) ** 2, 0));
    return s;
  });
  for (const kernels of ['js', 'wasm'] as const) {
    await init({ backend: 'cpu', cpuKernels: kernels });
    assert.is(cpuKernels().kernels, kernels);
    const backend = new CpuBackend(1, kernels);
    const [out] = await backend.run(plan, ins, M, N);
    ref.forEach((want, i) => assert.ok(Math.abs(out![i]! - want) <= 1e-5 * want, `${kernels} row ${i}: ${out![i]} vs ${want}`));
    assert.is(backend.info().wasmCompiled, kernels === 'wasm' ? 1 : 0);
  }
  await shutdown();
});

test.after(async () => {
  await wasm.dispose();
  await js.dispose();
});

test.run();
