import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { executeReduction } from '../../src/scheduler/execute.js';
import { mkVar, type Formula } from '../../src/graph/formula.js';
import { releaseDevice } from '../../src/gpu/device.js';
import { op } from '../../src/ops/build.js';
import { OPS } from '../../src/ops/table.js';
import { encodeKronParams, encodeTensorDotParams } from '../../src/ops/linalg.js';
import { evaluateReference } from '../../src/ops/reference.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { rng } from '../helpers/random.js';
import { assertCpuKernelsRan } from '../helpers/backend.js';
import { cpuKernels } from '../../src/scheduler/backends.js';

/**
 * The whole op table on both backends in one fused kernel each: every op reads its arguments
 * as slices (Extract) of one wide i-variable, their outputs are concatenated, and each row is
 * a random point. Each op's slice of the result is compared with the float64 reference.
 */
type Domain = 'any' | 'pos' | 'unit' | 'grid' | 'sorted' | 'index';
interface Sig {
  readonly args: readonly (readonly [number, Domain])[];
  readonly params?: readonly number[];
}
const a = (dim: number, d: Domain = 'any') => [dim, d] as const;
const SIGS: Readonly<Record<string, Sig>> = {
  Add: { args: [a(3), a(1)] }, Subtract: { args: [a(3), a(3)] }, Mult: { args: [a(1), a(3)] },
  Divide: { args: [a(3), a(3, 'pos')] }, Minus: { args: [a(3)] }, Exp: { args: [a(3)] }, Square: { args: [a(3)] },
  Log: { args: [a(3, 'pos')] }, Sin: { args: [a(3)] }, Cos: { args: [a(3)] }, Asin: { args: [a(3, 'unit')] },
  Acos: { args: [a(3, 'unit')] }, Atan: { args: [a(3)] }, Atan2: { args: [a(3), a(3)] }, Sqrt: { args: [a(3, 'pos')] },
  Rsqrt: { args: [a(3, 'pos')] }, Pow: { args: [a(3)], params: [3] }, Powf: { args: [a(3, 'pos'), a(3)] },
  Inv: { args: [a(3, 'pos')] }, IntInv: { args: [], params: [3] }, Abs: { args: [a(3)] }, Sign: { args: [a(3, 'grid')] },
  Step: { args: [a(3, 'grid')] }, ReLU: { args: [a(3)] }, Floor: { args: [a(3, 'grid')] }, Round: { args: [a(3, 'grid')], params: [1] },
  Mod: { args: [a(3, 'grid'), a(1, 'pos'), a(1, 'grid')] }, Clamp: { args: [a(3), a(1), a(1, 'pos')] },
  ClampInt: { args: [a(3, 'grid')], params: [-1, 1] }, IfElse: { args: [a(3, 'grid'), a(3), a(3)] },
  Equal: { args: [a(3, 'grid'), a(3, 'grid')] }, NotEqual: { args: [a(3, 'grid'), a(3, 'grid')] },
  LessThan: { args: [a(3, 'grid'), a(3, 'grid')] }, LessOrEqual: { args: [a(3, 'grid'), a(3, 'grid')] },
  XLogX: { args: [a(3, 'pos')] }, SinXDivX: { args: [a(3)] },
  Scalprod: { args: [a(3), a(3)] }, Sum: { args: [a(3)] }, Max: { args: [a(3)] }, Min: { args: [a(3)] },
  ArgMax: { args: [a(3)] }, ArgMin: { args: [a(3)] }, SumT: { args: [a(1)], params: [3] }, SqNorm2: { args: [a(3)] },
  Norm2: { args: [a(3)] }, Normalize: { args: [a(3)] }, SqDist: { args: [a(3), a(3)] }, SqNormIso: { args: [a(1, 'pos'), a(3)] },
  SqNormDiag: { args: [a(3, 'pos'), a(3)] }, SymSqNorm: { args: [a(9), a(3)] }, WeightedSqNorm: { args: [a(9), a(3)] },
  WeightedSqDist: { args: [a(3, 'pos'), a(3), a(3)] }, Concat: { args: [a(2), a(3)] }, Elem: { args: [a(3)], params: [1] },
  ElemT: { args: [a(1)], params: [3, 1] }, Extract: { args: [a(4)], params: [1, 2] }, ExtractT: { args: [a(2)], params: [1, 4] },
  OneHot: { args: [a(1, 'index')], params: [4] }, MatVecMult: { args: [a(6), a(3)] }, VecMatMult: { args: [a(2), a(6)] },
  TensorProd: { args: [a(2), a(3)] }, TensorDot: { args: [a(4), a(4)], params: encodeTensorDotParams([2, 2], [2, 2], [1], [0]) },
  Kron: { args: [a(4), a(4)], params: encodeKronParams([2, 2], [2, 2]) }, BSpline: { args: [a(6, 'sorted'), a(1, 'unit')], params: [2] },
  SoftDTW_SqDist: { args: [a(3), a(4), a(1, 'pos')] }, GradSoftDTW_SqDist: { args: [a(3), a(4), a(1, 'pos')] },
};

