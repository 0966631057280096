import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DimensionError } from '../../src/errors.js';
import { linearize } from '../../src/graph/lower.js';
import { mkVar, type Cat, type Formula, type VarNode } from '../../src/graph/formula.js';
import { op } from '../../src/ops/build.js';
import { vectorOps } from '../../src/ops/vector.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { expandComposites } from '../../src/ops/composite.js';
import { renderTemps } from '../../src/kernel/render.js';
import { components } from '../../src/ops/loop.js';
import { evalGenerated } from '../helpers/generated.js';
import { rng, uniform } from '../helpers/random.js';
import { probe } from '../helpers/probe.js';

type Gen = (r: () => number, dim: number, argIndex: number, params: readonly number[]) => number[];

interface Setting {
  readonly dims: readonly number[];
  readonly params?: readonly number[];
  /** Custom input generator (default: uniform in [-1, 1)). */
  readonly gen?: Gen;
}

/** Scalars near integer indices in [-1, dim], away from the rounding boundaries. */
const indexGen: Gen = (r, dim, _a, params) =>
  Array.from({ length: dim }, () => Math.floor(r() * (params[0]! + 2)) - 1 + (r() - 0.5) * 0.8);

/** Random settings per op: at least two dimension settings each. */
const CASES: Readonly<Record<string, readonly Setting[]>> = {
  Scalprod: [{ dims: [3, 3] }, { dims: [5, 5] }, { dims: [1, 4] }, { dims: [4, 1] }],
  Sum: [{ dims: [1] }, { dims: [4] }, { dims: [7] }],
  Max: [{ dims: [1] }, { dims: [3] }, { dims: [6] }],
  Min: [{ dims: [1] }, { dims: [3] }, { dims: [6] }],
  ArgMax: [{ dims: [1] }, { dims: [3] }, { dims: [6] }],
  ArgMin: [{ dims: [1] }, { dims: [3] }, { dims: [6] }],
  SumT: [{ dims: [1], params: [1] }, { dims: [1], params: [4] }],
  SqNorm2: [{ dims: [1] }, { dims: [2] }, { dims: [5] }],
  Norm2: [{ dims: [1] }, { dims: [2] }, { dims: [5] }],
  Normalize: [{ dims: [1] }, { dims: [2] }, { dims: [5] }],
  SqDist: [{ dims: [2, 2] }, { dims: [6, 6] }, { dims: [3, 1] }, { dims: [1, 3] }],
  SqNormIso: [{ dims: [1, 3] }, { dims: [1, 5] }, { dims: [2, 3] }],
  SqNormDiag: [{ dims: [3, 3] }, { dims: [4, 4] }, { dims: [1, 3] }],
  SymSqNorm: [{ dims: [1, 1] }, { dims: [4, 2] }, { dims: [9, 3] }],
  WeightedSqNorm: [{ dims: [1, 3] }, { dims: [3, 3] }, { dims: [9, 3] }, { dims: [16, 4] }],
  WeightedSqDist: [{ dims: [1, 3, 3] }, { dims: [3, 3, 3] }, { dims: [9, 3, 3] }, { dims: [4, 2, 1] }, { dims: [2, 1, 2] }],
  Concat: [{ dims: [1, 1] }, { dims: [2, 3] }, { dims: [4, 1] }],
  Elem: [{ dims: [1], params: [0] }, { dims: [4], params: [0] }, { dims: [4], params: [3] }],
  ElemT: [{ dims: [1], params: [1, 0] }, { dims: [1], params: [3, 0] }, { dims: [1], params: [5, 4] }],
  Extract: [{ dims: [5], params: [1, 3] }, { dims: [4], params: [0, 4] }, { dims: [3], params: [2, 1] }],
  ExtractT: [{ dims: [2], params: [1, 5] }, { dims: [3], params: [0, 3] }, { dims: [1], params: [3, 4] }],
  OneHot: [
    { dims: [1], params: [1], gen: indexGen },
    { dims: [1], params: [4], gen: indexGen },
    { dims: [1], params: [7], gen: indexGen },
  ],
};

function vars(dims: readonly number[]): VarNode[] {
  return dims.map((d, i) => mkVar(i, d, (i % 3) as Cat));
}

