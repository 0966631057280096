/**
 * Parser of the kernel statement language that op emitters print (src/ops/op.ts, `Dialect`): with
 * the WASM dialect (dialect.ts) it reads `let x = e;` (float), `idx k = e;` (index), `array a n;`,
 * assignments, `if/else`, `while`, `for (k, n)`, blocks, infix arithmetic and comparisons,
 * `&& || !`, calls and `a[i]` indexing. Names resolve to symbols at parse time (block scoping),
 * and every expression gets its type: float, index or boolean.
 */

export type Ty = 'f' | 'i' | 'b';

/** Where an array lives: `vec` arrays hold one v128 (4 lanes, one per row) per element, `scalar` ones one float32 shared by all lanes. */
export type ArrayKind = 'vec' | 'scalar';

export interface Sym {
  readonly name: string;
  readonly ty: Ty | 'array';
  /** For arrays: element layout, size (scratch arrays) or the parameter holding the base address (inputs, outputs). */
  readonly kind?: ArrayKind;
  readonly size?: number;
  readonly baseParam?: number;
  /** An index variable whose value may differ between lanes (set by the compiler's analysis). */
  varying: boolean;
  /** A float accumulated in float64 (two f64x2 locals from `slot`), see compile.ts `kahanSums`. */
  f64?: boolean;
  /** The wasm local (or, for scratch arrays, the byte address) assigned by the compiler. */
  slot: number;
}

export type Expr =
  | { readonly k: 'num'; readonly v: number; readonly ty: 'f' }
  | { readonly k: 'int'; readonly v: number; readonly ty: 'i' }
  | { readonly k: 'ref'; readonly sym: Sym; readonly ty: Ty }
  | { readonly k: 'index'; readonly sym: Sym; readonly idx: Expr; readonly ty: 'f' }
  | { readonly k: 'call'; readonly fn: string; readonly args: readonly Expr[]; readonly ty: Ty }
  | { readonly k: 'un'; readonly op: '-' | '!'; readonly a: Expr; readonly ty: Ty }
  | { readonly k: 'bin'; readonly op: string; readonly a: Expr; readonly b: Expr; readonly ty: Ty };

export type Stmt =
  | { readonly k: 'decl'; readonly sym: Sym; readonly e: Expr }
  | { readonly k: 'set'; readonly sym: Sym; readonly e: Expr }
  | { readonly k: 'store'; readonly sym: Sym; readonly idx: Expr; readonly e: Expr }
  | { readonly k: 'if'; readonly c: Expr; readonly then: readonly Stmt[]; readonly else: readonly Stmt[] }
  | { readonly k: 'while'; readonly c: Expr; readonly body: readonly Stmt[] }
  | { readonly k: 'for'; readonly sym: Sym; readonly n: Expr; readonly body: readonly Stmt[] }
  | { readonly k: 'block'; readonly body: readonly Stmt[] };

/** Float-valued math functions (one or two float arguments); `f32` converts an index, `select(c, a, b)` picks by a condition. */
const ARITY: Readonly<Record<string, number>> = {
  exp: 1, log: 1, sin: 1, cos: 1, asin: 1, acos: 1, atan: 1, atan2: 2, sqrt: 1, rsqrt: 1, abs: 1, sign: 1,
  floor: 1, ceil: 1, trunc: 1, min: -1, max: -1, pow: 2, f32: 1, select: 3,
};

const TOKEN = /\s*(?:(\d+(?:\.\d*)?(?:e[+-]?\d+)?u?)|([A-Za-z_][A-Za-z0-9_]*)|(&&|\|\||<=|>=|==|!=|[-+*/<>=!(){}[\];,]))/y;

function tokenize(src: string): string[] {
  const out: string[] = [];
  TOKEN.lastIndex = 0;
  for (;;) {
    const at = TOKEN.lastIndex;
    const m = TOKEN.exec(src);
    if (m === null) {
      if (/^\s*$/.test(src.slice(at))) return out;
      throw new Error(`wasm kernel: cannot read '${src.slice(at, at + 40)}'`);
    }
    out.push(m[1] ?? m[2] ?? m[3]!);
  }
}

const PREC: Readonly<Record<string, number>> = { '||': 1, '&&': 2, '==': 3, '!=': 3, '<': 4, '<=': 4, '>': 4, '>=': 4, '+': 5, '-': 5, '*': 6, '/': 6 };

/** A parsed kernel: its statements and its scratch arrays (`array a n;`, wherever declared). */
export interface ParsedKernel {
  readonly body: readonly Stmt[];
  readonly arrays: readonly Sym[];
}

