import { Cat, type VarNode } from '../graph/formula.js';
import type { KernelPlan } from '../kernel/plan.js';
import { kernelTemplate, type LoopDialect } from '../kernel/template.js';
import { ix, type Ix } from '../ops/loop.js';
import type { Dialect, MathFn } from '../ops/op.js';
import { compileStmts } from './compile.js';
import { Code, moduleBytes, SIMD_PROBE } from './encode.js';
import { SCALAR_MATH } from './math.js';
import { parseKernel, type Sym } from './parse.js';

const MATH_NAMES: readonly MathFn[] = ['exp', 'log', 'sin', 'cos', 'asin', 'acos', 'atan', 'atan2', 'sqrt', 'rsqrt', 'abs', 'sign', 'floor', 'ceil', 'trunc', 'min', 'max', 'pow'];
const MATH = Object.fromEntries(MATH_NAMES.map((fn) => [fn, (a: readonly string[]) => `${fn}(${a.join(', ')})`])) as Readonly<Record<MathFn, (a: readonly string[]) => string>>;

/** A float literal the kernel parser reads back exactly (negative ones in parentheses, as JS prints them). */
function num(v: number): string {
  if (Number.isNaN(v)) return 'NaN';
  if (Object.is(v, -0)) return '(-0)';
  const s = Math.abs(v) === Infinity ? 'Infinity' : String(Math.abs(v));
  return v < 0 ? `(-${s})` : s;
}

/**
 * The WASM dialect: the statement language of parse.ts, computed in float32 lanes. `barrier` is
 * the identity (WASM never reassociates floats), so the Sum reduction compensates (Kahan): float32
 * sums of 2e5 terms stay within 1e-5 of float64.
 */
export const wasmDialect: Dialect = {
  name: 'wasm',
  num,
  call: (fn, ...args) => MATH[fn](args),
  select: (c, a, b) => `select(${c}, ${a}, ${b})`,
  decl: (n, e) => `let ${n} = ${e};`,
  barrier: (e) => `(${e})`,
  // Unrolled components are v128 locals (registers); beyond this, arrays in linear memory.
  unrollMax: 32,
  int: (n) => `${n}u`,
  loop: (k, n) => `for (${k}, ${n}u) {`,
  declIndex: (n, e) => `idx ${n} = ${e};`,
  toFloat: (i) => `f32(${i})`,
  declArray: (n, size) => `array ${n} ${size};`,
};

/** Row vectors (of 4 rows each) per block: they share the j loads. Gaussian sum, D = 3, 4000 x 30000, one thread, load 10: 1, 2, 3 vectors 0.58, 0.59-0.64, 0.59-0.60 G pairs per CPU-s. */
function vectorsPerBlock(plan: KernelPlan, pairTemps: number): number {
  return plan.reduction.usesK || pairTemps > 32 ? 1 : 2;
}

/** The program of a plan in the kernel language: all variables and outputs are arrays; `g` counts groups of 4 rows. */
export function wasmProgram(plan: KernelPlan, rows?: number): string {
  const d = wasmDialect;
  const i = (k: Ix): string => ix(d, k);
  const loop: LoopDialect = {
    d,
    load: (v: VarNode, k: Ix, r: number) =>
      v.cat === Cat.i ? `XI${v.index}[(g + ${r}u) * ${v.dim}u + ${i(k)}]` : v.cat === Cat.j ? `XJ${v.index}[j * ${v.dim}u + ${i(k)}]` : `XP${v.index}[${i(k)}]`,
    rowStart: () => [],
    openJ: 'for (j, N) {',
    jStart: () => [],
    j: 'f32(j)',
    rowEnd: (r, c) => plan.reduction.finalize(c, (o, k, e) => `O${o}[(g + ${r}u) * ${plan.outputs[o]!.width}u + ${i(k)}] = ${e};`),
  };
  const t = kernelTemplate(plan, loop);
  const R = rows ?? vectorsPerBlock(plan, t.lin.temps.filter((x) => x.level === 3).length);
  const [blocked, single] = [t.block(R, 'b'), t.block(1, 'q')];
  return [
    ...new Set([...t.once.arrays, ...blocked.arrays, ...single.arrays]),
    ...t.once.body,
    'idx g = 0u;',
    `while (g + ${R}u <= G) {`,
    ...blocked.body,
    `g = g + ${R}u;`,
    '}',
    'while (g < G) {',
    ...single.body,
    'g = g + 1u;',
    '}',
  ].join('\n');
}

/** A compiled WASM kernel: the module's bytes, the variables it reads ([index, category, dim]) and its output widths. */
export interface WasmKernel {
  readonly bytes: Uint8Array;
  readonly vars: readonly (readonly [number, Cat, number])[];
  readonly widths: readonly number[];
  /** First byte after the scratch arrays: the inputs and outputs are laid out from there. */
  readonly dataStart: number;
}

