import { Code, I32, OP, SIMD, uleb, V128 } from './encode.js';
import { lanewise, SCALAR_MATH, vexp, vlog } from './math.js';
import type { Expr, ParsedKernel, Stmt, Sym } from './parse.js';

/**
 * Compiles a parsed kernel body to one WASM function over f32x4: each lane is one row i (so every
 * reduction's code vectorizes lane-wise, j-side values are splatted). Floats are v128 locals;
 * index variables are i32 locals while every lane agrees on them (loop counters, positions), and
 * i32x4 once the analysis finds them set under a lane-dependent condition (a K-list insertion's
 * position). Lane-dependent `if`/`while` become masks: both sides run (skipped when no lane takes
 * them), assignments blend with `v128.bitselect`, so a lane only changes where its condition held.
 */

/** How a value sits on the stack: float vector, uniform or varying index, uniform or varying boolean. */
type Kind = 'f' | 'iu' | 'iv' | 'bu' | 'bv';

/** Whether an index or boolean expression may differ between lanes (any float in it does). */
function varying(e: Expr): boolean {
  switch (e.k) {
    case 'num':
    case 'index':
    case 'call':
      return true;
    case 'int':
      return false;
    case 'ref':
      return e.sym.ty === 'f' || e.sym.varying;
    case 'un':
      return varying(e.a);
    case 'bin':
      return varying(e.a) || varying(e.b);
  }
}

const kindOf = (e: Expr): Kind => (e.ty === 'f' ? 'f' : e.ty === 'i' ? (varying(e) ? 'iv' : 'iu') : varying(e) ? 'bv' : 'bu');

/** Marks index variables set under a lane-dependent condition, or to a lane-dependent value, as varying (to a fixpoint). */
function analyze(stmts: readonly Stmt[]): void {
  let changed = true;
  const mark = (sym: Sym, masked: boolean, e: Expr): void => {
    if (sym.ty === 'i' && !sym.varying && (masked || varying(e))) {
      sym.varying = true;
      changed = true;
    }
  };
  const walk = (ss: readonly Stmt[], masked: boolean): void => {
    for (const s of ss) {
      if (s.k === 'decl' || s.k === 'set') mark(s.sym, masked, s.e);
      else if (s.k === 'if') {
        const m = masked || varying(s.c);
        walk(s.then, m);
        walk(s.else, m);
      } else if (s.k === 'while') walk(s.body, masked || varying(s.c));
      else if (s.k === 'for' || s.k === 'block') walk(s.body, masked);
    }
  };
  while (changed) {
    changed = false;
    walk(stmts, false);
  }
}

/**
 * The Sum reduction's compensated additions (ops/reductions.ts `kahanAdd`, printed because the
 * dialect has a `barrier`): `{ let y = x - c; let t = (s + y); c = select(...); s = t; }`. Where s
 * is a scalar that only such blocks update, s becomes a float64 accumulator and each block
 * `s += x` in float64: fewer instructions per term than Kahan, as accurate. Any other shape (an
 * array accumulator, a changed printer) keeps the compensated float32 code. Returns the blocks' x.
 */
function kahanSums(stmts: readonly Stmt[]): Map<Stmt, Expr> {
  const found = new Map<Stmt, Expr>();
  const sets = new Map<Sym, number>();
  const inBlocks = new Map<Sym, number>();
  const walk = (ss: readonly Stmt[]): void => {
    for (const s of ss) {
      if (s.k === 'set') sets.set(s.sym, (sets.get(s.sym) ?? 0) + 1);
      if ('body' in s) walk(s.body);
      if (s.k === 'if') {
        walk(s.then);
        walk(s.else);
      }
      if (s.k !== 'block' || s.body.length !== 4) continue;
      const [y, t, cc, ss2] = s.body as [Stmt, Stmt, Stmt, Stmt];
      if (y.k !== 'decl' || t.k !== 'decl' || cc.k !== 'set' || ss2.k !== 'set') continue;
      const sum = ss2.sym;
      const ok =
        y.e.k === 'bin' && y.e.op === '-' && y.e.b.k === 'ref' && y.e.b.sym === cc.sym &&
        t.e.k === 'bin' && t.e.op === '+' && t.e.a.k === 'ref' && t.e.a.sym === sum && t.e.b.k === 'ref' && t.e.b.sym === y.sym &&
        ss2.e.k === 'ref' && ss2.e.sym === t.sym && cc.e.k === 'call' && cc.e.fn === 'select';
      if (!ok) continue;
      found.set(s, (y.e as { a: Expr }).a);
      inBlocks.set(sum, (inBlocks.get(sum) ?? 0) + 1);
    }
  };
  walk(stmts);
  for (const s of [...found.keys()]) {
    const sum = (s as { body: readonly Stmt[] }).body[3] as { sym: Sym };
    // Every assignment of s must be one of these blocks (its compensation is then never read).
    if (sets.get(sum.sym) !== inBlocks.get(sum.sym)) found.delete(s);
    else sum.sym.f64 = true;
  }
  return found;
}

