import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { genred } from '../../src/api/genred.js';
import { parseAliases, parseFormula } from '../../src/api/parse.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { init, shutdown, type BackendName } from '../../src/scheduler/backends.js';
import { webgpuTestable } from '../helpers/adapter.js';

/*
 * IEEE semantics survive code generation (issue 12): WGSL lets a driver assume finite values, and
 * lavapipe simplified x - x, x + (-x), (x + y) - x, x*y - y*x, sqrt(x)*sqrt(x) and x != y by
 * algebra, giving 0, y, x or "ordered" comparisons where IEEE gives NaN for an infinite or NaN x.
 * Each formula below is computed on every backend for NaN, +-inf and finite x and compared with
 * the float64 reference evaluator (ops' `ref`, independent of code generation).
 */
const backends: BackendName[] = ['cpu'];
if (webgpuTestable(test, 'IEEE cases on WebGPU')) backends.push('webgpu');
test.after(async () => {
  await init({ backend: 'cpu' });
  await shutdown();
});

const ALIASES = ['x = Vi(1)', 'y = Vj(1)'];
const XS = [NaN, Infinity, -Infinity, 2, -0.5, 0];
const Y = 3;

/** Formulas that cancel, simplify or compare by algebra: the class the driver folded. */
const CASES = [
  'x - x', 'x + (-x)', '-x + x', 'Minus(x) + x', 'x - Minus(Minus(x))', '(x + y) - x', '(y + x) - x', '(x - y) - x',
  'x + y - x - y', 'x*y - y*x', 'x*y - x*y', '(x|x) - Square(x)', 'Concat(x,x) - Concat(x,x)', 'Elem(Concat(x,x),1) - x',
  'x*0', '0*x', '(x - x)*y', 'Square(Sqrt(x))', 'Sqrt(x)*Sqrt(x)', 'Rsqrt(x)*Rsqrt(x)', 'SqNorm2(Sqrt(x))',
  'x/x', 'x*x/x - x', 'Inv(Inv(x)) - x', 'Abs(x) - Abs(-x)',
  'Equal(x,x)', 'NotEqual(x,x)', 'NotEqual(x,y)', 'LessOrEqual(x,x)', 'LessThan(x,y)', 'IfElse(x - x, y, -y)', 'Step(x - x)',
];

/** Same value: both NaN, the same infinity, or finite within float32 rounding. */
function same(got: number, want: number): boolean {
  if (Number.isNaN(want)) return Number.isNaN(got);
  if (!Number.isFinite(want)) return got === want;
  return Math.abs(got - want) <= 1e-6 * Math.max(1, Math.abs(want));
}

for (const backend of backends) {
  test(`${backend}: formulas that cancel by algebra keep IEEE values for NaN and infinite inputs`, async () => {
    const aliases = parseAliases(ALIASES);
    const failures: string[] = [];
    for (const src of CASES) {
      const f = parseFormula(src, aliases);
      const op = genred(src, ALIASES, { reduction: 'Sum', axis: 1, backend });
      const out = (await op({ data: Float32Array.from(XS), shape: [XS.length, 1] }, { data: Float32Array.of(Y), shape: [1, 1] })).data;
      XS.forEach((x, i) => {
        const want = evaluateReference(f, (v) => [v.index === 0 ? x : Y]);
        const got = Array.from(out.subarray(i * want.length, (i + 1) * want.length));
        if (!got.every((g, k) => same(g, Math.fround(want[k]!)))) failures.push(`${src} at x = ${x}: got ${got}, IEEE ${want}`);
      });
    }
    assert.equal(failures, []);
  });
}

test.run();
