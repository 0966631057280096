/**
 * The KeOps formula-string front end: alias declarations (`'x = Vi(3)'`) and formulas
 * (`'Exp(-g*SqDist(x,y))*b'`) parsed into the interned Formula IR. Precedence follows Python,
 * which KeOps evaluates formulas with: `|` < `+ -` < `* /` < unary `-` < calls and atoms.
 */
import { DimensionError, excerpt, KernelflowError, LimitError, ParseError } from '../errors.js';
import { LIMITS, mkConst, mkVar, type Cat, type Formula } from '../graph/formula.js';
import { printFormulaExact } from '../graph/print.js';
import { op } from '../ops/build.js';
import type { OpDef } from '../ops/op.js';
import { OPS } from '../ops/table.js';
import { zeros } from '../ops/diff.js';
import { vjpFormula } from '../ops/vjp.js';
import { isSym, show, tokenize, type Tok } from './tokens.js';

/** One declared variable: `x = Vi(3)` is `{ name: 'x', index: <position>, dim: 3, cat: 0 }`. */
export interface Alias {
  readonly name: string;
  readonly index: number;
  readonly dim: number;
  readonly cat: Cat;
}

/** An argument of a call: a bare (optionally negated) numeric literal is kept apart, as it may be a static param. */
type Arg = { readonly col: number; readonly lit: number } | { readonly col: number; readonly f: Formula };

// A Map, not an object literal, so that names like `toString` are not found on the prototype.
const VAR_CAT: ReadonlyMap<string, Cat> = new Map([['Vi', 0], ['Vj', 1], ['Pm', 2]]);

/** Why (index, dim, cat) is not a valid variable, or null when it is. */
function badVar(index: number, dim: number, cat: number): string | null {
  if (!Number.isInteger(index) || index < 0) return `index ${index} must be a non-negative integer`;
  if (!Number.isInteger(dim) || dim < 1) return `dimension ${dim} must be an integer >= 1`;
  if (cat !== 0 && cat !== 1 && cat !== 2) return `category ${cat} must be 0 (Vi), 1 (Vj) or 2 (Pm)`;
  return null;
}

/** Which limit a well-formed (index, dim) exceeds, or null (checked before a Var exists: no huge arrays by index). */
function overLimit(index: number, dim: number): { limit: string; message: string } | null {
  if (index >= LIMITS.varIndex) return { limit: 'varIndex', message: `index ${index} exceeds the limit of ${LIMITS.varIndex - 1}` };
  if (dim > LIMITS.dim) return { limit: 'dim', message: `dimension ${dim} exceeds the limit of ${LIMITS.dim}` };
  return null;
}

function signature(def: OpDef): string {
  const params = def.nParams > 0 ? ` and ${def.nParams} numeric parameter(s)` : def.nParams < 0 ? ' then numeric parameters' : '';
  return `${def.arity} formula argument(s)${params}`;
}

/** An operator waiting for its right operand: a binary op, or a prefix minus. */
interface Pending {
  readonly name: string;
  readonly prec: number;
  readonly col: number;
  readonly unary: boolean;
}

/**
 * One open level of the formula: the whole of it, a parenthesised group, or the argument list of
 * a call. Levels, operators and operands live on explicit stacks (operator precedence parsing),
 * so neither nesting depth nor the length of a chain is limited by the JavaScript stack.
 */
interface Level {
  readonly kind: 'top' | 'paren' | 'call';
  /** The '(' that opened it (the first token for the top level). */
  readonly open: Tok;
  /** The call's name token (`call` only). */
  readonly name: Tok | undefined;
  readonly ops: Pending[];
  readonly vals: Formula[];
  readonly args: Arg[];
  /** At the start of a call argument: a bare literal may come (a static param). */
  argStart: boolean;
  argCol: number;
  literal: Arg | undefined;
}

const BINARY: ReadonlyMap<string, { readonly name: string; readonly prec: number }> = new Map([
  ['|', { name: 'Scalprod', prec: 1 }],
  ['+', { name: 'Add', prec: 2 }],
  ['-', { name: 'Subtract', prec: 2 }],
  ['*', { name: 'Mult', prec: 3 }],
  ['/', { name: 'Divide', prec: 3 }],
]);
/** Prefix minus binds tighter than `*` and looser than calls (Python). */
const UNARY_PREC = 4;

const level = (kind: Level['kind'], open: Tok, name?: Tok): Level => ({
  kind, open, name, ops: [], vals: [], args: [], argStart: kind === 'call', argCol: open.col, literal: undefined,
});

class Parser {
  private pos = 0;
  private readonly toks: Tok[];
  private readonly byName = new Map<string, Alias>();

  constructor(
    private readonly src: string,
    private readonly aliases: readonly Alias[],
    /** Inline variables met so far (shared by the formulas of one call), by index. */
    private readonly inline: Map<number, Alias> = new Map(),
  ) {
    this.toks = tokenize(src);
    for (const a of aliases) if (!this.byName.has(a.name)) this.byName.set(a.name, a);
  }

