import type { Dialect } from '../../src/ops/op.js';

/** A dialect that prints WGSL-like code, to check emitters use nothing JavaScript-only (`Math.`, `?:`, `===`, `let`, `++` ...). */
export const probe: Dialect = {
  name: 'wgsl',
  num: (v) => (Number.isInteger(v) ? `${v}.0` : String(v)),
  call: (fn, ...args) => `${fn}(${args.join(', ')})`,
  select: (c, a, b) => `select(${b}, ${a}, ${c})`,
  decl: (n, e) => `var ${n} = ${e};`,
  unrollMax: 8,
  int: (n) => `${n}u`,
  loop: (k, n) => `for (var ${k}: u32 = 0u; ${k} < ${n}u; ${k} = ${k} + 1u) {`,
  declIndex: (n, e) => `var ${n}: u32 = ${e};`,
  toFloat: (i) => `f32(${i})`,
  declArray: (n, size) => `var ${n}: array<f32, ${size}>;`,
};