function close(got: readonly number[], want: readonly number[], rel = 1e-6, abs = 1e-12): boolean {
  return got.length === want.length && got.every((g, k) => Math.abs(g - want[k]!) <= rel * Math.abs(want[k]!) + abs);
}

/** Reference and generated values of `name(args..., params...)` on the given argument values. */
function both(name: string, values: readonly (readonly number[])[], params: readonly number[] = []): [number[], number[]] {
  const f = op(name, vars(values.map((v) => v.length)), params);
  const val = (v: VarNode) => values[v.index]!;
  return [evaluateReference(f, val), evalGenerated(f, val)];
}

function expectValue(name: string, values: readonly (readonly number[])[], params: readonly number[], want: readonly number[]): void {
  const [ref, gen] = both(name, values, params);
  const label = `${name}(${values.map((v) => `[${v.join(',')}]`).join(', ')}${params.map((p) => `, ${p}`).join('')})`;
  assert.ok(close(ref, want, 1e-12, 1e-15), `${label}: reference ${JSON.stringify(ref)}, expected ${JSON.stringify(want)}`);
  assert.ok(close(gen, want, 1e-12, 1e-15), `${label}: generated ${JSON.stringify(gen)}, expected ${JSON.stringify(want)}`);
}

test('every vector op has a test case, and every case names a vector op', () => {
  const names = vectorOps.map((d) => d.name);
  assert.equal(new Set(names).size, names.length, 'duplicate op names');
  for (const n of names) {
    assert.ok(CASES[n] !== undefined, `no test case for ${n}`);
    assert.ok(CASES[n]!.length >= 2, `${n} needs at least two dimension settings`);
  }
  for (const n of Object.keys(CASES)) assert.ok(names.includes(n), `case for unknown op ${n}`);
  // vjps are checked against finite differences in test/grad/vjp.spec.ts.
  for (const d of vectorOps) assert.type(d.vjp, 'function', `${d.name} has a vjp`);
});

test('generated code equals the float64 reference on seeded random inputs', () => {
  const r = rng(20240611);
  for (const def of vectorOps) {
    for (const s of CASES[def.name]!) {
      const params = s.params ?? [];
      const f = op(def.name, vars(s.dims), params);
      assert.is(f.dim, def.dim(s.dims, params));
      for (let trial = 0; trial < 5; trial++) {
        const values = s.dims.map((d, a) => (s.gen ?? ((rr: () => number, dd: number) => uniform(rr, dd)))(r, d, a, params));
        const val = (v: VarNode) => values[v.index]!;
        const want = evaluateReference(f, val);
        const got = evalGenerated(f, val);
        assert.is(want.length, f.dim, `${f.key}: reference length`);
        assert.ok(want.every(Number.isFinite), `${f.key}: reference not finite`);
        assert.ok(close(got, want), `${f.key} at ${JSON.stringify(values)}: generated ${got}, reference ${want}`);
      }
    }
  }
});

test('closed forms: Scalprod, Sum, SumT, norms', () => {
  expectValue('Scalprod', [[1, 2, 3], [4, 5, 6]], [], [32]);
  expectValue('Scalprod', [[2], [1, 2, 3]], [], [12]);
  expectValue('Sum', [[1, 2, 3.5]], [], [6.5]);
  expectValue('Sum', [[-4]], [], [-4]);
  expectValue('SumT', [[2.5]], [3], [2.5, 2.5, 2.5]);
  expectValue('SqNorm2', [[3, 4]], [], [25]);
  expectValue('Norm2', [[3, 4]], [], [5]);
  expectValue('Norm2', [[0, 0, 0]], [], [0]);
  expectValue('Normalize', [[3, 4]], [], [0.6, 0.8]);
  expectValue('Normalize', [[-2]], [], [-1]);
  // KeOps: Normalize(x) = Rsqrt(SqNorm2(x)) * x with Rsqrt(0) = 0.
  expectValue('Normalize', [[0, 0, 0]], [], [0, 0, 0]);
});

