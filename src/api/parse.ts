/**
 * The KeOps formula-string front end: alias declarations (`'x = Vi(3)'`) and formulas
 * (`'Exp(-g*SqDist(x,y))*b'`) parsed into the interned Formula IR. Precedence follows Python,
 * which KeOps evaluates formulas with: `|` < `+ -` < `* /` < unary `-` < calls and atoms.
 */
import { DimensionError, KernelflowError, ParseError } from '../errors.js';
import { mkConst, mkVar, type Cat, type Formula } from '../graph/formula.js';
import { op } from '../ops/build.js';
import type { OpDef } from '../ops/op.js';
import { OPS } from '../ops/table.js';
import { zeros } from '../ops/diff.js';
import { vjpFormula } from '../ops/vjp.js';

/** One declared variable: `x = Vi(3)` is `{ name: 'x', index: <position>, dim: 3, cat: 0 }`. */
export interface Alias {
  readonly name: string;
  readonly index: number;
  readonly dim: number;
  readonly cat: Cat;
}

interface Tok {
  readonly kind: 'num' | 'id' | 'sym' | 'eof';
  readonly text: string;
  readonly col: number;
  readonly value: number;
}

/** An argument of a call: a bare (optionally negated) numeric literal is kept apart, as it may be a static param. */
type Arg = { readonly col: number; readonly lit: number } | { readonly col: number; readonly f: Formula };

// Bounds recursion so that `((((...` or `----...x` of any length fails cleanly instead of overflowing the stack.
const MAX_DEPTH = 256;
const NUM = /(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?/y;
const ID = /[A-Za-z_]\w*/y;
const SYMS = '()+-*/|,=';
// A Map, not an object literal, so that names like `toString` are not found on the prototype.
const VAR_CAT: ReadonlyMap<string, Cat> = new Map([['Vi', 0], ['Vj', 1], ['Pm', 2]]);

function tokenize(src: string): Tok[] {
  const toks: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const ch = src[i]!;
    if (/\s/.test(ch)) {
      i++;
      continue;
    }
    const col = i + 1;
    NUM.lastIndex = i;
    ID.lastIndex = i;
    const num = NUM.exec(src);
    const id = num === null ? ID.exec(src) : null;
    if (num !== null) {
      const end = i + num[0].length;
      // `1e`, `2x`, `1.2.3`: report the whole run rather than a confusing token after it.
      if (/[\w.]/.test(src[end] ?? '')) {
        const run = /[\w.]*/y;
        run.lastIndex = end;
        throw new ParseError(`malformed number '${num[0]}${run.exec(src)?.[0] ?? ''}'`, src, col);
      }
      toks.push({ kind: 'num', text: num[0], col, value: Number(num[0]) });
      i = end;
    } else if (id !== null) {
      toks.push({ kind: 'id', text: id[0], col, value: NaN });
      i += id[0].length;
    } else if (SYMS.includes(ch)) {
      toks.push({ kind: 'sym', text: ch, col, value: NaN });
      i++;
    } else {
      const hint = ch === '^' ? " (KeOps formulas have no '^': use Pow(f, n), Square(f) or Powf(f, g))" : '';
      throw new ParseError(`unexpected character '${ch}'${hint}`, src, col);
    }
  }
  toks.push({ kind: 'eof', text: '', col: src.length + 1, value: NaN });
  return toks;
}

const isSym = (t: Tok, s: string): boolean => t.kind === 'sym' && t.text === s;
const show = (t: Tok): string => (t.kind === 'eof' ? 'end of input' : `'${t.text}'`);

/** Why (index, dim, cat) is not a valid variable, or null when it is. */
function badVar(index: number, dim: number, cat: number): string | null {
  if (!Number.isInteger(index) || index < 0) return `index ${index} must be a non-negative integer`;
  if (!Number.isInteger(dim) || dim < 1) return `dimension ${dim} must be an integer >= 1`;
  if (cat !== 0 && cat !== 1 && cat !== 2) return `category ${cat} must be 0 (Vi), 1 (Vj) or 2 (Pm)`;
  return null;
}

