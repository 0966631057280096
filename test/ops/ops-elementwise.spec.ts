import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { DimensionError, KernelflowError } from '../../src/errors.js';
import { mkVar, type Formula, type VarNode } from '../../src/graph/formula.js';
import { linearize } from '../../src/graph/lower.js';
import { op } from '../../src/ops/build.js';
import { elementwiseOps } from '../../src/ops/elementwise.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { renderTemps } from '../../src/kernel/render.js';
import { evalGenerated } from '../helpers/generated.js';
import { rng, uniform } from '../helpers/random.js';
import { probe } from '../helpers/probe.js';

type Range = readonly [number, number];

interface Case {
  /** Sampling range of each formula argument. */
  readonly ranges: readonly Range[];
  /** Static parameter sets to try (default: one empty set). */
  readonly params?: readonly (readonly number[])[];
  /** Snap about half the samples to integers (exercises ties, zeros and equalities). */
  readonly snap?: boolean;
  /** Hand-computed values: scalar arguments, parameters, expected output. */
  readonly known: readonly (readonly [readonly number[], readonly number[], number])[];
}

const PI = Math.PI;
const S: Range = [-2, 2];
const POS: Range = [0.25, 3];

const CASES: Readonly<Record<string, Case>> = {
  Add: { ranges: [S, S], known: [[[2, 3], [], 5]] },
  Subtract: { ranges: [S, S], known: [[[2, 3], [], -1]] },
  Mult: { ranges: [S, S], known: [[[2, -3], [], -6]] },
  Divide: { ranges: [S, POS], known: [[[3, 2], [], 1.5]] },
  Minus: { ranges: [S], known: [[[2], [], -2]] },
  Exp: { ranges: [S], known: [[[0], [], 1], [[1], [], 2.718281828459045]] },
  Square: { ranges: [S], known: [[[-3], [], 9]] },
  Log: { ranges: [POS], known: [[[1], [], 0], [[Math.E], [], 1], [[0.5], [], -0.6931471805599453]] },
  Sin: { ranges: [[-4, 4]], known: [[[0], [], 0], [[PI / 2], [], 1], [[PI / 6], [], 0.5]] },
  Cos: { ranges: [[-4, 4]], known: [[[0], [], 1], [[PI], [], -1], [[PI / 3], [], 0.5]] },
  Asin: { ranges: [[-1, 1]], known: [[[1], [], PI / 2], [[0.5], [], PI / 6], [[-1], [], -PI / 2]] },
  Acos: { ranges: [[-1, 1]], known: [[[1], [], 0], [[0], [], PI / 2], [[-1], [], PI]] },
  Atan: { ranges: [[-4, 4]], known: [[[1], [], PI / 4], [[0], [], 0]] },
  // Atan2(y, x): angle of the point (x, y).
  Atan2: {
    ranges: [S, S],
    known: [[[1, 0], [], PI / 2], [[0, -1], [], PI], [[-1, -1], [], (-3 * PI) / 4], [[1, 1], [], PI / 4]],
  },
  Sqrt: { ranges: [[0, 3]], known: [[[4], [], 2], [[0], [], 0], [[2], [], Math.SQRT2]] },
  Rsqrt: { ranges: [[0, 3]], snap: true, known: [[[4], [], 0.5], [[0], [], 0], [[0.25], [], 2]] },
  Pow: {
    ranges: [[-2, 2]],
    params: [[0], [1], [2], [3], [7], [-1], [-3], [12]],
    known: [[[2], [3], 8], [[-2], [3], -8], [[2], [-2], 0.25], [[-3], [0], 1], [[1.5], [2], 2.25], [[3], [1], 3]],
  },
  Powf: { ranges: [[0.1, 2], [-1, 1]], known: [[[2, 3], [], 8], [[9, 0.5], [], 3], [[2, -1], [], 0.5]] },
  Inv: { ranges: [POS], known: [[[4], [], 0.25], [[-0.5], [], -2]] },
  IntInv: { ranges: [], params: [[1], [2], [3], [-4], [7]], known: [[[], [4], 0.25], [[], [-2], -0.5], [[], [1], 1]] },
  Abs: { ranges: [S], known: [[[-2.5], [], 2.5], [[3], [], 3]] },
  Sign: { ranges: [S], snap: true, known: [[[0], [], 0], [[-3], [], -1], [[0.1], [], 1]] },
  Step: { ranges: [S], snap: true, known: [[[0], [], 1], [[-0.1], [], 0], [[2], [], 1]] },
  ReLU: { ranges: [S], snap: true, known: [[[-1], [], 0], [[2], [], 2], [[0], [], 0]] },
  Floor: { ranges: [[-5, 5]], snap: true, known: [[[-1.5], [], -2], [[1.5], [], 1], [[2], [], 2]] },
  Round: {
    ranges: [[-50, 50]],
    params: [[0], [1], [2], [3], [-1]],
    known: [
      [[1.2345], [2], 1.23],
      [[2.5], [0], 3],
      [[-2.5], [0], -3],
      [[-1.25], [1], -1.3],
      [[0.4], [0], 0],
      [[1234], [-2], 1200],
    ],
  },
  // KeOps Mod(x, n, d) = x - n floor((x - d) / n): lands in [d, d + n).
  Mod: {
    ranges: [[-5, 5], [0.5, 3], [-1, 1]],
    snap: true,
    known: [[[-3.5, 2, 0], [], 0.5], [[7, 3, 0], [], 1], [[5.5, 2, 1], [], 1.5], [[0.5, 2, 1], [], 2.5], [[-1, 2, -1], [], -1]],
  },
  Clamp: {
    ranges: [S, [-1, 0], [0, 1]],
    known: [[[5, 0, 1], [], 1], [[-1, 0, 1], [], 0], [[0.3, 0, 1], [], 0.3]],
  },
  ClampInt: {
    ranges: [[-3, 3]],
    params: [[0, 1], [-1, 2]],
    known: [[[2.5], [0, 1], 1], [[-3], [-1, 2], -1], [[0.5], [0, 1], 0.5]],
  },
  IfElse: {
    ranges: [S, S, S],
    snap: true,
    known: [[[0, 1, 2], [], 1], [[-0.1, 1, 2], [], 2], [[3, 1, 2], [], 1]],
  },
  Equal: { ranges: [S, S], snap: true, known: [[[2, 2], [], 1], [[2, 3], [], 0]] },
  NotEqual: { ranges: [S, S], snap: true, known: [[[2, 2], [], 0], [[2, 3], [], 1]] },
  LessThan: { ranges: [S, S], snap: true, known: [[[1, 2], [], 1], [[2, 2], [], 0], [[3, 2], [], 0]] },
  LessOrEqual: { ranges: [S, S], snap: true, known: [[[1, 2], [], 1], [[2, 2], [], 1], [[3, 2], [], 0]] },
  XLogX: {
    ranges: [[0, 3]],
    snap: true,
    known: [[[0], [], 0], [[1], [], 0], [[Math.E], [], Math.E], [[2], [], 1.3862943611198906]],
  },
  SinXDivX: {
    ranges: [[-6, 6]],
    snap: true,
    known: [[[0], [], 1], [[PI / 2], [], 2 / PI], [[PI], [], 0]],
  },
};


