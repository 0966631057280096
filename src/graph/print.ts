/**
 * Printing formulas the way KeOps does (`Sum(Square((Var(0,3,0) - Var(1,3,1))))`), for people:
 * error messages, `describe()`, `printGraph`, `LazyTensor.toString`. A DAG prints as a tree, so
 * its text can be exponentially longer than the DAG (`x = x*x + x` forty times): `printFormula`
 * stops at a length bound and ends the text with `...` (elision, not let-bindings, so that
 * whatever is printed is plain KeOps syntax). `printFormulaExact` never elides and instead fails
 * with a LimitError past a larger bound; it is what must parse back (`toJSON`).
 */
import { LimitError } from '../errors.js';
import { postOrder, printNumber, type Formula } from './formula.js';

/** Default length of `printFormula`'s text before it elides with `...`. */
export const PRINT_LIMIT = 10_000;
/** Longest text `printFormulaExact` writes (16 Mi characters): longer formulas are a LimitError. */
export const EXACT_PRINT_LIMIT = 1 << 24;

/** Ops printed infix, as KeOps prints them: `(a + b)`. */
const INFIX: Readonly<Record<string, string>> = { Add: '+', Subtract: '-', Mult: '*', Divide: '/', Scalprod: '|' };

const infixOf = (f: Formula): string | undefined =>
  f.kind === 'op' && f.args.length === 2 && f.params.length === 0 ? INFIX[f.op] : undefined;

function leafText(f: Formula): string {
  if (f.kind === 'var') return `Var(${f.index},${f.dim},${f.cat})`;
  if (f.kind === 'const') return printNumber(f.value);
  throw new Error('internal: not a leaf');
}

/**
 * The KeOps text of a formula, at most `maxChars` characters followed by `...` when longer.
 * Iterative, and its work is bounded by `maxChars` whatever the size of the DAG.
 * @example
 * ```ts
 * printFormula(op('Exp', [mkVar(0, 1, Cat.i)])); // 'Exp(Var(0,1,0))'
 * ```
 */
export function printFormula(f: Formula, maxChars: number = PRINT_LIMIT): string {
  const out: string[] = [];
  let length = 0;
  // Work items, last first: a formula still to print or a piece of text.
  const work: (Formula | string)[] = [f];
  while (work.length > 0) {
    if (length > maxChars) return `${out.join('').slice(0, maxChars)}...`;
    const w = work.pop()!;
    if (typeof w === 'string') {
      out.push(w);
      length += w.length;
      continue;
    }
    if (w.kind !== 'op') {
      const t = leafText(w);
      out.push(t);
      length += t.length;
      continue;
    }
    const infix = infixOf(w);
    if (infix !== undefined) work.push(')', w.args[1]!, ` ${infix} `, w.args[0]!, '(');
    else if (w.op === 'Minus' && w.args.length === 1) work.push(w.args[0]!, '-');
    else {
      const parts: (Formula | string)[] = [`${w.op}(`];
      w.args.forEach((a, k) => parts.push(...(k > 0 ? [','] : []), a));
      for (const p of w.params) parts.push(parts.length > 1 ? `,${String(p)}` : String(p));
      parts.push(')');
      for (let k = parts.length - 1; k >= 0; k--) work.push(parts[k]!);
    }
  }
  return length > maxChars ? `${out.join('').slice(0, maxChars)}...` : out.join('');
}

/** Length of the full KeOps text of a formula (a float: it can be astronomically large for a DAG). */
export function printedLength(f: Formula): number {
  const len = new Map<Formula, number>();
  for (const g of postOrder([f])) {
    if (g.kind !== 'op') {
      len.set(g, leafText(g).length);
      continue;
    }
    let n = g.args.reduce((s, a) => s + len.get(a)!, 0);
    if (infixOf(g) !== undefined) n += 5; // `(`, ` + `, `)`
    else if (g.op === 'Minus' && g.args.length === 1) n += 1;
    else n += g.op.length + 2 + Math.max(0, g.args.length - 1) + g.params.reduce((s, p) => s + String(p).length + 1, 0) - (g.args.length === 0 && g.params.length > 0 ? 1 : 0);
    len.set(g, n);
  }
  return len.get(f)!;
}

/**
 * The full KeOps text of a formula, which `parseFormula(text, [])` turns back into the same
 * formula; a LimitError when that text would be longer than `EXACT_PRINT_LIMIT` characters.
 */
export function printFormulaExact(f: Formula, maxChars: number = EXACT_PRINT_LIMIT): string {
  const n = printedLength(f);
  if (n > maxChars) {
    throw new LimitError(
      'printLength',
      `this formula prints to ${n.toPrecision(3)} characters (its subexpressions are shared, printing repeats them), more than the limit of ${maxChars}: ${printFormula(f, 200)}`,
    );
  }
  return printFormula(f, Infinity);
}
