/**
 * A small encoder of the WebAssembly binary format: just what the kernel compiler emits (one
 * function, an imported memory, imported scalar math functions, 128-bit SIMD). No toolchain runs
 * at run time: compile.ts writes instructions through `Code`, `moduleBytes` wraps them.
 */

/** Value types. */
export const I32 = 0x7f;
export const F32 = 0x7d;
export const F64 = 0x7c;
export const V128 = 0x7b;
export type ValType = typeof I32 | typeof F32 | typeof F64 | typeof V128;

/** Core opcodes used by the compiler. */
export const OP = {
  block: 0x02, loop: 0x03, if: 0x04, else: 0x05, end: 0x0b, br: 0x0c, brIf: 0x0d, call: 0x10,
  localGet: 0x20, localSet: 0x21, localTee: 0x22,
  f32Load: 0x2a, f32Store: 0x38, i32Const: 0x41, f32Const: 0x43,
  i32Eqz: 0x45, i32Eq: 0x46, i32Ne: 0x47, i32LtS: 0x48, i32GtS: 0x4a, i32LeS: 0x4c, i32GeS: 0x4e,
  i32Add: 0x6a, i32Sub: 0x6b, i32Mul: 0x6c, i32And: 0x71, i32Or: 0x72, i32Xor: 0x73, i32Shl: 0x74,
  f32ConvertI32S: 0xb2, f32DemoteF64: 0xb6, f64PromoteF32: 0xbb,
} as const;

/** SIMD opcodes (after the 0xfd prefix). */
export const SIMD = {
  load: 0x00, load32Splat: 0x09, store: 0x0b, const: 0x0c, shuffle: 0x0d, i32x4Splat: 0x11, f32x4Splat: 0x13,
  i32x4Extract: 0x1b, i32x4Replace: 0x1c, f32x4Extract: 0x1f, f32x4Replace: 0x20,
  i32x4Eq: 0x37, i32x4Ne: 0x38, i32x4LtS: 0x39, i32x4GtS: 0x3b, i32x4LeS: 0x3d, i32x4GeS: 0x3f,
  f32x4Eq: 0x41, f32x4Ne: 0x42, f32x4Lt: 0x43, f32x4Gt: 0x44, f32x4Le: 0x45, f32x4Ge: 0x46,
  not: 0x4d, and: 0x4e, andnot: 0x4f, or: 0x50, xor: 0x51, bitselect: 0x52, anyTrue: 0x53,
  f32x4Ceil: 0x67, f32x4Floor: 0x68, f32x4Trunc: 0x69, f32x4Nearest: 0x6a,
  i32x4Neg: 0xa1, i32x4Shl: 0xab, i32x4ShrS: 0xac, i32x4ShrU: 0xad, i32x4Add: 0xae, i32x4Sub: 0xb1, i32x4Mul: 0xb5,
  i32x4MinS: 0xb6, i32x4MaxS: 0xb8,
  f32x4Abs: 0xe0, f32x4Neg: 0xe1, f32x4Sqrt: 0xe3, f32x4Add: 0xe4, f32x4Sub: 0xe5, f32x4Mul: 0xe6, f32x4Div: 0xe7,
  f32x4DemoteF64x2Zero: 0x5e, f64x2PromoteLowF32x4: 0x5f, f64x2Add: 0xf0,
  f32x4Min: 0xe8, f32x4Max: 0xe9, f32x4Pmin: 0xea, f32x4Pmax: 0xeb, i32x4TruncSatF32x4S: 0xf8, f32x4ConvertI32x4S: 0xfa,
} as const;

/** Unsigned LEB128. */
export function uleb(n: number, out: number[] = []): number[] {
  do {
    let b = n & 0x7f;
    n >>>= 7;
    if (n !== 0) b |= 0x80;
    out.push(b);
  } while (n !== 0);
  return out;
}

/** Signed LEB128 (32-bit). */
export function sleb(n: number, out: number[] = []): number[] {
  n |= 0;
  for (;;) {
    const b = n & 0x7f;
    n >>= 7;
    if ((n === 0 && (b & 0x40) === 0) || (n === -1 && (b & 0x40) !== 0)) {
      out.push(b);
      return out;
    }
    out.push(b | 0x80);
  }
}

const f32Bytes = (v: number): number[] => [...new Uint8Array(new Float32Array([v]).buffer)];

/** The instructions of one function body, and its locals (after the parameters). */
export class Code {
  readonly bytes: number[] = [];
  private readonly locals: ValType[] = [];
  /** Vector constants, set once at entry: V8 rebuilds a v128.const at every use, even inside loops (Gaussian sum, one thread: 0.61-0.64 G pairs per CPU-s against 0.57-0.59 inline). */
  private readonly consts = new Map<string, number>();
  private readonly prologue: number[] = [];
  constructor(private readonly nParams: number) {}