/** Compiles a plan to a WASM module (throws on code it cannot translate). */
export function compileWasmKernel(plan: KernelPlan, rows?: number): WasmKernel {
  const vars = plan.vars.flatMap((v) => (v === undefined ? [] : [v]));
  let param = 0;
  const scalar = (name: string): Sym => ({ name, ty: 'i', varying: false, slot: param++ });
  const globals: Sym[] = [scalar('N'), scalar('G')];
  for (const v of vars) {
    const name = v.cat === Cat.i ? `XI${v.index}` : v.cat === Cat.j ? `XJ${v.index}` : `XP${v.index}`;
    globals.push({ name, ty: 'array', kind: v.cat === Cat.i ? 'vec' : 'scalar', baseParam: param++, varying: false, slot: -1 });
  }
  plan.outputs.forEach((_, o) => globals.push({ name: `O${o}`, ty: 'array', kind: 'vec', baseParam: param++, varying: false, slot: -1 }));
  const code = new Code(param);
  const end = compileStmts(code, parseKernel(wasmProgram(plan, rows), globals), 64);
  return {
    bytes: moduleBytes(param, code, SCALAR_MATH),
    vars: vars.map((v) => [v.index, v.cat, v.dim] as const),
    widths: plan.outputs.map((o) => o.width),
    dataStart: (end + 15) & ~15,
  };
}

/** Groups of 4 rows per call of the module (a multiple of every block size). */
const SLICE = 16;

/** Base64 of bytes (btoa exists in Node >= 16 and browsers). */
function base64(bytes: Uint8Array): string {
  let s = '';
  for (let k = 0; k < bytes.length; k += 0x8000) s += String.fromCharCode(...bytes.subarray(k, k + 0x8000));
  return btoa(s);
}

/**
 * The JavaScript source (a function body returning `kernel(N, i0, i1, ins, outs)`, like the JS
 * kernels, so that the worker pool runs both alike) of a WASM kernel. Each instance owns its
 * memory and copies a row chunk in per call: i-variables transposed into groups of 4 rows (the
 * last row repeated to fill a group), j-variables and parameters as float32; outputs copied back.
 */
export function wasmKernelSource(k: WasmKernel): string {
  const imports = SCALAR_MATH.map((f) => `${f.name}: Math.${f.name}`).join(', ');
  return `const bytes = Uint8Array.from(atob(${JSON.stringify(base64(k.bytes))}), (ch) => ch.charCodeAt(0));
const mem = new WebAssembly.Memory({ initial: 1 });
const run = new WebAssembly.Instance(new WebAssembly.Module(bytes), { env: { mem }, m: { ${imports} } }).exports.run;
const VARS = ${JSON.stringify(k.vars)};
const WIDTHS = ${JSON.stringify(k.widths)};
return function kernel(N, i0, i1, ins, outs) {
  const rows = i1 - i0;
  if (rows <= 0) return;
  const G = (rows + 3) >> 2;
  let at = ${k.dataStart};
  const bases = VARS.map(([, cat, dim]) => {
    const b = at;
    at += ((cat === 0 ? G * 4 : cat === 1 ? N : 1) * dim * 4 + 15) & ~15;
    return b;
  });
  const obases = WIDTHS.map((w) => {
    const b = at;
    at += G * w * 16;
    return b;
  });
  const pages = Math.ceil(at / 65536) - mem.buffer.byteLength / 65536;
  if (pages > 0) mem.grow(pages);
  const f = new Float32Array(mem.buffer);
  VARS.forEach(([v, cat, dim], n) => {
    const src = ins[v];
    const b = bases[n] >> 2;
    if (cat === 0) {
      for (let r = 0; r < G * 4; r++) {
        const s = (i0 + Math.min(r, rows - 1)) * dim;
        const o = b + (r >> 2) * dim * 4 + (r & 3);
        for (let c = 0; c < dim; c++) f[o + c * 4] = src[s + c];
      }
    } else f.set(src.subarray(0, (cat === 1 ? N : 1) * dim), b);
  });
  // Calls of at most ${SLICE} groups: V8 runs a call to its end in the code it started with, and
  // moves a hot function to optimized code between calls only.
  for (let g0 = 0; g0 < G; g0 += ${SLICE}) {
    const gi = VARS.map(([, cat, dim], n) => bases[n] + (cat === 0 ? g0 * dim * 16 : 0));
    run(N, Math.min(${SLICE}, G - g0), ...gi, ...obases.map((b, o) => b + g0 * WIDTHS[o] * 16));
  }
  WIDTHS.forEach((w, o) => {
    const out = outs[o];
    const b = obases[o] >> 2;
    for (let r = 0; r < rows; r++) {
      const d = (i0 + r) * w;
      const s = b + (r >> 2) * w * 4 + (r & 3);
      for (let c = 0; c < w; c++) out[d + c] = f[s + c * 4];
    }
  });
};`;
}

let simd: boolean | undefined;
/** Whether this engine runs WebAssembly with 128-bit SIMD (validates a one-instruction module). */
export function wasmSimdAvailable(): boolean {
  // The TypeScript lib of this project has no WebAssembly types: only `validate` is needed here.
  const wa = (globalThis as { WebAssembly?: { validate?: (b: Uint8Array) => boolean } }).WebAssembly;
  simd ??= typeof wa?.validate === 'function' && wa.validate(SIMD_PROBE);
  return simd;
}
