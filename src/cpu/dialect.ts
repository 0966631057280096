import type { Dialect, MathFn } from '../ops/op.js';

/**
 * Helpers every generated JavaScript kernel starts with. `fexp` is exp by range reduction
 * (x = n ln2 + u, |u| <= ln2/2, n rounded by the 1.5*2^52 trick) and a degree-7 polynomial: relative error below 1e-8, far inside
 * float32, and several times faster than Math.exp, which dominates kernel sums.
 */
export const JS_PRELUDE = `
const P2 = new Float64Array(2100);
for (let n = 0; n < 2100; n++) P2[n] = Math.pow(2, n - 1075);
function fexp(x) {
  const t = x * 1.4426950408889634;
  if (t > -1000 && t < 1000) {
    const n = (t + 6755399441055744.0) - 6755399441055744.0;
    const u = x - n * 0.6931471805599453;
    const p = 1 + u * (1 + u * (0.5 + u * (0.16666666666666666 + u * (0.041666666666666664 + u * (0.008333333333333333 + u * (0.001388888888888889 + u * 0.0001984126984126984))))));
    return p * P2[(n + 1075) | 0];
  }
  return Math.exp(x);
}
`;

const MATH: Readonly<Record<MathFn, (a: string[]) => string>> = {
  exp: (a) => `fexp(${a[0]})`,
  log: (a) => `Math.log(${a[0]})`,
  sin: (a) => `Math.sin(${a[0]})`,
  cos: (a) => `Math.cos(${a[0]})`,
  asin: (a) => `Math.asin(${a[0]})`,
  acos: (a) => `Math.acos(${a[0]})`,
  atan: (a) => `Math.atan(${a[0]})`,
  atan2: (a) => `Math.atan2(${a[0]}, ${a[1]})`,
  sqrt: (a) => `Math.sqrt(${a[0]})`,
  rsqrt: (a) => `(1 / Math.sqrt(${a[0]}))`,
  abs: (a) => `Math.abs(${a[0]})`,
  sign: (a) => `Math.sign(${a[0]})`,
  floor: (a) => `Math.floor(${a[0]})`,
  ceil: (a) => `Math.ceil(${a[0]})`,
  trunc: (a) => `Math.trunc(${a[0]})`,
  min: (a) => `Math.min(${a.join(', ')})`,
  max: (a) => `Math.max(${a.join(', ')})`,
  pow: (a) => `Math.pow(${a[0]}, ${a[1]})`,
};

/** JavaScript dialect: float64 arithmetic, results stored as float32 by the kernel (Float32Array outputs). */
export const jsDialect: Dialect = {
  name: 'js',
  num: (v) => (Object.is(v, -0) ? '(-0)' : v < 0 ? `(${v})` : String(v)),
  call: (fn, ...args) => MATH[fn](args),
  select: (c, a, b) => `(${c} ? ${a} : ${b})`,
  decl: (n, e) => `let ${n} = ${e};`,
  // Measured (Gaussian sum, 3000 x 3000, 2 cores, V8): unrolled beats loops 1.5-2x at D = 8 ... 128 (0.013 vs 0.008 G pairs/s at 64, first result 14 ms), they cross between 256 and 512.
  unrollMax: 64,
  int: (n) => String(n),
  loop: (k, n) => `for (let ${k} = 0; ${k} < ${n}; ${k}++) {`,
  declIndex: (n, e) => `let ${n} = ${e};`,
  toFloat: (i) => i,
  declArray: (n, size) => `const ${n} = new Float64Array(${size});`,
};

/**
 * The dialect of float64 kernels: the same code with `Math.exp` (within an ulp) for `fexp`, whose
 * 1e-8 relative error is far outside float64; inputs and outputs are Float64Arrays, so nothing rounds to float32.
 */
export const jsDialect64: Dialect = {
  ...jsDialect,
  call: (fn, ...args) => (fn === 'exp' ? `Math.exp(${args[0]})` : MATH[fn](args)),
};
