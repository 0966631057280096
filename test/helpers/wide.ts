import * as assert from 'uvu/assert';
import { Cat, mkConst, mkVar, type Formula, type VarNode } from '../../src/graph/formula.js';
import { makePlan, type KernelPlan } from '../../src/kernel/plan.js';
import { op } from '../../src/ops/build.js';
import { bruteReduce, type Cloud } from './brute.js';
import { rng } from './random.js';

/*
 * Formulas whose vectors are wider than both dialects unroll (JS 64, WGSL 8), so every op and
 * reduction hook prints loops over arrays; the CPU and WebGPU suites run the same table against
 * the float64 brute force (test/cpu/wide.spec.ts, test/gpu/wide.spec.ts).
 */

export interface WideCase {
  readonly name: string;
  readonly f: Formula;
  readonly g?: Formula;
  readonly reduction: string;
  readonly K?: number;
  readonly M?: number;
  readonly N?: number;
  /** Data on a grid of quarters: squared differences are exact in float32, so K-lists tie the same way everywhere. */
  readonly grid?: boolean;
}

/** What the suites need of a backend. */
export interface Runner {
  run(plan: KernelPlan, ins: readonly (Float32Array | undefined)[], M: number, N: number): Promise<(Float32Array | Float64Array | Int32Array)[]>;
}

const vi = (index: number, dim: number) => mkVar(index, dim, Cat.i);
const vj = (index: number, dim: number) => mkVar(index, dim, Cat.j);
const pm = (index: number, dim: number) => mkVar(index, dim, Cat.param);
const gauss = (D: number): Formula => op('Mult', [op('Exp', [op('Minus', [op('SqDist', [vi(0, D), vj(1, D)])])]), vj(2, 1)]);

/** A formula of 40 variables (i, j and parameters in turn, dim 2): the sum of their products with x. */
function fortyVariables(): Formula {
  const x = vi(0, 2);
  let f: Formula = x;
  for (let v = 1; v < 40; v++) {
    const cat = [Cat.i, Cat.j, Cat.param][v % 3]!;
    f = op('Add', [f, op('Mult', [mkVar(v, 2, cat), x])]);
  }
  return op('Sum', [f]);
}

/** The acceptance cases of issue 11 (Gaussian sums of D = 128, 300, 1000; Sum(x*y) over 990; K = 64, 200; 40 variables). */
export function acceptanceCases(): WideCase[] {
  const sqd = op('SqDist', [vi(0, 3), vj(1, 3)]);
  return [
    ...[128, 300, 1000].map((D) => ({ name: `Gaussian sum D=${D}`, f: gauss(D), reduction: 'Sum' })),
    { name: 'Sum(x*y) over D=990', f: op('Sum', [op('Mult', [vi(0, 990), vj(1, 990)])]), reduction: 'Sum' },
    ...[64, 200].flatMap((K) =>
      ['KMin', 'ArgKMin', 'KMin_ArgKMin'].map((reduction) => ({ name: `${reduction} K=${K}`, f: sqd, reduction, K, M: 20, N: 230, grid: true })),
    ),
    { name: '40 variables', f: fortyVariables(), reduction: 'Sum' },
  ];
}