  fail(msg: string, col: number): never {
    throw new ParseError(msg, this.src, col);
  }

  /** `'<formula>'` for a message, an excerpt around the column when the formula is long. */
  private where(col: number): string {
    return `column ${col} of '${excerpt(this.src, col).text}'`;
  }

  private peek(k = 0): Tok {
    return this.toks[Math.min(this.pos + k, this.toks.length - 1)]!;
  }

  private next(): Tok {
    const t = this.peek();
    if (t.kind !== 'eof') this.pos++;
    return t;
  }

  top(): Formula {
    if (this.peek().kind === 'eof') this.fail('empty formula', 1);
    const levels: Level[] = [level('top', this.peek())];
    let wantOperand = true;
    for (;;) {
      const lv = levels[levels.length - 1]!;
      if (wantOperand) {
        wantOperand = this.operand(levels, lv);
        continue;
      }
      const t = this.peek();
      const bin = t.kind === 'sym' ? BINARY.get(t.text) : undefined;
      if (bin !== undefined) {
        this.next();
        this.reduce(lv, bin.prec);
        lv.ops.push({ name: bin.name, prec: bin.prec, col: t.col, unary: false });
        wantOperand = true;
      } else if (lv.kind === 'top') {
        if (t.kind === 'eof') return this.finish(lv);
        if (isSym(t, ')')) this.fail("unbalanced parentheses: ')' has no matching '('", t.col);
        this.fail(`unexpected ${show(t)} after a complete expression`, t.col);
      } else if (t.kind === 'eof') {
        this.fail("unbalanced parentheses: '(' is never closed", lv.open.col);
      } else if (lv.kind === 'paren') {
        if (!isSym(t, ')')) this.fail(`expected ')' but found ${show(t)}`, t.col);
        this.next();
        levels.pop();
        levels[levels.length - 1]!.vals.push(this.finish(lv));
      } else {
        if (!isSym(t, ',') && !isSym(t, ')')) this.fail(`expected ',' or ')' in ${lv.name!.text}(...), found ${show(t)}`, t.col);
        this.next();
        lv.args.push(lv.literal ?? { col: lv.argCol, f: this.finish(lv) });
        lv.literal = undefined;
        if (isSym(t, ',')) {
          lv.argStart = true;
          wantOperand = true;
        } else {
          levels.pop();
          levels[levels.length - 1]!.vals.push(this.build(lv.name!, lv.args));
        }
      }
    }
  }

  /** Reads what may start an operand; returns whether an operand is still expected (after a prefix or an opening). */
  private operand(levels: Level[], lv: Level): boolean {
    if (lv.argStart) {
      lv.argStart = false;
      lv.argCol = this.peek().col;
      lv.literal = this.literalArg(lv.name!.text === 'Cst');
      if (lv.literal !== undefined) return false;
    }
    const t = this.next();
    if (isSym(t, '-')) {
      // Only a bare literal folds, so that printed `-IntCst(2)` still parses back to Minus(IntCst(2)).
      if (this.peek().kind === 'num') {
        lv.vals.push(mkConst(-this.next().value));
        return false;
      }
      lv.ops.push({ name: 'Minus', prec: UNARY_PREC, col: t.col, unary: true });
      return true;
    }
    if (t.kind === 'num') {
      lv.vals.push(mkConst(t.value));
      return false;
    }
    if (t.kind === 'id') {
      if (isSym(this.peek(), '(')) {
        const open = this.next();
        if (!isSym(this.peek(), ')')) {
          levels.push(level('call', open, t));
          return true;
        }
        this.next();
        lv.vals.push(this.build(t, []));
        return false;
      }
      const a = this.byName.get(t.text);
      if (a === undefined) this.fail(`alias '${t.text}' is used but not declared`, t.col);
      lv.vals.push(mkVar(a.index, a.dim, a.cat));
      return false;
    }
    if (isSym(t, '(')) {
      levels.push(level('paren', t));
      return true;
    }
    if (isSym(t, ')') && levels.length === 1) this.fail("unbalanced parentheses: ')' has no matching '('", t.col);
    const unclosed = t.kind === 'eof' && levels.length > 1 ? ` ('(' at column ${lv.open.col} is never closed)` : '';
    return this.fail(`expected an operand, found ${show(t)}${unclosed}`, t.col);
  }

  /** A bare signed literal followed by `,` or `)` (a call argument that may be a static param), or undefined. */
  private literalArg(nonFinite: boolean): Arg | undefined {
    const first = this.peek();
    const neg = isSym(first, '-') ? 1 : 0;
    const t = this.peek(neg);
    const after = this.peek(neg + 1);
    // Cst(Infinity) / Cst(NaN) are how non-finite constants print.
    const special = nonFinite && t.kind === 'id' && (t.text === 'Infinity' || t.text === 'NaN');
    if (!((t.kind === 'num' || special) && (isSym(after, ',') || isSym(after, ')')))) return undefined;
    this.pos += neg + 1;
    const v = special ? Number(t.text) : t.value;
    return { col: first.col, lit: neg ? -v : v };
  }