function signature(def: OpDef): string {
  const params = def.nParams > 0 ? ` and ${def.nParams} numeric parameter(s)` : def.nParams < 0 ? ' then numeric parameters' : '';
  return `${def.arity} formula argument(s)${params}`;
}

class Parser {
  private pos = 0;
  private depth = 0;
  // Columns of the '(' not yet closed, innermost last: an early end of input names one.
  private readonly opens: number[] = [];
  private readonly toks: Tok[];

  constructor(
    private readonly src: string,
    private readonly aliases: readonly Alias[],
  ) {
    this.toks = tokenize(src);
  }

  fail(msg: string, col: number): never {
    throw new ParseError(msg, this.src, col);
  }

  private peek(k = 0): Tok {
    return this.toks[Math.min(this.pos + k, this.toks.length - 1)]!;
  }

  private next(): Tok {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  private nested<T>(col: number, fn: () => T): T {
    if (++this.depth > MAX_DEPTH) this.fail(`formula nested more than ${MAX_DEPTH} levels deep`, col);
    try {
      return fn();
    } finally {
      this.depth--;
    }
  }

  top(): Formula {
    if (this.peek().kind === 'eof') this.fail('empty formula', 1);
    const f = this.expr();
    const t = this.peek();
    if (isSym(t, ')')) this.fail("unbalanced parentheses: ')' has no matching '('", t.col);
    if (t.kind !== 'eof') this.fail(`unexpected ${show(t)} after a complete expression`, t.col);
    return f;
  }

  /** Lowest precedence: `a | b` (Python's `|` binds looser than `+`). */
  private expr(): Formula {
    let f = this.sum();
    while (isSym(this.peek(), '|')) {
      const t = this.next();
      f = this.apply('Scalprod', [f, this.sum()], [], t.col);
    }
    return f;
  }

  private sum(): Formula {
    let f = this.product();
    for (let t = this.peek(); isSym(t, '+') || isSym(t, '-'); t = this.peek()) {
      this.next();
      f = this.apply(t.text === '+' ? 'Add' : 'Subtract', [f, this.product()], [], t.col);
    }
    return f;
  }

  private product(): Formula {
    let f = this.unary();
    for (let t = this.peek(); isSym(t, '*') || isSym(t, '/'); t = this.peek()) {
      this.next();
      f = this.apply(t.text === '*' ? 'Mult' : 'Divide', [f, this.unary()], [], t.col);
    }
    return f;
  }

  private unary(): Formula {
    const t = this.peek();
    if (!isSym(t, '-')) return this.primary();
    this.next();
    // Only a bare literal folds, so that printed `-IntCst(2)` still parses back to Minus(IntCst(2)).
    if (this.peek().kind === 'num') return mkConst(-this.next().value);
    return this.apply('Minus', [this.nested(t.col, () => this.unary())], [], t.col);
  }

  private primary(): Formula {
    const t = this.next();
    if (t.kind === 'num') return mkConst(t.value);
    if (t.kind === 'id') {
      if (isSym(this.peek(), '(')) return this.call(t);
      const a = this.aliases.find((x) => x.name === t.text);
      if (a === undefined) this.fail(`alias '${t.text}' is used but not declared`, t.col);
      return mkVar(a.index, a.dim, a.cat);
    }
    if (isSym(t, '(')) {
      this.opens.push(t.col);
      const f = this.nested(t.col, () => this.expr());
      this.close(t);
      return f;
    }
    if (isSym(t, ')') && this.opens.length === 0) this.fail("unbalanced parentheses: ')' has no matching '('", t.col);
    const lp = this.opens[this.opens.length - 1];
    const unclosed = t.kind === 'eof' && lp !== undefined ? ` ('(' at column ${lp} is never closed)` : '';
    return this.fail(`expected an operand, found ${show(t)}${unclosed}`, t.col);
  }

  private close(lp: Tok): void {
    const t = this.next();
    if (t.kind === 'eof') this.fail("unbalanced parentheses: '(' is never closed", lp.col);
    if (!isSym(t, ')')) this.fail(`expected ')' but found ${show(t)}`, t.col);
    this.opens.pop();
  }

  private call(name: Tok): Formula {
    const lp = this.next();
    this.opens.push(lp.col);
    const args: Arg[] = [];
    if (isSym(this.peek(), ')')) this.next();
    else {
      for (;;) {
        args.push(this.nested(lp.col, () => this.arg(name.text === 'Cst')));
        const t = this.next();
        if (isSym(t, ')')) break;
        if (t.kind === 'eof') this.fail("unbalanced parentheses: '(' is never closed", lp.col);
        if (!isSym(t, ',')) this.fail(`expected ',' or ')' in ${name.text}(...), found ${show(t)}`, t.col);
      }
    }
    this.opens.pop();
    return this.build(name, args);
  }

  /** A bare signed literal followed by `,` or `)` is a literal; anything else a formula. */
  private arg(nonFinite: boolean): Arg {
    const first = this.peek();
    const neg = isSym(first, '-') ? 1 : 0;
    const t = this.peek(neg);
    const after = this.peek(neg + 1);
    // Cst(Infinity) / Cst(NaN) are how non-finite constants print.
    const special = nonFinite && t.kind === 'id' && (t.text === 'Infinity' || t.text === 'NaN');
    if ((t.kind === 'num' || special) && (isSym(after, ',') || isSym(after, ')'))) {
      this.pos += neg + 1;
      const v = special ? Number(t.text) : t.value;
      return { col: first.col, lit: neg ? -v : v };
    }
    return { col: first.col, f: this.expr() };
  }

  private literals(name: Tok, args: readonly Arg[], n: number, what: string): number[] {
    if (args.length !== n) this.fail(`${name.text} takes ${what}, got ${args.length} argument(s)`, name.col);
    return args.map((a) => ('lit' in a ? a.lit : this.fail(`${name.text}: expected a numeric literal`, a.col)));
  }

  private build(name: Tok, args: readonly Arg[]): Formula {
    const n = name.text;
    const cat = VAR_CAT.get(n);
    if (n === 'Var' || cat !== undefined) {
      const v = n === 'Var'
        ? this.literals(name, args, 3, '3 numbers (index, dim, cat)')
        : [...this.literals(name, args, 2, `2 numbers (index, dim) inside a formula`), cat!];
      return this.inlineVar(name, v[0]!, v[1]!, v[2]!);
    }
    if (n === 'IntCst' || n === 'Cst') {
      const [v] = this.literals(name, args, 1, 'one numeric literal');
      if (n === 'IntCst' && !Number.isInteger(v)) this.fail(`IntCst(${v}): not an integer`, args[0]!.col);
      return mkConst(v!);
    }
    if (n === 'Grad') return this.grad(name, args);
    if (n === 'GradMatrix') return this.gradMatrix(name, args);
    const def = OPS.get(n);
    if (def === undefined) {
      // KeOps's Zero(d) is a zero vector; it exists only while SumT does (an op table entry wins).
      if (n === 'Zero' && OPS.has('SumT')) {
        return this.apply('SumT', [mkConst(0)], this.literals(name, args, 1, 'one dimension'), name.col);
      }
      return this.fail(`unknown function '${n}'`, name.col);
    }
    const ok = def.nParams >= 0 ? args.length === def.arity + def.nParams : args.length >= def.arity;
    if (!ok) this.fail(`${n} takes ${signature(def)}, got ${args.length} argument(s)`, name.col);
    const fs = args.slice(0, def.arity).map((a) => ('f' in a ? a.f : mkConst(a.lit)));
    const ps = args.slice(def.arity).map((a, k) =>
      'lit' in a ? a.lit : this.fail(`${n}: argument ${def.arity + k + 1} must be a numeric literal (a static parameter)`, a.col),
    );
    return this.apply(n, fs, ps, name.col);
  }

  /** KeOps `Grad(F, x, e)`: the gradient of <F, e> with respect to the variable x, expanded here. */
  private grad(name: Tok, args: readonly Arg[]): Formula {
    if (args.length !== 3) this.fail(`Grad takes 3 arguments (formula, variable, gradient input), got ${args.length}`, name.col);
    const [f, x, e] = args.map((a) => ('f' in a ? a.f : mkConst(a.lit))) as [Formula, Formula, Formula];
    if (x.kind !== 'var') this.fail('Grad: the second argument must be a variable (an alias or Var(...))', args[1]!.col);
    if (e.dim !== f.dim) {
      throw new DimensionError(`Grad at column ${name.col} of '${this.src}': the gradient input has dimension ${e.dim}, the formula ${f.dim}`);
    }
    return vjpFormula(f, x, e) ?? zeros(x.dim);
  }

  /** KeOps `GradMatrix(F, x)`: the transposed Jacobian, Grad(F, x, e_k) for each basis vector e_k, concatenated. */
  private gradMatrix(name: Tok, args: readonly Arg[]): Formula {
    if (args.length !== 2) this.fail(`GradMatrix takes 2 arguments (formula, variable), got ${args.length}`, name.col);
    const [f, x] = args.map((a) => ('f' in a ? a.f : mkConst(a.lit))) as [Formula, Formula];
    if (x.kind !== 'var') this.fail('GradMatrix: the second argument must be a variable (an alias or Var(...))', args[1]!.col);
    let out: Formula | undefined;
    for (let k = 0; k < f.dim; k++) {
      const e = f.dim === 1 ? mkConst(1) : op('ElemT', [mkConst(1)], [f.dim, k]);
      const part = vjpFormula(f, x, e) ?? zeros(x.dim);
      out = out === undefined ? part : op('Concat', [out, part]);
    }
    return out!;
  }

  private inlineVar(name: Tok, index: number, dim: number, cat: number): Formula {
    const bad = badVar(index, dim, cat);
    if (bad !== null) this.fail(`${name.text}: ${bad}`, name.col);
    // An inline Var must agree with an alias of the same index, or the call's arguments would be ambiguous.
    const clash = this.aliases.find((a) => a.index === index && (a.dim !== dim || a.cat !== cat));
    if (clash !== undefined) {
      this.fail(`Var(${index},${dim},${cat}) conflicts with alias '${clash.name}' = Var(${index},${clash.dim},${clash.cat})`, name.col);
    }
    return mkVar(index, dim, cat as Cat);
  }

  /** op() with its errors located: a DimensionError keeps its class, anything else becomes a ParseError. */
  private apply(name: string, args: readonly Formula[], params: readonly number[], col: number): Formula {
    try {
      return op(name, args, params);
    } catch (e) {
      if (!(e instanceof KernelflowError)) throw e;
      const msg = e.message.startsWith(`${name}: `) ? e.message.slice(name.length + 2) : e.message;
      if (e instanceof DimensionError) throw new DimensionError(`${name} at column ${col} of '${this.src}': ${msg}`);
      return this.fail(`${name}: ${msg}`, col);
    }
  }
}

/** Parses one alias; `position` is its implicit index (pykeops: the argument position). */
function parseAlias(s: string, position: number): { alias: Alias; nameCol: number; kindCol: number } {
  const toks = tokenize(s);
  let pos = 0;
  const next = (): Tok => toks[Math.min(pos++, toks.length - 1)]!;
  const fail = (msg: string, t: Tok): never => {
    throw new ParseError(`malformed alias '${s}': ${msg}`, s, t.col);
  };
  const name = next();
  if (name.kind !== 'id') fail(`expected a name, found ${show(name)}`, name);
  const eq = next();
  if (!isSym(eq, '=')) fail(`expected '=', found ${show(eq)}`, eq);
  const kind = next();
  const cat = VAR_CAT.get(kind.text);
  if (kind.kind !== 'id' || (cat === undefined && kind.text !== 'Var')) {
    fail(`expected Vi, Vj, Pm or Var, found ${show(kind)}`, kind);
  }
  const lp = next();
  if (!isSym(lp, '(')) fail(`expected '(' after ${kind.text}, found ${show(lp)}`, lp);
  const nums: number[] = [];
  for (;;) {
    const t = next();
    if (t.kind !== 'num') fail(`expected a non-negative integer, found ${show(t)}`, t);
    nums.push(t.value);
    const sep = next();
    if (isSym(sep, ')')) break;
    if (!isSym(sep, ',')) fail(`expected ',' or ')', found ${show(sep)}`, sep);
  }
  const end = next();
  if (end.kind !== 'eof') fail(`unexpected ${show(end)} after the declaration`, end);
  const want = cat === undefined ? [3] : [1, 2];
  if (!want.includes(nums.length)) {
    fail(`${kind.text} takes ${cat === undefined ? '(index, dim, cat)' : '(dim) or (index, dim)'}, got ${nums.length} number(s)`, kind);
  }
  const v = cat === undefined ? nums : nums.length === 1 ? [position, nums[0]!, cat] : [...nums, cat];
  const bad = badVar(v[0]!, v[1]!, v[2]!);
  if (bad !== null) fail(bad, kind);
  return { alias: { name: name.text, index: v[0]!, dim: v[1]!, cat: v[2] as Cat }, nameCol: name.col, kindCol: kind.col };
}

/**
 * Parses pykeops alias declarations. A declaration without an explicit index gets its position
 * in the list as index (the position of its argument in the call).
 * @example
 * ```ts
 * parseAliases(['x = Vi(3)', 'g = Pm(1)', 'y = Var(2,3,1)']);
 * // [{ name: 'x', index: 0, dim: 3, cat: 0 }, { name: 'g', index: 1, dim: 1, cat: 2 }, { name: 'y', index: 2, dim: 3, cat: 1 }]
 * ```
 */
export function parseAliases(aliases: readonly string[]): Alias[] {
  const out: Alias[] = [];
  aliases.forEach((s, position) => {
    const { alias: a, nameCol, kindCol } = parseAlias(s, position);
    if (out.some((b) => b.name === a.name)) throw new ParseError(`duplicate alias name '${a.name}' in '${s}'`, s, nameCol);
    const clash = out.find((b) => b.index === a.index && (b.dim !== a.dim || b.cat !== a.cat));
    if (clash !== undefined) {
      throw new ParseError(
        `alias '${s}' reuses index ${a.index} of '${clash.name}' = Var(${clash.index},${clash.dim},${clash.cat}) with another dim or category`,
        s,
        kindCol,
      );
    }
    out.push(a);
  });
  return out;
}

/**
 * Parses a KeOps formula string into the (interned) Formula IR. Throws a ParseError naming the
 * culprit and its 1-based column, or a DimensionError naming the op and its column.
 * @example
 * ```ts
 * const f = parseFormula('Exp(-g*SqDist(x,y))*b', parseAliases(['x = Vi(3)', 'y = Vj(3)', 'b = Vj(2)', 'g = Pm(1)']));
 * f.key; // '(Exp((-Var(3,1,2) * SqDist(Var(0,3,0),Var(1,3,1)))) * Var(2,2,1))'
 * ```
 */
export function parseFormula(formula: string, aliases: readonly Alias[]): Formula {
  return new Parser(formula, aliases).top();
}

/**
 * Prints a formula the way KeOps does; `parseFormula(formulaToString(f), [])` returns `f` itself.
 * @example
 * ```ts
 * formulaToString(parseFormula('-x*2', parseAliases(['x = Vi(1)']))); // '(-Var(0,1,0) * IntCst(2))'
 * ```
 */
export function formulaToString(f: Formula): string {
  return f.key;
}