/** Every op with a loop form, and every reduction, on wide vectors (D = 70, or 20 x 20 matrices). */
export function opCases(): WideCase[] {
  const D = 70;
  const x = vi(0, D);
  const y = vj(1, D);
  const s = pm(2, 1);
  const w = vj(3, D);
  const a = vi(4, 400);
  const v20 = vj(5, 20);
  const t = (name: string, f: Formula): WideCase => ({ name, f, reduction: 'Sum' });
  const sum = (f: Formula): Formula => op('Sum', [f]);
  const add = (...fs: Formula[]): Formula => fs.reduce((acc, f) => op('Add', [acc, f]));
  const extract = (f: Formula, start: number, len: number): Formula => op('Extract', [f], [start, len]);
  const square = op('Square', [op('Subtract', [x, y])]);
  const powRound = op('Pow', [op('Round', [op('Clamp', [x, mkConst(-0.1), mkConst(0.1)])], [2])], [3]);
  const pick = op('IfElse', [x, y, w]);
  const slices = extract(op('Concat', [x, op('ExtractT', [extract(y, 5, 30)], [10, D])]), 60, D);
  const picked = op('ElemT', [op('Elem', [w], [33])], [D, 7]);
  const hot = op('Mult', [op('SumT', [s], [D]), op('OneHot', [mkConst(4)], [D])]);
  return [
    t('elementwise chain with a broadcast parameter: Exp, Square, Pow, Round, Clamp, IfElse', op('Exp', [op('Minus', [op('Mult', [s, sum(add(square, powRound, pick))])])])),
    t('Scalprod, SqNormDiag, WeightedSqDist, Norm2', add(op('Scalprod', [x, y]), op('SqNormDiag', [w, x]), op('WeightedSqDist', [w, x, y]), op('Norm2', [y]))),
    t(
      'Max, Min, ArgMax, ArgMin over components',
      op('Concat', [op('Concat', [op('Max', [op('Add', [x, y])]), op('Min', [op('Add', [x, y])])]), op('Concat', [op('ArgMax', [op('Subtract', [x, y])]), op('ArgMin', [op('Subtract', [x, y])])])]),
    ),
    t('Concat, Extract, ExtractT, Elem, ElemT, SumT, OneHot (vector output)', add(slices, picked, hot)),
    t('Normalize (vector output)', op('Mult', [op('Normalize', [op('Subtract', [x, y])]), s])),
    t(
      'MatVecMult, VecMatMult, TensorProd, SymSqNorm on 20 x 20 matrices',
      add(sum(op('MatVecMult', [a, v20])), sum(op('VecMatMult', [v20, a])), sum(op('TensorProd', [extract(x, 0, 20), v20])), op('SymSqNorm', [a, v20])),
    ),
    // A narrow vector read at a loop index (WGSL: a 5 x 5 matrix is wide, the vector is not) is copied into an array first.
    t('MatVecMult, SymSqNorm on 5 x 5 matrices', add(sum(op('MatVecMult', [vi(6, 25), vj(7, 5)])), op('SymSqNorm', [vi(6, 25), vj(7, 5)]))),
    { name: 'LogSumExp, wide F', f: op('Minus', [op('Square', [op('Subtract', [x, y])])]), reduction: 'LogSumExp' },
    { name: 'LogSumExp, wide weight', f: op('Minus', [op('SqDist', [x, y])]), g: op('Exp', [w]), reduction: 'LogSumExp' },
    { name: 'SumSoftMaxWeight, wide weight', f: op('Minus', [op('SqDist', [x, y])]), g: w, reduction: 'SumSoftMaxWeight' },
    { name: 'Max_ArgMax, wide F', f: op('Mult', [x, y]), reduction: 'Max_ArgMax' },
    { name: 'Min_ArgMin, wide F', f: op('Mult', [x, y]), reduction: 'Min_ArgMin' },
    { name: 'KMin_ArgKMin K=5, wide F', f: op('Mult', [extract(x, 0, 20), extract(y, 0, 20)]), reduction: 'KMin_ArgKMin', K: 5, grid: true },
  ];
}

/** Each variable's data: uniform in [-1, 1) / sqrt(dim) (so squared distances stay O(1)), or on a grid of quarters. */
export function caseData(plan: KernelPlan, M: number, N: number, grid: boolean): Cloud[] {
  const r = rng(11);
  return plan.vars.map((v) => {
    if (v === undefined) return { rows: 0, dim: 0, values: [] };
    const rows = v.cat === Cat.i ? M : v.cat === Cat.j ? N : 1;
    const scale = 1 / Math.sqrt(v.dim);
    const values = Array.from({ length: rows * v.dim }, () => (grid ? Math.round(r() * 8) / 4 : (2 * r() - 1) * scale));
    return { rows, dim: v.dim, values };
  });
}

/** Runs a case on a backend and checks every output against the float64 brute force; returns the time to the result in ms. */
export async function checkCase(backend: Runner, c: WideCase, tol: number): Promise<number> {
  const plan = makePlan(c.f, { reduction: c.reduction, axis: 1, K: c.K, weight: c.g ?? null });
  const [M, N] = [c.M ?? 50, c.N ?? 60];
  const data = caseData(plan, M, N, c.grid ?? false);
  const t0 = performance.now();
  const got = await backend.run(plan, data.map((d) => Float32Array.from(d.values)), M, N);
  const ms = performance.now() - t0;
  const vars = plan.vars.filter((v): v is VarNode => v !== undefined);
  const want = bruteReduce(plan.f, plan.g, c.reduction, 1, data, vars, c.K ?? 0);
  got.forEach((o, n) => {
    const flat = want.flatMap((row) => row[n]!);
    assert.is(o.length, flat.length, `${c.name}: output ${n} length`);
    for (let k = 0; k < flat.length; k++) {
      const [g, w] = [o[k]!, flat[k]!];
      if (g === w) continue;
      if (!(Math.abs(g - w) <= tol * Math.max(1, Math.abs(w)))) assert.unreachable(`${c.name}: output ${n}[${k}] is ${g}, want ${w}`);
    }
  });
  return ms;
}
