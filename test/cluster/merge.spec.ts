/**
 * The cluster's merges without a cluster: the reduced axis cut into blocks, each block's jobs
 * (src/cluster/merge.ts `reducedJobs`) run on the local CPU backend, the partial results merged
 * (`mergeReduced`) and compared with the unsplit run: values within float32 rounding, indices
 * exact, ties (a repeated cloud, so every minimum is tied across blocks) to the lowest index.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { parseAliases, parseFormula } from '../../src/api/parse.js';
import { concatRows, mergeReduced, reducedJobs, type Partial } from '../../src/cluster/merge.js';
import { CpuBackend } from '../../src/cpu/backend.js';
import { makePlan, type KernelPlan } from '../../src/kernel/plan.js';
import { rng, uniform } from '../helpers/random.js';

const cpu = new CpuBackend(1);
const aliases = parseAliases(['x = Vi(2)', 'y = Vj(2)', 'b = Vj(3)', 'g = Pm(1)']);

const CASES: readonly { reduction: string; f: string; g?: string; K?: number }[] = [
  { reduction: 'Sum', f: 'Exp(-g*SqDist(x,y))*b' },
  { reduction: 'LogSumExp', f: '-g*SqDist(x,y)*b' },
  { reduction: 'LogSumExp', f: '-g*SqDist(x,y)', g: 'b' },
  { reduction: 'SumSoftMaxWeight', f: '-g*SqDist(x,y)', g: 'b' },
  { reduction: 'Min', f: 'x-y' },
  { reduction: 'Max', f: 'x-y' },
  { reduction: 'ArgMin', f: 'SqDist(x,y)' },
  { reduction: 'ArgMax', f: 'x*y' },
  { reduction: 'Min_ArgMin', f: 'Abs(x-y)' },
  { reduction: 'Max_ArgMax', f: '(x|y)' },
  { reduction: 'KMin', f: 'SqDist(x,y)', K: 4 },
  { reduction: 'ArgKMin', f: 'SqDist(x,y)', K: 4 },
  { reduction: 'KMin_ArgKMin', f: 'Abs(x-y)', K: 3 },
];

const r = rng(21);
const M = 37;
const half = Float32Array.from(uniform(r, 40 * 2));
const y = Float32Array.from([...half, ...half, ...Float32Array.from(uniform(r, 21 * 2))]); // 101 rows, 80 tied
const N = y.length / 2;
const x = Float32Array.from(uniform(r, M * 2));
const b = Float32Array.from(uniform(r, N * 3, 0.1, 1));
const g = Float32Array.of(3);
const ins = [x, y, b, g];

/** The plan of a job of a reduced split (same formula and weight as `plan`). */
const jobPlan = (plan: KernelPlan, j: { reduction: string; K: number; weight: boolean }): KernelPlan =>
  makePlan(plan.f, { reduction: j.reduction, axis: 1, K: j.K, weight: j.weight ? plan.g : null });

for (const c of CASES) {
  test(`${c.reduction}${c.g === undefined ? '' : ' (weighted)'}: blocks of the reduced axis merge to the unsplit result`, async () => {
    const f = parseFormula(c.f, aliases);
    const plan = makePlan(f, { reduction: c.reduction, axis: 1, K: c.K, weight: c.g === undefined ? null : parseFormula(c.g, aliases) });
    const want = await cpu.run(plan, ins, M, N);
    for (const cuts of [[0, 50, 101], [0, 13, 40, 77, 101], [0, 40, 80, 101]]) {
      const parts: Partial[] = [];
      for (let k = 0; k + 1 < cuts.length; k++) {
        const [j0, j1] = [cuts[k]!, cuts[k + 1]!];
        const blockIns = [x, y.subarray(j0 * 2, j1 * 2), b.subarray(j0 * 3, j1 * 3), g];
        const jobs = [];
        for (const j of reducedJobs(plan)) jobs.push(await cpu.run(jobPlan(plan, j), blockIns, M, j1 - j0));
        parts.push({ j0, jobs });
      }
      // Any arrival order: the merge sorts by block.
      const got = mergeReduced(plan, M, parts.reverse());
      assert.is(got.length, want.length);
      want.forEach((w, o) => {
        assert.is(got[o]!.constructor, w.constructor, `output ${o} dtype`);
        if (w instanceof Int32Array) assert.equal([...got[o]!], [...w], `${c.reduction} cuts ${cuts} output ${o}`);
        else w.forEach((v, k) => assert.ok(Math.abs(got[o]![k]! - v) <= 1e-5 * Math.max(1, Math.abs(v)), `${c.reduction} cuts ${cuts} output ${o}[${k}]: ${got[o]![k]} vs ${v}`));
      });
    }
  });
}

test('blocks of rows concatenate to the unsplit result, exactly', async () => {
  const plan = makePlan(parseFormula('SqDist(x,y)', aliases), { reduction: 'KMin_ArgKMin', axis: 1, K: 3 });
  const want = await cpu.run(plan, ins, M, N);
  const parts = [];
  for (const [i0, i1] of [[0, 10], [10, 11], [11, 37]] as const) parts.push({ i0, outs: await cpu.run(plan, [x.subarray(i0 * 2, i1 * 2), y, b, g], i1 - i0, N) });
  const got = concatRows(plan, M, parts);
  want.forEach((w, o) => assert.equal([...got[o]!], [...w]));
});

test.after(() => cpu.dispose());

test.run();