  /** A new local of type t; returns its index. */
  local(t: ValType): number {
    this.locals.push(t);
    return this.nParams + this.locals.length - 1;
  }
  op(...b: number[]): this {
    this.bytes.push(...b);
    return this;
  }
  simd(op: number, ...imm: number[]): this {
    this.bytes.push(0xfd, ...uleb(op), ...imm);
    return this;
  }
  get(l: number): this {
    return this.op(OP.localGet, ...uleb(l));
  }
  set(l: number): this {
    return this.op(OP.localSet, ...uleb(l));
  }
  tee(l: number): this {
    return this.op(OP.localTee, ...uleb(l));
  }
  i32(n: number): this {
    return this.op(OP.i32Const, ...sleb(n));
  }
  f32(v: number): this {
    return this.op(OP.f32Const, ...f32Bytes(v));
  }
  /** A v128 constant with the same float32 in every lane. */
  splatF(v: number): this {
    return this.vconst(f32Bytes(v));
  }
  /** A v128 constant with the same int32 in every lane. */
  splatI(n: number): this {
    return this.vconst([...new Uint8Array(new Int32Array([n]).buffer)]);
  }
  private vconst(lane: readonly number[]): this {
    const key = lane.join(',');
    let l = this.consts.get(key);
    if (l === undefined) {
      l = this.local(V128);
      this.consts.set(key, l);
      this.prologue.push(0xfd, ...uleb(SIMD.const), ...lane, ...lane, ...lane, ...lane, OP.localSet, ...uleb(l));
    }
    return this.get(l);
  }
  /** A memory access (alignment as log2 bytes, static offset). */
  mem(op: number, align: number, offset = 0): this {
    return this.op(op, ...uleb(align), ...uleb(offset));
  }
  vload(offset = 0): this {
    return this.simd(SIMD.load, ...uleb(4), ...uleb(offset));
  }
  vstore(offset = 0): this {
    return this.simd(SIMD.store, ...uleb(4), ...uleb(offset));
  }

  /** The function body: locals (run-length encoded by type), instructions, end. */
  body(): number[] {
    const groups: [number, ValType][] = [];
    for (const t of this.locals) {
      const last = groups[groups.length - 1];
      if (last !== undefined && last[1] === t) last[0]++;
      else groups.push([1, t]);
    }
    const inner = [...uleb(groups.length), ...groups.flatMap(([n, t]) => [...uleb(n), t]), ...this.prologue, ...this.bytes, OP.end];
    return [...uleb(inner.length), ...inner];
  }
}

const str = (s: string): number[] => [...uleb(s.length), ...[...s].map((c) => c.charCodeAt(0))];
const section = (id: number, content: number[]): number[] => [id, ...uleb(content.length), ...content];
const vec = (items: number[][]): number[] => [...uleb(items.length), ...items.flat()];
const funcType = (params: readonly ValType[], results: readonly ValType[]): number[] => [0x60, ...uleb(params.length), ...params, ...uleb(results.length), ...results];

/** An imported function: module `m`, field `name`, its signature. */
export interface FuncImport {
  readonly name: string;
  readonly params: readonly ValType[];
  readonly results: readonly ValType[];
}

/**
 * A module of one exported function `run` (i32 parameters), importing memory `env.mem` and the
 * functions `imports` (as `m.<name>`, function indices 0 ... imports.length - 1).
 */
export function moduleBytes(nParams: number, code: Code, imports: readonly FuncImport[]): Uint8Array {
  const types = [...imports.map((f) => funcType(f.params, f.results)), funcType(Array<ValType>(nParams).fill(I32), [])];
  const imp = [
    [...str('env'), ...str('mem'), 0x02, 0x00, 0x01],
    ...imports.map((f, k) => [...str('m'), ...str(f.name), 0x00, ...uleb(k)]),
  ];
  return new Uint8Array([
    0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
    ...section(1, vec(types)),
    ...section(2, vec(imp)),
    ...section(3, vec([uleb(imports.length)])),
    ...section(7, vec([[...str('run'), 0x00, ...uleb(imports.length)]])),
    ...section(10, vec([code.body()])),
  ]);
}

/** The smallest module using a SIMD instruction: `WebAssembly.validate` of it says whether the engine has SIMD. */
export const SIMD_PROBE = new Uint8Array([
  0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00,
  ...section(1, vec([funcType([], [V128])])),
  ...section(3, vec([[0]])),
  ...section(10, vec([[...uleb(20), 0x00, 0xfd, SIMD.const, ...Array<number>(16).fill(0), OP.end]])),
]);