test('closed forms: Max, Min, ArgMax, ArgMin (ties -> lowest index)', () => {
  expectValue('Max', [[1, 5, -2, 5]], [], [5]);
  expectValue('Min', [[1, 5, -2, 5]], [], [-2]);
  expectValue('Max', [[7]], [], [7]);
  expectValue('ArgMax', [[1, 5, -2, 5]], [], [1]);
  expectValue('ArgMin', [[3, -1, -1, 2]], [], [1]);
  expectValue('ArgMin', [[0, 0, 0]], [], [0]);
  expectValue('ArgMax', [[-3, -3, 4, 4, 4]], [], [2]);
  expectValue('ArgMin', [[2, 1, 0, -1]], [], [3]);
  expectValue('ArgMax', [[7]], [], [0]);
  expectValue('ArgMin', [[7]], [], [0]);
});

test('closed forms: distances and weighted norms', () => {
  expectValue('SqDist', [[1, 2], [3, 5]], [], [13]);
  expectValue('SqDist', [[1, 2, 3], [1]], [], [5]);
  expectValue('SqNormIso', [[2], [3, 4]], [], [50]);
  expectValue('SqNormDiag', [[1, 2, 3], [1, 1, 2]], [], [15]);
  // x^T A x with A = [[1, 2], [3, 4]] (row-major), x = [1, 2]: 1 + 2*2 + 3*2 + 4*4 = 27.
  expectValue('SymSqNorm', [[1, 2, 3, 4], [1, 2]], [], [27]);
  // WeightedSqNorm dispatches on dim(s): 1 -> iso, D -> diag, D*D -> sym.
  expectValue('WeightedSqNorm', [[2], [3, 4]], [], [50]);
  expectValue('WeightedSqNorm', [[1, 2], [3, 4]], [], [9 + 32]);
  expectValue('WeightedSqNorm', [[1, 2, 3, 4], [1, 2]], [], [27]);
  // d = x - y = [2, -1]; A = [[2, -1], [0.5, 3]]: 2*4 + (-1)*2*(-1) + 0.5*(-1)*2 + 3*1 = 12.
  expectValue('WeightedSqDist', [[2, -1, 0.5, 3], [3, 1], [1, 2]], [], [12]);
  expectValue('WeightedSqDist', [[0.5], [3, 1], [1, 2]], [], [2.5]);
  expectValue('WeightedSqDist', [[1, 10], [3, 1], [1, 2]], [], [4 + 10]);
});

test('closed forms: Concat, Elem, ElemT, Extract, ExtractT', () => {
  expectValue('Concat', [[1, 2], [3]], [], [1, 2, 3]);
  expectValue('Elem', [[4, 5, 6]], [2], [6]);
  expectValue('Elem', [[4, 5, 6]], [0], [4]);
  expectValue('ElemT', [[7]], [4, 1], [0, 7, 0, 0]);
  expectValue('ElemT', [[7]], [1, 0], [7]);
  expectValue('Extract', [[1, 2, 3, 4, 5]], [1, 3], [2, 3, 4]);
  expectValue('Extract', [[1, 2, 3]], [2, 1], [3]);
  expectValue('ExtractT', [[8, 9]], [1, 4], [0, 8, 9, 0]);
  expectValue('ExtractT', [[8, 9]], [0, 2], [8, 9]);
});

test('closed forms: OneHot rounds its scalar as KeOps does (trunc(x + 0.5))', () => {
  expectValue('OneHot', [[2]], [4], [0, 0, 1, 0]);
  expectValue('OneHot', [[1.6]], [4], [0, 0, 1, 0]);
  expectValue('OneHot', [[2.4]], [4], [0, 0, 1, 0]);
  expectValue('OneHot', [[0]], [3], [1, 0, 0]);
  expectValue('OneHot', [[-0.3]], [3], [1, 0, 0]);
  expectValue('OneHot', [[3]], [3], [0, 0, 0]);
  expectValue('OneHot', [[-2]], [3], [0, 0, 0]);
});

function throwsDim(name: string, dims: readonly number[], params: readonly number[] = []): void {
  try {
    op(name, vars(dims), params);
  } catch (e) {
    assert.ok(e instanceof DimensionError, `${name}(${dims}; ${params}): expected a DimensionError, got ${String(e)}`);
    assert.ok((e as Error).message.includes(name), `message '${(e as Error).message}' does not name ${name}`);
    return;
  }
  assert.unreachable(`${name} with dims ${dims} and params ${params} should throw`);
}