const F_BIN: Readonly<Record<string, number>> = {
  '+': SIMD.f32x4Add, '-': SIMD.f32x4Sub, '*': SIMD.f32x4Mul, '/': SIMD.f32x4Div,
  '<': SIMD.f32x4Lt, '<=': SIMD.f32x4Le, '>': SIMD.f32x4Gt, '>=': SIMD.f32x4Ge, '==': SIMD.f32x4Eq, '!=': SIMD.f32x4Ne,
};
const IV_BIN: Readonly<Record<string, number>> = {
  '+': SIMD.i32x4Add, '-': SIMD.i32x4Sub, '*': SIMD.i32x4Mul,
  '<': SIMD.i32x4LtS, '<=': SIMD.i32x4LeS, '>': SIMD.i32x4GtS, '>=': SIMD.i32x4GeS, '==': SIMD.i32x4Eq, '!=': SIMD.i32x4Ne,
};
const IU_BIN: Readonly<Record<string, number>> = {
  '+': OP.i32Add, '-': OP.i32Sub, '*': OP.i32Mul, '<': OP.i32LtS, '<=': OP.i32LeS, '>': OP.i32GtS, '>=': OP.i32GeS, '==': OP.i32Eq, '!=': OP.i32Ne,
};
const F_UNARY: Readonly<Record<string, number>> = { sqrt: SIMD.f32x4Sqrt, abs: SIMD.f32x4Abs, floor: SIMD.f32x4Floor, ceil: SIMD.f32x4Ceil, trunc: SIMD.f32x4Trunc };

/**
 * Emits `stmts` into `c`. Scratch arrays (`array a n;`) get byte addresses from `scratch` on
 * (16 bytes per element); returns the end of the scratch area.
 */