const ROWS = 48;
const r = rng(99);
function sample(dim: number, d: Domain): number[] {
  const u = (lo: number, hi: number) => lo + (hi - lo) * r();
  if (d === 'sorted') return Array.from({ length: dim }, () => u(-1.2, 1.2)).sort((x, y) => x - y);
  // Grid values sit on multiples of 1/16, exact in float32, so discontinuous ops agree across precisions.
  const one = (): number =>
    d === 'pos' ? u(0.3, 2) : d === 'unit' ? u(-0.9, 0.9) : d === 'grid' ? Math.round(u(-2, 2) * 16) / 16 : d === 'index' ? Math.round(u(0, 3.4) * 16) / 16 + 1 / 32 : u(-2, 2);
  return Array.from({ length: dim }, one);
}

// Lay every op's arguments side by side in one wide variable.
const entries = [...OPS.keys()].map((name) => ({ name, sig: SIGS[name] }));
let width = 0;
const slots = entries.map(({ sig }) => (sig?.args ?? []).map(([dim, dom]) => ({ at: (width += dim) - dim, dim, dom })));
const wide = mkVar(0, width, 0);
const formulas: Formula[] = entries.map(({ name, sig }, k) =>
  op(name, slots[k]!.map((s) => op('Extract', [wide], [s.at, s.dim])), sig?.params ?? []),
);
const all = formulas.reduceRight<Formula | null>((acc, f) => (acc === null ? f : op('Concat', [f, acc])), null)!;
const values = Array.from({ length: ROWS }, () => {
  const row = new Array<number>(width).fill(0);
  slots.flat().forEach((s) => sample(s.dim, s.dom).forEach((v, k) => (row[s.at + k] = Math.fround(v))));
  return row;
});
const data = { data: Float32Array.from(values.flat()), shape: [ROWS, width] };

test('every op of the table has a signature here', () => {
  for (const { name, sig } of entries) assert.ok(sig !== undefined, `no signature for ${name}`);
});

const backends = webgpuTestable(test, 'the op table on WebGPU') ? (['cpu', 'webgpu'] as const) : (['cpu'] as const);

for (const backend of backends) {
  test(`all ${entries.length} ops in one fused kernel on ${backend} agree with float64`, async () => {
    const [out] = await executeReduction(all, { reduction: 'Sum', axis: 1, backend }, [data]);
    assert.equal(out!.shape, [ROWS, all.dim]);
    values.forEach((row, i) => {
      let at = 0;
      formulas.forEach((f, k) => {
        const want = evaluateReference(f, () => row);
        for (let c = 0; c < f.dim; c++) {
          const got = out!.data[i * all.dim + at + c]!;
          const w = want[c]!;
          const ok = Math.abs(got - w) <= 2e-5 * Math.max(1, Math.abs(w));
          if (!ok) assert.unreachable(`${entries[k]!.name} on ${backend}, row ${i}, component ${c}: got ${got}, want ${w}`);
        }
        at += f.dim;
      });
    });
    if (backend === 'cpu') assertCpuKernelsRan(cpuKernels(), 'the op table');
  });
}

test.after(() => releaseDevice());
test.run();
