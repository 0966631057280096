import { F64, OP, SIMD, V128, type Code, type FuncImport } from './encode.js';

/**
 * Vector math on f32x4 (all four lanes at once), the value to transform in local `x`; each leaves
 * its result on the stack.
 *
 * exp: x = n ln2 + r with |r| <= ln2/2 (ln2 split in two, as Cephes' expf, so that n ln2 is
 * exact), exp(r) = 1 + r + r^2 Q(r) with Q of degree 4 fitted to the relative error (3e-9 in
 * float64, 1 ulp in float32 arithmetic). n is rounded by adding 1.5 * 2^23, whose low bits then
 * hold n, so 2^n is added to the result's exponent bits directly (V8 lowers float-int conversions
 * to long sequences). Lanes outside [-87.34, 88.72] (where the exponent would leave the normal
 * range) compute garbage that two selects replace: 0 below (float32 subnormals flush), Infinity
 * above; NaN stays NaN (a quiet NaN's low bits are 0, so the exponent step keeps it NaN).
 */
export function vexp(c: Code, x: number): void {
  const [t, n, r] = [c.local(V128), c.local(V128), c.local(V128)];
  const [LO, HI] = [-87.33654, 88.72283];
  c.get(x).splatF(1.4426950408889634).simd(SIMD.f32x4Mul).splatF(12582912).simd(SIMD.f32x4Add).tee(t).splatF(12582912).simd(SIMD.f32x4Sub).set(n);
  c.get(x).get(n).splatF(0.693359375).simd(SIMD.f32x4Mul).simd(SIMD.f32x4Sub);
  c.get(n).splatF(-2.12194440e-4).simd(SIMD.f32x4Mul).simd(SIMD.f32x4Sub).set(r);
  c.splatF(0.0013814613194488813);
  for (const k of [0.008368710069299541, 0.041668387377764675, 0.16666520687625822, 0.4999999345158851]) {
    c.get(r).simd(SIMD.f32x4Mul).splatF(k).simd(SIMD.f32x4Add);
  }
  c.get(r).simd(SIMD.f32x4Mul).get(r).simd(SIMD.f32x4Mul).get(r).simd(SIMD.f32x4Add).splatF(1).simd(SIMD.f32x4Add);
  c.get(t).i32(23).simd(SIMD.i32x4Shl).simd(SIMD.i32x4Add);
  c.get(x).splatF(LO).simd(SIMD.f32x4Lt).simd(SIMD.andnot).set(r);
  c.splatF(Infinity).get(r).get(x).splatF(HI).simd(SIMD.f32x4Gt).simd(SIMD.bitselect);
}

/**
 * log: the mantissa m in [sqrt(1/2), sqrt(2)) and exponent e from the bits (subnormals scaled by
 * 2^24 first), log(m) by the atanh series in s = (m - 1) / (m + 1) (as the WGSL kf_log, 2e-7);
 * 0 gives -Infinity, negatives NaN, Infinity and NaN themselves (as Math.log).
 */
export function vlog(c: Code, x: number): void {
  const [xs, small, e, m, lt, s, z, res] = Array.from({ length: 8 }, () => c.local(V128)) as [number, number, number, number, number, number, number, number];
  c.get(x).splatF(16777216).simd(SIMD.f32x4Mul).get(x).get(x).splatF(1.1754943508222875e-38).simd(SIMD.f32x4Lt).tee(small).simd(SIMD.bitselect).tee(xs);
  c.i32(23).simd(SIMD.i32x4ShrU).splatI(126).simd(SIMD.i32x4Sub).get(small).splatI(24).simd(SIMD.and).simd(SIMD.i32x4Sub).set(e);
  c.get(xs).splatI(0x7fffff).simd(SIMD.and).splatI(0x3f000000).simd(SIMD.or).set(m);
  c.get(m).get(m).simd(SIMD.f32x4Add).get(m).get(m).splatF(0.7071067811865476).simd(SIMD.f32x4Lt).tee(lt).simd(SIMD.bitselect).set(m);
  c.get(m).splatF(1).simd(SIMD.f32x4Sub).get(m).splatF(1).simd(SIMD.f32x4Add).simd(SIMD.f32x4Div).tee(s).get(s).simd(SIMD.f32x4Mul).set(z);
  c.splatF(0.2222222222222222);
  for (const k of [0.2857142857142857, 0.4, 0.6666666666666666, 2]) c.get(z).simd(SIMD.f32x4Mul).splatF(k).simd(SIMD.f32x4Add);
  c.get(s).simd(SIMD.f32x4Mul);
  c.get(e).get(lt).simd(SIMD.i32x4Add).simd(SIMD.f32x4ConvertI32x4S).splatF(0.6931471805599453).simd(SIMD.f32x4Mul).simd(SIMD.f32x4Add).set(res);
  c.splatF(-Infinity).get(res).get(x).splatF(0).simd(SIMD.f32x4Eq).simd(SIMD.bitselect).set(res);
  c.splatF(NaN).get(res).get(x).splatF(0).simd(SIMD.f32x4Lt).simd(SIMD.bitselect).set(res);
  c.get(x).get(res).get(x).splatF(Infinity).simd(SIMD.f32x4Lt).simd(SIMD.not).simd(SIMD.bitselect);
}

/** Functions computed lane by lane through the host's Math (float64, rounded to float32): correct, not fast. */
export const SCALAR_MATH: readonly FuncImport[] = [
  ...['sin', 'cos', 'asin', 'acos', 'atan'].map((name) => ({ name, params: [F64], results: [F64] }) as FuncImport),
  ...['atan2', 'pow'].map((name) => ({ name, params: [F64, F64], results: [F64] }) as FuncImport),
];

/** Calls imported function `fn` (index into SCALAR_MATH) on each lane of the argument locals. */
export function lanewise(c: Code, fn: number, args: readonly number[]): void {
  const res = c.local(V128);
  c.splatF(0).set(res);
  for (let l = 0; l < 4; l++) {
    c.get(res);
    for (const a of args) c.get(a).simd(SIMD.f32x4Extract, l).op(OP.f64PromoteF32);
    c.op(OP.call, fn).op(OP.f32DemoteF64).simd(SIMD.f32x4Replace, l).set(res);
  }
  c.get(res);
}
