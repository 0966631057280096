import type { Dialect, MathFn } from '../ops/op.js';

/**
 * Module-scope declarations every generated WGSL kernel starts with. WGSL evaluates expressions of
 * literals at shader creation and rejects an infinite or NaN result (`bitcast<f32>(0x7f800000u)` is
 * a compile error), so non-finite constants are built from `kf_zero`, a private variable: reading
 * it is a runtime value, which the driver's optimiser still folds away. `kf_rt` is a zero known
 * only at run time (see `wgslBarrierInit`): OR-ing a float's bits with it hides the value from
 * algebraic simplification (Mesa removes a plain Kahan compensation; measured on lavapipe).
 *
 * Polyfills, measured on lavapipe against float64 (max relative error): the builtin asin/acos
 * 4e-4, atan/atan2 2e-5, log 6e-5 near 1; these are 2e-7 or better. kf_atan is Cephes' atanf
 * (reduction by tan(pi/8) and tan(3pi/8)); kf_atan2 follows Math.atan2 on zeros, signs, infinities
 * and NaN (tested by bits: the compiler assumes `y != y` is false);
 * kf_log reduces to a mantissa in [sqrt(1/2), sqrt(2)) and sums the atanh series; zero,
 * negatives, infinity and NaN go to the builtin, which gets them right.
 */
export const WGSL_PRELUDE = `var<private> kf_zero: u32 = 0u;
var<private> kf_rt: u32;
fn kf_atan(v: f32) -> f32 {
  var x = abs(v);
  var y = 0.0;
  if (x > 2.414213562373095) { y = 1.5707963267948966; x = -1.0 / x; }
  else if (x > 0.41421356237309503) { y = 0.7853981633974483; x = (x - 1.0) / (x + 1.0); }
  let z = x * x;
  y = y + ((((0.0805374449538 * z - 0.138776856032) * z + 0.199777106478) * z - 0.333329491539) * z * x + x);
  return select(y, -y, v < 0.0);
}
fn kf_signbit(v: f32) -> bool { return (bitcast<u32>(v) & 0x80000000u) != 0u; }
fn kf_isnan(v: f32) -> bool { return (bitcast<u32>(v) & 0x7fffffffu) > 0x7f800000u; }
fn kf_atan2(y: f32, x: f32) -> f32 {
  let pi = select(3.141592653589793, -3.141592653589793, kf_signbit(y));
  if (x == 0.0) {
    if (y == 0.0 || kf_isnan(y)) { return select(y, pi, kf_signbit(x) && y == 0.0); }
    return select(1.5707963267948966, -1.5707963267948966, y < 0.0);
  }
  if (abs(x) > 3.4028234e38 && abs(y) > 3.4028234e38) {
    let q = select(0.7853981633974483, 2.356194490192345, x < 0.0);
    return select(q, -q, y < 0.0);
  }
  let a = kf_atan(y / x);
  if (x > 0.0) { return a; }
  return a + pi;
}
fn kf_asin(x: f32) -> f32 { return kf_atan2(x, sqrt((1.0 - x) * (1.0 + x))); }
fn kf_acos(x: f32) -> f32 { return kf_atan2(sqrt((1.0 - x) * (1.0 + x)), x); }
fn kf_log(x: f32) -> f32 {
  if (!(x > 0.0) || x > 3.4028234e38) { return log(x); }
  let f = frexp(x);
  var m = f.fract;
  var e = f32(f.exp);
  if (m < 0.7071067811865476) { m = m * 2.0; e = e - 1.0; }
  let s = (m - 1.0) / (m + 1.0);
  let z = s * s;
  let p = s * (2.0 + z * (0.6666666666666666 + z * (0.4 + z * (0.2857142857142857 + z * 0.2222222222222222))));
  return e * 0.6931471805599453 + p;
}`;

/**
 * The statement a kernel's entry point must run first when it uses `wgslDialect.barrier`: `kf_rt`
 * becomes a zero the compiler cannot know (read from a uniform `src`, which the host sets to 0).
 */
export const wgslBarrierInit = (src: string): string => `kf_rt = ${src};`;

const bits = (hex: string): string => `bitcast<f32>(${hex}u | kf_zero)`;

/** log2(e): `exp(x)` is printed as `exp2(x * LOG2E)` (DESIGN.md: faster on lavapipe, same accuracy in f32). */
const LOG2E = '1.4426950408889634';

/** The shortest decimal that rounds to the same float32 as `v` (|v| finite and within f32 range). */
const F32_MAX = 3.4028234663852886e38;

