import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { formulaToString, parseAliases, parseFormula } from '../../src/api/parse.js';
import { DimensionError, KernelflowError, LimitError, ParseError } from '../../src/errors.js';
import { mkConst, mkVar } from '../../src/graph/formula.js';
import { printedLength, printFormula } from '../../src/graph/print.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { op } from '../../src/ops/build.js';
import { OPS } from '../../src/ops/table.js';

const ALIASES = parseAliases(['x = Vi(3)', 'y = Vj(3)', 'b = Vj(2)', 'g = Pm(1)', 'a = Vi(1)', 'c = Vj(1)']);
const key = (s: string): string => formulaToString(parseFormula(s, ALIASES));
const X = 'Var(0,3,0)';
const Y = 'Var(1,3,1)';
const A = 'Var(4,1,0)';
const B = 'Var(2,2,1)';
const C = 'Var(5,1,1)';

/** Runs `fn`, expects `cls`, checks the message names every part and (for ParseError) the column. */
function throwsWith(fn: () => unknown, cls: new (...a: never[]) => Error, column: number | null, ...parts: string[]): void {
  let caught: unknown;
  try {
    fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${String(caught)}`);
  assert.ok(caught instanceof KernelflowError, 'is a KernelflowError');
  const msg = (caught as Error).message;
  for (const p of parts) assert.ok(msg.includes(p), `message "${msg}" names "${p}"`);
  if (column !== null) {
    assert.ok(msg.includes(`column ${column}`), `message "${msg}" gives column ${column}`);
    if (caught instanceof ParseError) assert.is(caught.column, column);
  }
}

test('the API.md example parses to the KeOps-printed key', () => {
  // -g binds tighter than *, Exp(...) is a call, and the outer * multiplies by b.
  assert.is(key('Exp(-g*SqDist(x,y))*b'), `(Exp((-Var(3,1,2) * SqDist(${X},${Y}))) * ${B})`);
  assert.is(key(' Exp( - g * SqDist( x , y ) ) * b '), key('Exp(-g*SqDist(x,y))*b'));
  const f = parseFormula('Exp(-g*SqDist(x,y))*b', ALIASES);
  assert.is(f.dim, 2);
});

test('aliases: Vi/Vj/Pm/Var forms, implicit index = position', () => {
  assert.equal(parseAliases(['x = Vi(3)', 'y = Vj(5,2)', 'g = Pm(1)', 'z = Var(7,4,1)', ' w=Vi( 0 , 3 ) ']), [
    { name: 'x', index: 0, dim: 3, cat: 0 },
    { name: 'y', index: 5, dim: 2, cat: 1 },
    { name: 'g', index: 2, dim: 1, cat: 2 },
    { name: 'z', index: 7, dim: 4, cat: 1 },
    { name: 'w', index: 0, dim: 3, cat: 0 },
  ]);
  assert.equal(parseAliases([]), []);
});

test('precedence and associativity', () => {
  assert.is(key('a-b-c'), `((${A} - ${B}) - ${C})`);
  assert.is(key('a-(b-c)'), `(${A} - (${B} - ${C}))`);
  assert.is(key('a*b+c'), `((${A} * ${B}) + ${C})`);
  assert.is(key('a+b*c'), `(${A} + (${B} * ${C}))`);
  assert.is(key('a/c/a'), `((${A} / ${C}) / ${A})`);
  assert.is(key('-a*b'), `(-${A} * ${B})`);
  assert.is(key('-(a*b)'), `-(${A} * ${B})`);
  assert.is(key('a--c'), `(${A} - -${C})`);
  // | is the loosest: (x | (y + x)), as in Python where KeOps evaluates it.
  assert.is(key('x|y+x'), `(${X} | (${Y} + ${X}))`);
  assert.is(key('(x|y)*a'), `((${X} | ${Y}) * ${A})`);
});

test('numbers, constants and inline variables', () => {
  assert.is(key('-2*a'), `(IntCst(-2) * ${A})`);
  assert.is(key('-(2)'), '-IntCst(2)');
  assert.is(key('0.5*SqDist(x,y)'), `(Cst(0.5) * SqDist(${X},${Y}))`);
  assert.is(key('1e-3*a + .5 + 2.'), `(((Cst(0.001) * ${A}) + Cst(0.5)) + IntCst(2))`);
  assert.is(key('IntCst(3)*Cst(0.25)'), '(IntCst(3) * Cst(0.25))');
  assert.is(parseFormula('Var(0,3,0)', ALIASES), mkVar(0, 3, 0));
  assert.is(parseFormula('Vj(1,3)', ALIASES), mkVar(1, 3, 1));
  assert.is(parseFormula('Pm(9,2)', ALIASES), mkVar(9, 2, 2));
  assert.is(parseFormula('Cst(2)', []), mkConst(2));
});

test('static params: trailing numeric literals', () => {
  assert.is(parseFormula('Pow(x,2)', ALIASES), op('Pow', [mkVar(0, 3, 0)], [2]));
  assert.is(key('Pow(x, -1)'), `Pow(${X},-1)`);
  assert.is(key('Elem(x,1)'), `Elem(${X},1)`);
  assert.is(key('Extract(x,0,2)'), `Extract(${X},0,2)`);
  // A literal in a formula-argument position is a constant.
  assert.is(key('Pow(2,3)'), 'Pow(IntCst(2),3)');
  if (OPS.get('Kron')?.nParams === -1) assert.is(key('Kron(x,y,1,3,1,3)'), `Kron(${X},${Y},1,3,1,3)`);
  if (OPS.has('SumT') && !OPS.has('Zero')) assert.is(parseFormula('Zero(3)', []).dim, 3);
});

test('round trip: parse(print(f)) is the same interned node', () => {
  const sources = [
    'Exp(-g*SqDist(x,y))*b',
    'a-b-c',
    '-a*b',
    '-(a*b) + --c',
    '(x|y) / Square(a - 0.5)',
    'Pow(x,2) * IntCst(-2) - -IntCst(2)',
    'Extract(x,0,2) + Cst(1e-7) + Cst(123456789012)',
    'Var(7,3,1) - Pm(9,1)',
  ];
  for (const s of sources) {
    const f = parseFormula(s, ALIASES);
    assert.is(parseFormula(formulaToString(f), []), f, s);
  }
  assert.is(parseFormula(formulaToString(mkConst(Infinity)), []), mkConst(Infinity));
});

test('formula errors name the culprit and its column', () => {
  throwsWith(() => key('Exp(x) + Foo(x)'), ParseError, 10, "unknown function 'Foo'");
  throwsWith(() => key('Exp((x)'), ParseError, 4, 'unbalanced', "'('");
  throwsWith(() => key('Exp(x)) + a'), ParseError, 7, 'unbalanced', "')'");
  throwsWith(() => key('x + z'), ParseError, 5, "'z'", 'not declared');
  throwsWith(() => key('x y'), ParseError, 3, "'y'");
  throwsWith(() => key('a * / c'), ParseError, 5, "'/'");
  throwsWith(() => key('Exp(x) + Pow(x)'), ParseError, 10, 'Pow takes 1 formula argument(s) and 1 numeric parameter(s)', 'got 1');
  throwsWith(() => key('Exp(x, a)'), ParseError, 1, 'Exp takes 1 formula argument(s)', 'got 2');
  throwsWith(() => key('Pow(x, a)'), ParseError, 8, 'Pow', 'numeric literal');
  throwsWith(() => key('Vi(3)'), ParseError, 1, 'Vi', 'index');
  throwsWith(() => key('a + Var(0,2,0)'), ParseError, 5, "alias 'x'");
  throwsWith(() => key('IntCst(1.5)'), ParseError, 8, 'IntCst');
  throwsWith(() => key('x ^ 2'), ParseError, 3, "'^'", 'Pow');
  throwsWith(() => key('2 * 1e'), ParseError, 5, "malformed number '1e'");
  throwsWith(() => key(''), ParseError, 1, 'empty');
  throwsWith(() => key('((((((x'), ParseError, 6, 'unbalanced');
  throwsWith(() => key('(((((('), ParseError, 7, "'(' at column 6");
  throwsWith(() => key('toString(1,2)'), ParseError, 1, "unknown function 'toString'");
});

test('dimension mismatches keep their class and gain the op name and column', () => {
  throwsWith(() => key('x + b'), DimensionError, 3, 'Add', 'x + b');
  throwsWith(() => key('a * SqDist(x, b)'), DimensionError, 5, 'SqDist');
  throwsWith(() => key('(x | b)'), DimensionError, 4, 'Scalprod');
  throwsWith(() => key('Elem(x, 3)'), DimensionError, 1, 'Elem');
});

test('alias errors name the alias string and the column', () => {
  throwsWith(() => parseAliases(['x = Vq(1)']), ParseError, 5, 'x = Vq(1)', "'Vq'");
  throwsWith(() => parseAliases(['x Vi(1)']), ParseError, 3, 'x Vi(1)');
  throwsWith(() => parseAliases(['x = constructor(1)']), ParseError, 5, "'constructor'");
  throwsWith(() => parseAliases(['x = Vi(1']), ParseError, 9, 'x = Vi(1');
  throwsWith(() => parseAliases(['x = Var(0,1)']), ParseError, 5, 'Var');
  throwsWith(() => parseAliases(['x = Vi(3)', 'y = Vi(1)', ' x = Vj(2)']), ParseError, 2, "duplicate alias name 'x'", ' x = Vj(2)');
  throwsWith(() => parseAliases(['x = Vi(0,3)', 'y = Vj(0,3)']), ParseError, 5, 'y = Vj(0,3)', 'index 0', "'x'");
  throwsWith(() => parseAliases(['x = Vi(0)']), ParseError, 5, 'x = Vi(0)', 'dimension 0');
  throwsWith(() => parseAliases(['x = Var(0,1,3)']), ParseError, 5, 'category 3');
  // The same variable under two names is allowed.
  assert.is(parseAliases(['x = Vi(0,2)', 'y = Vi(0,2)']).length, 2);
});

test('bad input never hangs or overflows the stack', () => {
  const bad = ['', '   ', '((((((', ')', 'Exp(', 'x +', '1e', 'Pow(x)', 'Exp(x,)', '-', '|', ',', '='];
  bad.push('('.repeat(100000) + 'x', 'Exp('.repeat(50000) + 'x', 'x' + ')'.repeat(100000));
  for (const s of bad) throwsWith(() => key(s), ParseError, null);
  // A long formula's message shows an excerpt around the culprit, not the whole text.
  const long = 'x + '.repeat(50000) + 'z';
  throwsWith(() => key(long), ParseError, long.length, "'z'", 'not declared');
  let caught: unknown;
  try {
    key(long);
  } catch (e) {
    caught = e;
  }
  assert.ok((caught as Error).message.length < 500, 'the message is short');
});

test('nesting depth and chain length are not limited by the JavaScript stack', () => {
  // Operators, operands and open parentheses live on explicit stacks.
  assert.is(key('('.repeat(100000) + 'a' + ')'.repeat(100000)), A);
  const minus = parseFormula('-'.repeat(100001) + 'a', ALIASES);
  assert.is(printFormula(minus, 20), '-'.repeat(20) + '...');
  const sum = parseFormula(Array.from({ length: 100000 }, () => 'a').join('+'), ALIASES);
  assert.is(sum.dim, 1);
  assert.equal(evaluateReference(sum, () => [1.5]), [150000]);
  // Left-associative: (((a + a) + a) + ...), printed back in full and parsed to the same node.
  const text = formulaToString(sum);
  assert.ok(text.startsWith('(((((') && text.endsWith(' + Var(4,1,0))'));
  assert.is(parseFormula(text, []), sum);
  const calls = parseFormula('Abs('.repeat(20000) + 'a' + ')'.repeat(20000), ALIASES);
  assert.equal(evaluateReference(calls, () => [-1.5]), [1.5]);
});

test('dimensions, variable indices and static parameters have limits, each a LimitError naming it', () => {
  const limit = (fn: () => unknown, which: string, ...parts: string[]): void => {
    let caught: unknown;
    try {
      fn();
    } catch (e) {
      caught = e;
    }
    assert.ok(caught instanceof LimitError, `expected a LimitError, got ${String(caught)}`);
    assert.is((caught as LimitError).limit, which);
    assert.is((caught as LimitError).code, 'LIMIT');
    for (const p of parts) assert.ok((caught as Error).message.includes(p), `"${(caught as Error).message}" names "${p}"`);
  };
  limit(() => key('Sum(Zero(100000000))'), 'dim', 'SumT', '65536', 'column 5');
  limit(() => key('Var(1e300,1,0) + a'), 'varIndex', 'Var', 'exceeds the limit of 65535');
  limit(() => key('Var(4294967295,1,0)'), 'varIndex', '4294967295');
  limit(() => key('Vj(3,100000)'), 'dim', '100000');
  limit(() => parseAliases(['x = Vi(70000)']), 'dim', "'x = Vi(70000)'");
  limit(() => parseAliases(['x = Var(65536,1,0)']), 'varIndex', '65536');
  limit(() => key('Pow(a, 3000000000)'), 'param', 'Pow', '3000000000');
  limit(() => key('OneHot(a, 70000)'), 'dim', 'OneHot');
  // At the limits themselves everything is fine.
  assert.is(parseFormula('Var(65535,1,0)', []).kind, 'var');
  assert.is(parseFormula('Zero(65536)', []).dim, 65536);
});

test('printing a DAG with heavy sharing is bounded', () => {
  // x = x*x + x forty times: 121 nodes, a printed tree of about 10^20 characters.
  let f = parseFormula('a', ALIASES);
  for (let k = 0; k < 40; k++) f = op('Add', [op('Mult', [f, f]), f]);
  const shown = printFormula(f);
  assert.is(shown.length, 10_003);
  assert.ok(shown.endsWith('...') && shown.startsWith('(((((('));
  assert.ok(printedLength(f) > 1e19);
  let caught: unknown;
  try {
    formulaToString(f);
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof LimitError && caught.limit === 'printLength', String(caught));
  // Structural keys stay small: op, argument ids, params.
  assert.ok(f.key.length < 40, f.key);
  assert.equal(evaluateReference(f, () => [0.5]).length, 1);
});

test.run();