const close = (got: number, want: number): boolean => Math.abs(got - want) <= 1e-6 * Math.abs(want) + 1e-12;

function sample(r: () => number, c: Case, a: number, dim: number): number[] {
  const [lo, hi] = c.ranges[a]!;
  return uniform(r, dim, lo, hi).map((v) => {
    if (!c.snap || r() < 0.5) return v;
    const s = Math.round(v);
    return Math.min(hi, Math.max(lo, s));
  });
}

/** Dimension patterns to try: all 1, all 3, and (n-ary ops) each operand in turn at dimension 1 against 3. */
function dimPatterns(arity: number): number[][] {
  if (arity === 0) return [[]];
  const out = [Array<number>(arity).fill(1), Array<number>(arity).fill(3)];
  if (arity >= 2) for (let i = 0; i < arity; i++) out.push(Array.from({ length: arity }, (_, k) => (k === i ? 1 : 3)));
  return out;
}

function build(name: string, dims: readonly number[], params: readonly number[]): { f: Formula; vars: VarNode[] } {
  const vars = dims.map((d, i) => mkVar(i, d, 0));
  return { f: op(name, vars, params), vars };
}

test('every elementwise op has a test case, and every case names an op', () => {
  const names = elementwiseOps.map((d) => d.name);
  for (const n of names) assert.ok(CASES[n] !== undefined, `no test case for ${n}`);
  for (const n of Object.keys(CASES)) assert.ok(names.includes(n), `case ${n} names no elementwise op`);
  assert.is(new Set(names).size, names.length, 'duplicate op names');
  for (const d of elementwiseOps) {
    const c = CASES[d.name]!;
    assert.is(c.ranges.length, d.arity, `${d.name}: ranges per argument`);
    for (const p of c.params ?? [[]]) assert.is(p.length, d.nParams, `${d.name}: parameter count`);
    assert.ok(c.known.length > 0, `${d.name}: no known values`);
    for (const [args, params] of c.known) {
      assert.is(args.length, d.arity, `${d.name}: known-value arguments`);
      assert.is(params.length, d.nParams, `${d.name}: known-value parameters`);
    }
  }
});