function shortestF32(v: number): string {
  const target = Math.fround(v);
  for (let p = 1; p <= 9; p++) {
    const s = v.toPrecision(p);
    // Tint rejects a literal above the largest f32 even when it would round down to it.
    if (Math.fround(Number(s)) === target && Math.abs(Number(s)) <= F32_MAX) return s;
  }
  return String(target);
}

/** A WGSL float literal: always has a `.` or an exponent, negative values in parentheses. */
function wgslNum(v: number): string {
  if (Number.isNaN(v)) return bits('0x7fc00000');
  if (!Number.isFinite(Math.fround(v))) return v > 0 ? bits('0x7f800000') : bits('0xff800000');
  if (Object.is(v, -0)) return '(-0.0)';
  let s = shortestF32(Math.abs(v));
  // toPrecision may give '1e+21' or '1.5e-7' (valid WGSL), or '3' (needs a point to be a float).
  if (!/[.e]/.test(s)) s += '.0';
  return v < 0 ? `(-${s})` : s;
}

/** `min`/`max` take exactly two arguments in WGSL: fold longer lists pairwise (balanced). */
function fold(fn: 'min' | 'max', args: readonly string[]): string {
  if (args.length === 1) return args[0]!;
  if (args.length === 2) return `${fn}(${args[0]}, ${args[1]})`;
  const h = args.length >> 1;
  return `${fn}(${fold(fn, args.slice(0, h))}, ${fold(fn, args.slice(h))})`;
}

const MATH: Readonly<Record<MathFn, (a: readonly string[]) => string>> = {
  // Arguments may be unparenthesised sums (`m - f` from the reduction hooks).
  exp: (a) => `exp2((${a[0]}) * ${LOG2E})`,
  log: (a) => `kf_log(${a[0]})`,
  sin: (a) => `sin(${a[0]})`,
  cos: (a) => `cos(${a[0]})`,
  asin: (a) => `kf_asin(${a[0]})`,
  acos: (a) => `kf_acos(${a[0]})`,
  atan: (a) => `kf_atan(${a[0]})`,
  atan2: (a) => `kf_atan2(${a[0]}, ${a[1]})`,
  sqrt: (a) => `sqrt(${a[0]})`,
  rsqrt: (a) => `inverseSqrt(${a[0]})`,
  abs: (a) => `abs(${a[0]})`,
  sign: (a) => `sign(${a[0]})`,
  floor: (a) => `floor(${a[0]})`,
  ceil: (a) => `ceil(${a[0]})`,
  trunc: (a) => `trunc(${a[0]})`,
  min: (a) => fold('min', a),
  max: (a) => fold('max', a),
  pow: (a) => `pow(${a[0]}, ${a[1]})`,
};

/**
 * WGSL dialect: f32 scalars. Literals are printed so that they parse to the nearest f32 (shortest
 * form), non-finite ones through `bitcast` of a runtime value (needs WGSL_PRELUDE in the module).
 * @example
 * ```ts
 * wgslDialect.num(1); // '1.0'
 * wgslDialect.select('c', 'a', 'b'); // 'select(b, a, c)'
 * ```
 */
export const wgslDialect: Dialect = {
  name: 'wgsl',
  num: wgslNum,
  call: (fn, ...args) => MATH[fn](args),
  select: (c, a, b) => `select(${b}, ${a}, ${c})`,
  decl: (n, e) => `var ${n}: f32 = ${e};`,
  barrier: (e) => `bitcast<f32>(bitcast<u32>(${e}) | kf_rt)`,
  // Lavapipe, Gaussian sum at 1e4 x 1e4 (first result | G pairs/s): D = 16 unrolled, 4 rows 1.4 s | 0.17, loops 0.17 s | 0.02-0.03; D = 32 unrolled, 1 row 2.0 s | 0.029, loops 0.1 s | 0.023.
  unrollMax: 16,
  int: (n) => `${n}u`,
  // The bound is hidden behind the uniform zero, so the driver does not unroll the loop (lavapipe, D = 16: first result 0.23 s instead of 1.1 s, same speed).
  loop: (k, n) => `for (var ${k}: u32 = 0u; ${k} < ${n}u + P.zero; ${k} = ${k} + 1u) {`,
  declIndex: (n, e) => `var ${n}: u32 = ${e};`,
  toFloat: (i) => `f32(${i})`,
  declArray: (n, size) => `var ${n}: array<f32, ${size}>;`,
};
