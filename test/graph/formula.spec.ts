/**
 * The formula IR at scale: hash-consed keys of constant size, iterative walks that take any
 * depth, a bounded printer, structure strings independent of interning ids, and interning that
 * lets unused formulas be garbage-collected.
 */
import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseFormula } from '../../src/api/parse.js';
import { Cat, mapVars, mkConst, mkVar, postOrder, transpose, variables, type Formula } from '../../src/graph/formula.js';
import { linearize } from '../../src/graph/lower.js';
import { printedLength, printFormula, printFormulaExact } from '../../src/graph/print.js';
import { structureOf } from '../../src/kernel/plan.js';
import { op } from '../../src/ops/build.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { vjpFormula } from '../../src/ops/vjp.js';
import { childEnv } from '../helpers/child.js';

const x = mkVar(0, 1, Cat.i);
const y = mkVar(1, 1, Cat.j);

/** x + 1 + 1 + ... (n additions), built left to right. */
function chain(n: number): Formula {
  let f: Formula = x;
  for (let k = 0; k < n; k++) f = op('Add', [f, mkConst(1)]);
  return f;
}

test('nodes are hash-consed: equal structure is one node, keys are op, params and argument ids', () => {
  const a = op('Pow', [op('Subtract', [x, y])], [3]);
  const b = op('Pow', [op('Subtract', [mkVar(0, 1, Cat.i), mkVar(1, 1, Cat.j)])], [3]);
  assert.is(a, b);
  const diff = op('Subtract', [x, y]);
  assert.is(diff.key, `Subtract(${x.id},${y.id})`);
  assert.is(a.key, `Pow(${diff.id};3)`);
  assert.is.not(op('Subtract', [y, x]), diff);
  assert.is(mkConst(-0), mkConst(0));
  assert.is(mkConst(NaN), mkConst(NaN));
  assert.is.not(op('Pow', [diff], [4]), a);
});

test('keys stay small however deep or shared the formula is', () => {
  let f: Formula = x;
  for (let k = 0; k < 40; k++) f = op('Add', [op('Mult', [f, f]), f]);
  assert.ok(f.key.length < 30, f.key);
  assert.is(postOrder([f]).length, 81);
  const deep = chain(100_000);
  assert.ok(deep.key.length < 30, deep.key);
});

test('walks are iterative: depth 100 000 is fine everywhere', () => {
  const deep = chain(100_000);
  assert.is(postOrder([deep]).length, 100_002);
  assert.equal(variables(deep), [x]);
  const t = transpose(deep);
  assert.equal(variables(t), [mkVar(0, 1, Cat.j)]);
  assert.is(transpose(t), deep, 'transposing twice gives the interned original');
  assert.is(mapVars(deep, (v) => v), deep);
  const lin = linearize([deep]);
  assert.is(lin.temps.length, 100_002);
  assert.is(lin.roots[0], 100_001);
  assert.equal(evaluateReference(deep, () => [0.5]), [100_000.5]);
  // d/dx of x + 1 + ... + 1 is the cotangent itself.
  assert.is(vjpFormula(deep, x, mkConst(3)), mkConst(3));
  const squares = op('Square', [deep]);
  assert.equal(evaluateReference(vjpFormula(squares, x, mkConst(1))!, () => [0]), [200_000]);
  assert.ok(printFormula(deep).endsWith('...'));
});

test('variables come in order of first appearance; linearize puts arguments first', () => {
  const z = mkVar(2, 1, Cat.param);
  const f = op('Add', [op('Mult', [y, z]), op('Exp', [op('Subtract', [x, y])])]);
  assert.equal(variables(f), [y, z, x]);
  const lin = linearize([f]);
  for (const t of lin.temps) for (const a of t.args) assert.ok(a < t.id);
  assert.is(lin.temps[lin.roots[0]!]!.node, f);
});

test('the printer is KeOps syntax, elides past its bound, and printedLength predicts its length', () => {
  const f = parseFormula('Exp(-Var(0,3,0) * IntCst(2)) + Pow(Extract(Var(1,4,1), 1, 3), 3) - Sum(Var(0,3,0) | Var(2,3,2))', []);
  const text = printFormula(f);
  assert.is(text, '((Exp((-Var(0,3,0) * IntCst(2))) + Pow(Extract(Var(1,4,1),1,3),3)) - Sum((Var(0,3,0) | Var(2,3,2))))');
  assert.is(printedLength(f), text.length);
  assert.is(printFormulaExact(f), text);
  assert.is(printFormula(f, 10), `${text.slice(0, 10)}...`);
  for (const s of ['Zero(3)', 'Cst(0.25) / Var(0,1,0)', 'Cst(NaN) + Cst(-Infinity)', 'OneHot(Var(0,1,0), 4)', 'Elem(Var(0,4,0), 2)']) {
    const g = parseFormula(s, []);
    assert.is(printedLength(g), printFormula(g, Infinity).length, s);
  }
});

test('structure strings number nodes locally: they depend on structure, not on interning ids or values', () => {
  const f = op('Exp', [op('Mult', [op('SqDist', [mkVar(0, 3, Cat.i), mkVar(1, 3, Cat.j)]), mkVar(2, 1, Cat.param)])]);
  assert.is(structureOf(f), '0:Var(0,3,0);1:Var(1,3,1);2:SqDist(0,1);3:Var(2,1,2);4:Mult(2,3);5:Exp(4)'.replace(/\d+:/g, ''));
  assert.is.not(structureOf(f), structureOf(op('Exp', [op('Mult', [mkVar(2, 1, Cat.param), op('SqDist', [mkVar(0, 3, Cat.i), mkVar(1, 3, Cat.j)])])])));
  assert.ok(structureOf(chain(1000)).length < 20_000);
});

test('interning lets unused formulas be collected; a rebuilt formula has new ids but the same structure', () => {
  const formula = fileURLToPath(new URL('../../src/graph/formula.ts', import.meta.url));
  const plan = fileURLToPath(new URL('../../src/kernel/plan.ts', import.meta.url));
  const script = `
    const { Cat, mkConst, mkVar, internedCount } = await import(${JSON.stringify(formula)});
    const { op } = await import(${JSON.stringify(fileURLToPath(new URL('../../src/ops/build.ts', import.meta.url)))});
    const { structureOf } = await import(${JSON.stringify(plan)});
    const build = () => { let f = mkVar(0, 1, Cat.i); for (let k = 0; k < 5000; k++) f = op('Add', [f, mkConst(k)]); return f; };
    const base = internedCount();
    let f = build();
    const grown = internedCount() - base;
    const id = f.id;
    const structure = structureOf(f);
    f = undefined;
    for (let k = 0; k < 10 && internedCount() - base > 100; k++) {
      globalThis.gc();
      await new Promise((r) => setTimeout(r, 20));
    }
    const left = internedCount() - base;
    const g = build();
    process.stdout.write(JSON.stringify({ grown, left, newId: g.id !== id, same: structureOf(g) === structure }));
  `;
  const r = spawnSync(process.execPath, ['--expose-gc', '--import', 'tsx', '--input-type=module', '-e', script], { encoding: 'utf8', timeout: 60_000, env: childEnv() });
  assert.is(r.status, 0, r.stderr);
  const out = JSON.parse(r.stdout) as { grown: number; left: number; newId: boolean; same: boolean };
  assert.ok(out.grown >= 10_000, `interned ${out.grown}`);
  assert.ok(out.left < 100, `${out.left} entries left after collection`);
  assert.ok(out.newId && out.same, JSON.stringify(out));
});

test.run();
