import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { mkVar } from '../../src/graph/formula.js';
import { printFormula } from '../../src/graph/print.js';
import { op } from '../../src/ops/build.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { evalGenerated } from '../helpers/generated.js';

test('Exp(x - y) generated equals the float64 reference', () => {
  const x = mkVar(0, 3, 0);
  const y = mkVar(1, 1, 1);
  const f = op('Exp', [op('Subtract', [x, y])]);
  const vals = (v: { index: number }) => (v.index === 0 ? [0.5, -1, 2] : [0.25]);
  const got = evalGenerated(f, vals);
  const want = evaluateReference(f, vals);
  assert.equal(got.length, 3);
  for (let k = 0; k < 3; k++) assert.ok(Math.abs(got[k]! - want[k]!) < 1e-7 * Math.abs(want[k]!));
  assert.is(printFormula(f), 'Exp((Var(0,3,0) - Var(1,1,1)))');
});

test.run();