/** Parses a kernel body; `globals` are the names defined outside it (inputs, outputs, sizes). */
export function parseKernel(src: string, globals: readonly Sym[]): ParsedKernel {
  const arrays: Sym[] = [];
  const toks = tokenize(src);
  let p = 0;
  const scopes: Map<string, Sym>[] = [new Map(globals.map((s) => [s.name, s]))];
  const peek = (): string | undefined => toks[p];
  const next = (): string => {
    const t = toks[p++];
    if (t === undefined) throw new Error('wasm kernel: unexpected end');
    return t;
  };
  const expect = (t: string): void => {
    const got = next();
    if (got !== t) throw new Error(`wasm kernel: expected '${t}', got '${got}' near token ${p}`);
  };
  const lookup = (name: string): Sym => {
    for (let s = scopes.length - 1; s >= 0; s--) {
      const sym = scopes[s]!.get(name);
      if (sym !== undefined) return sym;
    }
    throw new Error(`wasm kernel: unknown name '${name}'`);
  };
  const declare = (name: string, ty: Sym['ty'], extra: Partial<Sym> = {}): Sym => {
    const sym: Sym = { name, ty, varying: false, slot: -1, ...extra };
    scopes[scopes.length - 1]!.set(name, sym);
    return sym;
  };

  function block(): Stmt[] {
    expect('{');
    scopes.push(new Map());
    const out: Stmt[] = [];
    while (peek() !== '}') out.push(stmt());
    next();
    scopes.pop();
    return out;
  }

  function stmt(): Stmt {
    const t = next();
    if (t === '{') {
      p--;
      return { k: 'block', body: block() };
    }
    if (t === 'let' || t === 'idx') {
      const name = next();
      expect('=');
      const e = expr();
      expect(';');
      if (e.ty !== (t === 'let' ? 'f' : 'i')) throw new Error(`wasm kernel: ${name} declared ${t} with a ${e.ty} value`);
      return { k: 'decl', sym: declare(name, e.ty), e };
    }
    if (t === 'array') {
      const name = next();
      const size = Number(next().replace(/u$/, ''));
      expect(';');
      arrays.push(declare(name, 'array', { kind: 'vec', size }));
      return { k: 'block', body: [] };
    }
    if (t === 'if') {
      expect('(');
      const c = expr();
      expect(')');
      const then = block();
      let els: Stmt[] = [];
      if (peek() === 'else') {
        next();
        els = peek() === 'if' ? [stmt()] : block();
      }
      return { k: 'if', c, then, else: els };
    }
    if (t === 'while') {
      expect('(');
      const c = expr();
      expect(')');
      return { k: 'while', c, body: block() };
    }
    if (t === 'for') {
      expect('(');
      const name = next();
      expect(',');
      const n = expr();
      expect(')');
      scopes.push(new Map());
      const sym = declare(name, 'i');
      const body = block();
      scopes.pop();
      return { k: 'for', sym, n, body };
    }
    const sym = lookup(t);
    if (peek() === '[') {
      next();
      const idx = expr();
      expect(']');
      expect('=');
      const e = expr();
      expect(';');
      return { k: 'store', sym, idx, e };
    }
    expect('=');
    const e = expr();
    expect(';');
    if (e.ty !== sym.ty) throw new Error(`wasm kernel: ${t} (${sym.ty}) assigned a ${e.ty} value`);
    return { k: 'set', sym, e };
  }

  function expr(min = 1): Expr {
    let a = unary();
    for (;;) {
      const op = peek();
      const prec = op === undefined ? undefined : PREC[op];
      if (prec === undefined || prec < min) return a;
      next();
      const b = expr(prec + 1);
      const ty: Ty = prec <= 4 ? 'b' : a.ty;
      if (prec > 2 && a.ty !== b.ty) throw new Error(`wasm kernel: '${op}' between ${a.ty} and ${b.ty}`);
      a = { k: 'bin', op: op!, a, b, ty };
    }
  }

  function unary(): Expr {
    const t = peek();
    if (t === '-' || t === '!') {
      next();
      const a = unary();
      if (t === '-' && a.k === 'num') return { k: 'num', v: -a.v, ty: 'f' };
      return { k: 'un', op: t, a, ty: a.ty };
    }
    return primary();
  }

  function primary(): Expr {
    const t = next();
    if (t === '(') {
      const e = expr();
      expect(')');
      return e;
    }
    if (/^\d/.test(t)) return t.endsWith('u') ? { k: 'int', v: Number(t.slice(0, -1)), ty: 'i' } : { k: 'num', v: Number(t), ty: 'f' };
    if (t === 'Infinity') return { k: 'num', v: Infinity, ty: 'f' };
    if (t === 'NaN') return { k: 'num', v: NaN, ty: 'f' };
    if (peek() === '(' && ARITY[t] !== undefined) {
      next();
      const args: Expr[] = [];
      while (peek() !== ')') {
        args.push(expr());
        if (peek() === ',') next();
      }
      next();
      const n = ARITY[t]!;
      if (n >= 0 && args.length !== n) throw new Error(`wasm kernel: ${t} takes ${n} arguments, got ${args.length}`);
      return { k: 'call', fn: t, args, ty: 'f' };
    }
    const sym = lookup(t);
    if (peek() === '[') {
      next();
      const idx = expr();
      expect(']');
      return { k: 'index', sym, idx, ty: 'f' };
    }
    if (sym.ty === 'array') throw new Error(`wasm kernel: array ${t} read without an index`);
    return { k: 'ref', sym, ty: sym.ty };
  }

  const body: Stmt[] = [];
  while (p < toks.length) body.push(stmt());
  return { body, arrays };
}