  /** Applies the pending operators of a level that bind at least as tightly as `prec` (all are left-associative). */
  private reduce(lv: Level, prec: number): void {
    for (let top = lv.ops[lv.ops.length - 1]; top !== undefined && top.prec >= prec; top = lv.ops[lv.ops.length - 1]) {
      lv.ops.pop();
      const b = lv.vals.pop()!;
      lv.vals.push(top.unary ? this.apply('Minus', [b], [], top.col) : this.apply(top.name, [lv.vals.pop()!, b], [], top.col));
    }
  }

  /** The complete expression of a level. */
  private finish(lv: Level): Formula {
    this.reduce(lv, 0);
    return lv.vals.pop()!;
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
      throw new DimensionError(`Grad at ${this.where(name.col)}: the gradient input has dimension ${e.dim}, the formula ${f.dim}`);
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
    const over = overLimit(index, dim);
    if (over !== null) throw new LimitError(over.limit, `${name.text} at ${this.where(name.col)}: ${over.message}`);
    // An inline Var must agree with an alias (or an inline Var) of the same index, or the call's arguments would be ambiguous.
    const clash = this.aliases.find((a) => a.index === index && (a.dim !== dim || a.cat !== cat)) ?? this.inline.get(index);
    if (clash !== undefined && (clash.dim !== dim || clash.cat !== cat)) {
      const what = clash.name.startsWith('Var(') ? 'the inline' : `alias '${clash.name}' =`;
      this.fail(`Var(${index},${dim},${cat}) conflicts with ${what} Var(${index},${clash.dim},${clash.cat})`, name.col);
    }
    // Recorded as written, before any simplification: the argument counts even if Grad drops it.
    if (!this.aliases.some((a) => a.index === index) && !this.inline.has(index)) {
      this.inline.set(index, { name: `Var(${index},${dim},${cat})`, index, dim, cat: cat as Cat });
    }
    return mkVar(index, dim, cat as Cat);
  }

  /** op() with its errors located: a DimensionError or LimitError keeps its class, anything else becomes a ParseError. */
  private apply(name: string, args: readonly Formula[], params: readonly number[], col: number): Formula {
    try {
      return op(name, args, params);
    } catch (e) {
      if (!(e instanceof KernelflowError)) throw e;
      const msg = e.message.startsWith(`${name}: `) ? e.message.slice(name.length + 2) : e.message;
      if (e instanceof DimensionError) throw new DimensionError(`${name} at ${this.where(col)}: ${msg}`);
      if (e instanceof LimitError) throw new LimitError(e.limit, `${name} at ${this.where(col)}: ${msg}`);
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
  const over = overLimit(v[0]!, v[1]!);
  if (over !== null) throw new LimitError(over.limit, `alias '${s}': ${over.message}`);
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
 * formulaToString(f); // '(Exp((-Var(3,1,2) * SqDist(Var(0,3,0),Var(1,3,1)))) * Var(2,2,1))'
 * ```
 */
export function parseFormula(formula: string, aliases: readonly Alias[]): Formula {
  return new Parser(formula, aliases).top();
}

/**
 * The formulas of one reduction (the formula and, when given, its weight `formula2`) with their
 * arguments, counted as pykeops counts them: every alias and every inline `Var(k, d, c)` (or
 * `Vi(k, d)`, ...) written in a formula, whether or not it survives simplification (`Grad` of a
 * formula that does not depend on a variable drops it). `args[k]` is argument k; an index
 * that nothing declares is a hole (`undefined`): its argument is passed and ignored.
 * @example
 * ```ts
 * const { args } = parseWithArguments(['x*Var(1,1,1)'], parseAliases(['x = Vi(1)']));
 * args.map((a) => a?.name); // ['x', 'Var(1,1,1)']
 * ```
 */
export function parseWithArguments(
  formulas: readonly (string | undefined)[],
  aliases: readonly Alias[],
): { formulas: (Formula | null)[]; args: (Alias | undefined)[] } {
  const inline = new Map<number, Alias>();
  const out = formulas.map((s) => (s === undefined ? null : new Parser(s, aliases, inline).top()));
  const all = [...aliases.filter((a, k) => aliases.findIndex((b) => b.index === a.index) === k), ...inline.values()];
  const args: (Alias | undefined)[] = new Array<Alias | undefined>(all.reduce((n, a) => Math.max(n, a.index + 1), 0)).fill(undefined);
  for (const a of all) args[a.index] = a;
  return { formulas: out, args };
}

/**
 * Prints a formula the way KeOps does, in full: `parseFormula(formulaToString(f), [])` returns `f`
 * itself. A DAG prints as a tree, so sharing can make the text exponentially long: past 16 Mi
 * characters this is a LimitError (`printFormula` in graph/print.ts elides instead, for messages).
 * @example
 * ```ts
 * formulaToString(parseFormula('-x*2', parseAliases(['x = Vi(1)']))); // '(-Var(0,1,0) * IntCst(2))'
 * ```
 */
export function formulaToString(f: Formula): string {
  return printFormulaExact(f);
}