export function compileStmts(c: Code, kernel: ParsedKernel, scratch: number): number {
  analyze(kernel.body);
  const sums = kahanSums(kernel.body);
  let next = scratch;
  for (const sym of kernel.arrays) {
    sym.slot = next;
    next += sym.size! * 16;
  }

  const as = (e: Expr, want: Kind): void => {
    const k = ex(e);
    if (k === want) return;
    if (k === 'iu' && want === 'iv') c.simd(SIMD.i32x4Splat);
    else if (k === 'bu' && want === 'bv') c.simd(SIMD.i32x4Splat).simd(SIMD.i32x4Neg);
    else throw new Error(`wasm kernel: a ${k} value where a ${want} is needed`);
  };
  const tmp = (e: Expr, want: Kind): number => {
    const l = c.local(want === 'iu' || want === 'bu' ? I32 : V128);
    as(e, want);
    c.set(l);
    return l;
  };

  /** Pushes the base address of an array. */
  const base = (sym: Sym): void => void (sym.baseParam !== undefined ? c.get(sym.baseParam) : c.i32(sym.slot));
  const shift = (sym: Sym): number => (sym.kind === 'vec' ? 4 : 2);

  /** The varying index of an array access, clamped into the array so that a masked-off lane never reads outside memory. */
  const laneIndex = (sym: Sym, idx: Expr): number => {
    const l = c.local(V128);
    as(idx, 'iv');
    c.splatI(0).simd(SIMD.i32x4MaxS);
    if (sym.size !== undefined) c.splatI(sym.size - 1).simd(SIMD.i32x4MinS);
    c.set(l);
    return l;
  };
  /** Pushes the byte address of lane l's element. */
  const laneAddr = (sym: Sym, ix: number, l: number): void => {
    base(sym);
    c.get(ix).simd(SIMD.i32x4Extract, l).i32(shift(sym)).op(OP.i32Shl).op(OP.i32Add);
    if (sym.kind === 'vec' && l > 0) c.i32(4 * l).op(OP.i32Add);
  };
  /** Pushes the address of a uniform index, returning the static offset to use: a constant term of the index folds into the instruction. */
  const uniformAddr = (sym: Sym, idx: Expr): number => {
    base(sym);
    let k = 0;
    if (idx.k === 'int') k = idx.v;
    else if (idx.k === 'bin' && idx.op === '+' && idx.b.k === 'int') {
      k = idx.b.v;
      idx = idx.a;
    }
    if (idx.k !== 'int') {
      as(idx, 'iu');
      c.i32(shift(sym)).op(OP.i32Shl).op(OP.i32Add);
    }
    return k < 0 ? (c.i32(k << shift(sym)).op(OP.i32Add), 0) : k << shift(sym);
  };

  function load(sym: Sym, idx: Expr): void {
    if (kindOf(idx) === 'iu') {
      const off = uniformAddr(sym, idx);
      if (sym.kind === 'vec') c.vload(off);
      else c.simd(SIMD.load32Splat, 2, ...uleb(off));
      return;
    }
    const ix = laneIndex(sym, idx);
    const res = c.local(V128);
    c.splatF(0).set(res);
    for (let l = 0; l < 4; l++) {
      c.get(res);
      laneAddr(sym, ix, l);
      c.mem(OP.f32Load, 2).simd(SIMD.f32x4Replace, l).set(res);
    }
    c.get(res);
  }

  function store(sym: Sym, idx: Expr, e: Expr, mask: number | null): void {
    if (sym.kind !== 'vec') throw new Error(`wasm kernel: store into read-only ${sym.name}`);
    if (kindOf(idx) === 'iu') {
      const a = c.local(I32);
      const off = uniformAddr(sym, idx);
      c.tee(a);
      as(e, 'f');
      if (mask !== null) c.get(a).vload(off).get(mask).simd(SIMD.bitselect);
      c.vstore(off);
      return;
    }
    const v = tmp(e, 'f');
    const ix = laneIndex(sym, idx);
    for (let l = 0; l < 4; l++) {
      if (mask !== null) c.get(mask).simd(SIMD.i32x4Extract, l).op(OP.if, 0x40);
      laneAddr(sym, ix, l);
      c.get(v).simd(SIMD.f32x4Extract, l).mem(OP.f32Store, 2);
      if (mask !== null) c.op(OP.end);
    }
  }

  function call(fn: string, args: readonly Expr[]): Kind {
    const a0 = args[0]!;
    if (fn === 'f32') {
      const k = ex(a0);
      if (k === 'iu') c.op(OP.f32ConvertI32S).simd(SIMD.f32x4Splat);
      else if (k === 'iv') c.simd(SIMD.f32x4ConvertI32x4S);
      else throw new Error('wasm kernel: f32() of a non-index');
      return 'f';
    }
    if (fn === 'select') {
      as(args[1]!, 'f');
      as(args[2]!, 'f');
      as(a0, 'bv');
      c.simd(SIMD.bitselect);
      return 'f';
    }
    const unary = F_UNARY[fn];
    if (unary !== undefined) {
      as(a0, 'f');
      c.simd(unary);
      return 'f';
    }
    if (fn === 'min' || fn === 'max') {
      as(a0, 'f');
      for (const a of args.slice(1)) {
        as(a, 'f');
        c.simd(fn === 'min' ? SIMD.f32x4Min : SIMD.f32x4Max);
      }
      return 'f';
    }
    if (fn === 'rsqrt') {
      c.splatF(1);
      as(a0, 'f');
      c.simd(SIMD.f32x4Sqrt).simd(SIMD.f32x4Div);
      return 'f';
    }
    const x = tmp(a0, 'f');
    if (fn === 'exp') vexp(c, x);
    else if (fn === 'log') vlog(c, x);
    // sign: 1 above 0, -1 below, x itself for zeros and NaN (as Math.sign).
    else if (fn === 'sign') {
      c.splatF(1).splatF(-1).get(x).get(x).splatF(0).simd(SIMD.f32x4Lt).simd(SIMD.bitselect);
      c.get(x).splatF(0).simd(SIMD.f32x4Gt).simd(SIMD.bitselect);
    } else {
      const at = SCALAR_MATH.findIndex((f) => f.name === fn);
      if (at < 0) throw new Error(`wasm kernel: unknown function ${fn}`);
      lanewise(c, at, [x, ...args.slice(1).map((a) => tmp(a, 'f'))]);
    }
    return 'f';
  }

  function ex(e: Expr): Kind {
    switch (e.k) {
      case 'num':
        c.splatF(e.v);
        return 'f';
      case 'int':
        c.i32(e.v);
        return 'iu';
      case 'ref':
        if (e.sym.f64 === true) {
          // Both halves rounded to float32 and joined: [lo0, lo1, hi0, hi1].
          c.get(e.sym.slot).simd(SIMD.f32x4DemoteF64x2Zero).get(e.sym.slot + 1).simd(SIMD.f32x4DemoteF64x2Zero);
          c.simd(SIMD.shuffle, 0, 1, 2, 3, 4, 5, 6, 7, 16, 17, 18, 19, 20, 21, 22, 23);
          return 'f';
        }
        c.get(e.sym.slot);
        return kindOf(e);
      case 'index':
        load(e.sym, e.idx);
        return 'f';
      case 'call':
        return call(e.fn, e.args);
      case 'un': {
        const k = kindOf(e);
        if (e.op === '!') {
          ex(e.a);
          if (k === 'bv') c.simd(SIMD.not);
          else c.op(OP.i32Eqz);
        } else if (k === 'f') {
          ex(e.a);
          c.simd(SIMD.f32x4Neg);
        } else if (k === 'iv') {
          ex(e.a);
          c.simd(SIMD.i32x4Neg);
        } else {
          c.i32(0);
          ex(e.a);
          c.op(OP.i32Sub);
        }
        return k;
      }
      case 'bin': {
        const k = kindOf(e);
        if (e.op === '&&' || e.op === '||') {
          as(e.a, k);
          as(e.b, k);
          if (k === 'bv') c.simd(e.op === '&&' ? SIMD.and : SIMD.or);
          else c.op(e.op === '&&' ? OP.i32And : OP.i32Or);
          return k;
        }
        const operand = kindOf(e.a) === 'f' || kindOf(e.b) === 'f' ? 'f' : varying(e) ? 'iv' : 'iu';
        const table = operand === 'f' ? F_BIN : operand === 'iv' ? IV_BIN : IU_BIN;
        const op = table[e.op];
        if (op === undefined) throw new Error(`wasm kernel: no '${e.op}' on ${operand}`);
        as(e.a, operand);
        as(e.b, operand);
        if (operand === 'iu') c.op(op);
        else c.simd(op);
        return k;
      }
    }
  }

  function assign(sym: Sym, e: Expr, mask: number | null): void {
    const want: Kind = sym.ty === 'f' ? 'f' : sym.varying ? 'iv' : 'iu';
    as(e, want);
    if (mask !== null) {
      if (want === 'iu') throw new Error(`internal: uniform ${sym.name} set under a mask`);
      c.get(sym.slot).get(mask).simd(SIMD.bitselect);
    }
    c.set(sym.slot);
  }

  /** `s += x` in float64 (lanes 0-1 in s's first local, 2-3 in its second); masked-off lanes add 0. */
  function add64(sym: Sym, x: Expr, mask: number | null): void {
    const v = c.local(V128);
    as(x, 'f');
    if (mask !== null) c.get(mask).simd(SIMD.and);
    c.set(v);
    c.get(sym.slot).get(v).simd(SIMD.f64x2PromoteLowF32x4).simd(SIMD.f64x2Add).set(sym.slot);
    c.get(sym.slot + 1).get(v).get(v).simd(SIMD.shuffle, 8, 9, 10, 11, 12, 13, 14, 15, 8, 9, 10, 11, 12, 13, 14, 15);
    c.simd(SIMD.f64x2PromoteLowF32x4).simd(SIMD.f64x2Add).set(sym.slot + 1);
  }

  /** A mask: `mask & cond` (or `mask & !cond`), in a new local. */
  const narrowed = (mask: number | null, cond: number, negate: boolean): number => {
    const l = c.local(V128);
    if (mask === null) {
      c.get(cond);
      if (negate) c.simd(SIMD.not);
    } else c.get(mask).get(cond).simd(negate ? SIMD.andnot : SIMD.and);
    c.set(l);
    return l;
  };

  function stmts(ss: readonly Stmt[], mask: number | null): void {
    for (const s of ss) stmt(s, mask);
  }

  function stmt(s: Stmt, mask: number | null): void {
    switch (s.k) {
      case 'decl':
        if (s.sym.f64 === true) {
          s.sym.slot = c.local(V128);
          c.local(V128);
          c.i32(0).simd(SIMD.i32x4Splat).set(s.sym.slot).i32(0).simd(SIMD.i32x4Splat).set(s.sym.slot + 1);
          add64(s.sym, s.e, null);
          return;
        }
        s.sym.slot = c.local(s.sym.ty === 'f' || s.sym.varying ? V128 : I32);
        assign(s.sym, s.e, null);
        return;
      case 'set':
        assign(s.sym, s.e, mask);
        return;
      case 'store':
        store(s.sym, s.idx, s.e, mask);
        return;
      case 'block': {
        const x = sums.get(s);
        if (x !== undefined) add64((s.body[3] as { sym: Sym }).sym, x, mask);
        else stmts(s.body, mask);
        return;
      }
      case 'for': {
        const k = c.local(I32);
        s.sym.slot = k;
        c.i32(0).set(k).op(OP.block, 0x40, OP.loop, 0x40);
        c.get(k);
        as(s.n, 'iu');
        c.op(OP.i32GeS, OP.brIf, 1);
        stmts(s.body, mask);
        c.get(k).i32(1).op(OP.i32Add).set(k).op(OP.br, 0, OP.end, OP.end);
        return;
      }
      case 'if': {
        if (kindOf(s.c) === 'bu') {
          as(s.c, 'bu');
          c.op(OP.if, 0x40);
          stmts(s.then, mask);
          if (s.else.length > 0) {
            c.op(OP.else);
            stmts(s.else, mask);
          }
          c.op(OP.end);
          return;
        }
        // Each side runs only when some lane takes it (a K-list insertion is rare: mostly skipped).
        const cond = tmp(s.c, 'bv');
        for (const [body, negate] of [[s.then, false], [s.else, true]] as const) {
          if (body.length === 0) continue;
          const m = narrowed(mask, cond, negate);
          c.get(m).simd(SIMD.anyTrue).op(OP.if, 0x40);
          stmts(body, m);
          c.op(OP.end);
        }
        return;
      }
      case 'while': {
        if (kindOf(s.c) === 'bu') {
          c.op(OP.block, 0x40, OP.loop, 0x40);
          as(s.c, 'bu');
          c.op(OP.i32Eqz, OP.brIf, 1);
          stmts(s.body, mask);
          c.op(OP.br, 0, OP.end, OP.end);
          return;
        }
        // Runs while any lane is still looping; a lane that left stays out.
        const m = c.local(V128);
        if (mask === null) c.splatI(-1).set(m);
        else c.get(mask).set(m);
        c.op(OP.block, 0x40, OP.loop, 0x40);
        c.get(m);
        as(s.c, 'bv');
        c.simd(SIMD.and).tee(m).simd(SIMD.anyTrue).op(OP.i32Eqz, OP.brIf, 1);
        stmts(s.body, m);
        c.op(OP.br, 0, OP.end, OP.end);
        return;
      }
    }
  }

  stmts(kernel.body, null);
  return next;
}