test('bad dimensions and static parameters throw DimensionError naming the op', () => {
  throwsDim('Scalprod', [2, 3]);
  throwsDim('SqDist', [2, 3]);
  throwsDim('SqNormDiag', [2, 3]);
  throwsDim('SumT', [2], [3]);
  throwsDim('SumT', [1], [0]);
  throwsDim('SumT', [1], [2.5]);
  throwsDim('Elem', [3], [3]);
  throwsDim('Elem', [3], [-1]);
  throwsDim('Elem', [3], [1.5]);
  throwsDim('ElemT', [1], [3, 3]);
  throwsDim('ElemT', [2], [3, 0]);
  throwsDim('ElemT', [1], [0, 0]);
  throwsDim('Extract', [4], [2, 3]);
  throwsDim('Extract', [4], [-1, 1]);
  throwsDim('Extract', [4], [0, 0]);
  throwsDim('ExtractT', [3], [2, 4]);
  throwsDim('ExtractT', [3], [-1, 4]);
  throwsDim('OneHot', [2], [3]);
  throwsDim('OneHot', [1], [0]);
  throwsDim('SymSqNorm', [5, 2]);
  throwsDim('SymSqNorm', [1, 2]);
  throwsDim('SymSqNorm', [2, 2]);
  throwsDim('WeightedSqNorm', [5, 3]);
  throwsDim('WeightedSqNorm', [2, 3]);
  throwsDim('WeightedSqDist', [3, 3, 2]);
  throwsDim('WeightedSqDist', [5, 3, 3]);
  throwsDim('Normalize', [1, 1]); // wrong arity: two arguments for a unary op
});


test('emitters print only through the dialect (no JS-only syntax)', () => {
  for (const def of vectorOps) {
    for (const s of CASES[def.name]!) {
      const f = op(def.name, vars(s.dims), s.params ?? []);
      const r = renderTemps(linearize([expandComposites(f)]), probe, (v, k) => `v${v.index}[${k}]`);
      const code = r.stmts.flat().join('\n') + '\n' + r.values.flatMap((v) => components(v)).join('\n');
      for (const bad of [/Math\./, /\?/, /===/, /!==/, /\blet\b/, /\bconst\b/, /\bfexp\b/, /\bInfinity\b/, /\+\+/]) {
        assert.not.ok(bad.test(code), `${f.key}: generated code matches ${bad}:\n${code}`);
      }
    }
  }
});

test('nested vector ops stay linear in code size and agree with the reference', () => {
  const x = mkVar(0, 3, 0);
  const y = mkVar(1, 3, 1);
  const a = mkVar(2, 9, 2);
  // Each level uses the previous one three times: a tree walk would grow like 3^depth.
  const nested = (depth: number): Formula => {
    let g: Formula = x;
    for (let i = 0; i < depth; i++) {
      const w = op('WeightedSqDist', [a, g, y]);
      g = op('Normalize', [op('Concat', [op('Extract', [g], [1, 2]), op('Add', [w, op('ArgMin', [g])])])]);
    }
    return op('Sum', [op('Concat', [g, op('OneHot', [op('ArgMax', [g])], [3])])]);
  };
  const size = (f: Formula) => renderTemps(linearize([expandComposites(f)]), probe, (v, k) => `v${v.index}[${k}]`).stmts.flat().join('\n').length;
  const s5 = size(nested(5));
  const s10 = size(nested(10));
  assert.ok(s10 < 2.5 * s5, `code size ${s5} at depth 5 but ${s10} at depth 10`);
  const f = nested(10);
  const r2 = rng(7);
  const values = [uniform(r2, 3), uniform(r2, 3), uniform(r2, 9, 0, 1)];
  const val = (v: VarNode) => values[v.index]!;
  const want = evaluateReference(f, val);
  const got = evalGenerated(f, val);
  assert.ok(close(got, want), `generated ${got}, reference ${want}`);
});

test('generated Max/Min skip a later NaN like KeOps; reference agrees', () => {
  const [ref, gen] = both('Max', [[1, Number.NaN, 3]]);
  assert.equal(ref, [3]);
  assert.equal(gen, [3]);
  const [ref2, gen2] = both('ArgMin', [[1, Number.NaN, -3]]);
  assert.equal(ref2, [2]);
  assert.equal(gen2, [2]);
});

test.run();