test('generated JavaScript matches the float64 reference (dims 1 and 3, broadcasting)', () => {
  const r = rng(20240611);
  for (const def of elementwiseOps) {
    const c = CASES[def.name]!;
    for (const params of c.params ?? [[]]) {
      for (const dims of dimPatterns(def.arity)) {
        const { f, vars } = build(def.name, dims, params);
        assert.is(f.dim, Math.max(1, ...dims), `${def.name}: output dim`);
        for (let trial = 0; trial < 8; trial++) {
          const values = vars.map((v, a) => sample(r, c, a, v.dim));
          const val = (v: VarNode) => values[v.index]!;
          const got = evalGenerated(f, val);
          const want = evaluateReference(f, val);
          assert.is(got.length, f.dim);
          assert.is(want.length, f.dim);
          for (let k = 0; k < f.dim; k++) {
            const msg = `${def.name}(${values.map((x) => `[${x.join(', ')}]`).join(', ')}; ${params.join(', ')})[${k}]: generated ${got[k]}, reference ${want[k]}`;
            assert.ok(Number.isFinite(want[k]!), msg);
            assert.ok(close(got[k]!, want[k]!), msg);
          }
        }
      }
    }
  }
});

test('references give hand-computed values (exactly), generated code within 1e-6', () => {
  for (const def of elementwiseOps) {
    for (const [args, params, want] of CASES[def.name]!.known) {
      const { f } = build(def.name, args.map(() => 1), params);
      const val = (v: VarNode) => [args[v.index]!];
      const ref = evaluateReference(f, val)[0]!;
      const gen = evalGenerated(f, val)[0]!;
      const msg = `${def.name}(${[...args, ...params].join(', ')}) = ${want}: reference ${ref}, generated ${gen}`;
      assert.ok(Math.abs(ref - want) <= 1e-12 * Math.abs(want) + 1e-15, msg);
      assert.ok(close(gen, want), msg);
    }
  }
});

test('broadcast semantics: dim-1 operands repeat across components', () => {
  const x = mkVar(0, 3, 0);
  const y = mkVar(1, 1, 0);
  const vals = (v: VarNode) => (v.index === 0 ? [-1, 0, 2] : [0.5]);
  assert.equal(evaluateReference(op('IfElse', [x, y, mkVar(2, 1, 0)]), (v) => (v.index === 2 ? [9] : vals(v))), [9, 0.5, 0.5]);
  assert.equal(evaluateReference(op('LessThan', [x, y]), vals), [1, 1, 0]);
  assert.equal(evalGenerated(op('Clamp', [x, mkVar(2, 1, 0), y]), (v) => (v.index === 2 ? [-0.5] : vals(v))), [-0.5, 0, 0.5]);
});

test('dimension mismatch throws DimensionError naming the op', () => {
  const cases: [string, number[]][] = [
    ['Add', [2, 3]],
    ['Atan2', [3, 2]],
    ['Powf', [2, 4]],
    ['Equal', [2, 3]],
    ['IfElse', [2, 3, 1]],
    ['Mod', [1, 3, 2]],
    ['Clamp', [3, 3, 2]],
  ];
  for (const [name, dims] of cases) {
    const vars = dims.map((d, i) => mkVar(i, d, 0));
    let caught: unknown;
    try {
      op(name, vars);
    } catch (e) {
      caught = e;
    }
    assert.instance(caught, DimensionError, `${name} ${dims}`);
    assert.ok((caught as Error).message.includes(name), (caught as Error).message);
  }
});

test('static parameters are validated', () => {
  const x = mkVar(0, 2, 0);
  assert.throws(() => op('Pow', [x], [1.5]), (e: unknown) => e instanceof KernelflowError && /Pow/.test(e.message));
  assert.throws(() => op('Round', [x], [0.5]), (e: unknown) => e instanceof KernelflowError && /Round/.test(e.message));
  assert.throws(() => op('ClampInt', [x], [0, 0.5]), (e: unknown) => e instanceof KernelflowError);
  assert.throws(() => op('IntInv', [], [0]), (e: unknown) => e instanceof KernelflowError && /IntInv/.test(e.message));
  assert.is(op('IntInv', [], [3]).dim, 1);
});


test('emitters print only through the dialect (no JavaScript-only syntax)', () => {
  for (const def of elementwiseOps) {
    const c = CASES[def.name]!;
    for (const params of c.params ?? [[]]) {
      const { f } = build(def.name, Array<number>(def.arity).fill(3), params);
      const r = renderTemps(linearize([f]), probe, (v, k) => `v${v.index}_${k}`);
      const code = r.stmts.flat().join('\n');
      for (const bad of ['Math.', '?', '===', '!==', '**', '%', 'let ', 'const ']) {
        assert.not.ok(code.includes(bad), `${def.name}(${params}): '${bad}' in\n${code}`);
      }
    }
  }
});

test.run();
