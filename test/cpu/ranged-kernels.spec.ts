/**
 * Block-sparse kernels on the CPU backend: the WASM kernels run a ranged reduction too (the plain
 * WASM kernel per row segment over its gathered j-ranges, K-list indices mapped back), with the
 * same values as the JavaScript ranged kernels and a float64 brute force over the kept pairs, on
 * the calling thread and on the worker pool. ArgMin and ArgMax alone keep the JavaScript kernel.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromMatrix } from '../../src/api/clustering.js';
import { parseAliases, parseFormula } from '../../src/api/parse.js';
import { CpuBackend } from '../../src/cpu/backend.js';
import { makePlan } from '../../src/kernel/plan.js';
import { kernelRanges } from '../../src/kernel/ranges.js';
import type { ReductionName } from '../../src/ops/reductions.js';
import { rng, uniform } from '../helpers/random.js';

const aliases = parseAliases(['x = Vi(3)', 'y = Vj(3)']);
const gauss = parseFormula('Exp(-SqDist(x,y))', aliases);
const d2 = parseFormula('SqDist(x,y)', aliases);

/** Consecutive clusters of the given sizes: [start, end) pairs. */
function clusters(sizes: readonly number[]): Int32Array {
  const out: number[] = [];
  let at = 0;
  for (const s of sizes) out.push(at, (at += s));
  return Int32Array.from(out);
}

/**
 * Row clusters of 1 to 13 rows and a gap (the last 3 rows in no cluster), column clusters of 1 to
 * 40 terms (times `scale`); each pair of clusters kept with probability 0.3 (some row clusters keep none).
 */
function problem(seed: number, scale = 1) {
  const r = rng(seed);
  const base = [1, 13, 4, 7, 2, 9, 5, 13, 3, 11, 6, 1, 8, 12, 10, 7, 4, 13, 9, 2, 13, 7, 5, 6, 3, 10, 4, 13];
  const iSizes = Array.from({ length: scale }, () => base).flat();
  const jSizes = [40, 1, 17, 3, 29, 8, 22, 5, 13, 19].map((s) => s * scale);
  const ri = clusters(iSizes);
  const rj = clusters(jSizes);
  const M = ri[ri.length - 1]! + 3;
  const N = rj[rj.length - 1]!;
  const keep = Uint8Array.from({ length: iSizes.length * jSizes.length }, () => (r() < 0.3 ? 1 : 0));
  const ranges = fromMatrix(ri, rj, { data: keep, shape: [iSizes.length, jSizes.length] });
  const kept = (i: number): number[] => {
    const c = iSizes.findIndex((_, k) => i >= ri[2 * k]! && i < ri[2 * k + 1]!);
    if (c < 0) return [];
    return jSizes.flatMap((_, k) => (keep[c * jSizes.length + k] ? Array.from({ length: rj[2 * k + 1]! - rj[2 * k]! }, (_, t) => rj[2 * k]! + t) : []));
  };
  const x = Float32Array.from(uniform(r, M * 3, -1, 1));
  const y = Float32Array.from(uniform(r, N * 3, -1, 1));
  const dist = (i: number, j: number): number => (x[3 * i]! - y[3 * j]!) ** 2 + (x[3 * i + 1]! - y[3 * j + 1]!) ** 2 + (x[3 * i + 2]! - y[3 * j + 2]!) ** 2;
  return { M, N, x, y, kr: kernelRanges(ranges, 1, M, N), kept, dist };
}

/** The reductions and their float64 references over one row's kept terms (j ascending). */
const CASES: readonly { name: string; f: typeof gauss; reduction: ReductionName; K?: number; ref: (d: number[], js: number[]) => number[][] }[] = [
  { name: 'Sum of a Gaussian', f: gauss, reduction: 'Sum', ref: (d) => [[d.reduce((s, v) => s + Math.exp(-v), 0)]] },
  { name: 'LogSumExp', f: gauss, reduction: 'LogSumExp', ref: (d) => [[d.length === 0 ? -Infinity : Math.log(d.reduce((s, v) => s + Math.exp(Math.exp(-v)), 0))]] },
  // A row with no kept term keeps the start: (+inf, 0) for Min_ArgMin, (-inf, 0) for Max_ArgMax, as KeOps.
  ...([['Min_ArgMin', 1], ['Max_ArgMax', -1]] as const).map(([reduction, sign]) => ({
    name: reduction,
    f: d2,
    reduction,
    ref: (d: number[], js: number[]) => {
      let best = sign * Infinity;
      let at = 0;
      d.forEach((v, t) => {
        if (sign * v < sign * best) [best, at] = [v, js[t]!];
      });
      return [[best], [at]];
    },
  })),
  ...[5, 20].map((K) => ({
    name: `KMin_ArgKMin K=${K}`,
    f: d2,
    reduction: 'KMin_ArgKMin' as const,
    K,
    ref: (d: number[], js: number[]) => {
      const order = d.map((v, t) => ({ v, j: js[t]! })).sort((a, b) => a.v - b.v || a.j - b.j);
      return [Array.from({ length: K }, (_, r) => order[r]?.v ?? Infinity), Array.from({ length: K }, (_, r) => order[r]?.j ?? -1)];
    },
  })),
];

for (const threads of [1, undefined] as const) {
  for (const c of CASES) {
    test(`${c.name} over block-sparse ranges, ${threads === 1 ? 'calling thread' : 'worker pool'}: WASM kernel = JS kernel = float64 over the kept pairs`, async () => {
      // The pool splits a ranged reduction from 2^18 kept pairs (cpu/backend.ts PARALLEL_PAIRS).
      const p = problem(c.name.length * 7 + (threads ?? 3), threads === 1 ? 1 : 6);
      if (threads === undefined) assert.ok(p.kr.pairs >= 1 << 18, `${p.kr.pairs} pairs: too few for the worker pool`);
      const plan = makePlan(c.f, { reduction: c.reduction, axis: 1, K: c.K });
      const outs: Record<string, (Float32Array | Float64Array | Int32Array)[]> = {};
      for (const kernels of ['wasm', 'js'] as const) {
        const cpu = new CpuBackend(threads, kernels);
        outs[kernels] = await cpu.run(plan, [p.x, p.y], p.M, p.N, p.kr);
        if (kernels === 'wasm') assert.equal([cpu.info().wasmCompiled, cpu.info().jsFallbacks], [1, 0], 'the ranged kernel is a WASM kernel');
        await cpu.dispose();
      }
      for (let i = 0; i < p.M; i++) {
        const js = p.kept(i);
        const want = c.ref(js.map((j) => p.dist(i, j)), js);
        want.forEach((w, o) => {
          const width = w.length;
          const got = Array.from(outs.wasm![o]!.subarray(i * width, (i + 1) * width));
          const jsGot = Array.from(outs.js![o]!.subarray(i * width, (i + 1) * width));
          if (outs.wasm![o] instanceof Int32Array) {
            assert.equal(got, w, `row ${i} indices`);
            assert.equal(got, jsGot, `row ${i} indices vs JS`);
          } else {
            got.forEach((g, k) => {
              const ok = g === w[k] || Math.abs(g - w[k]!) <= 1e-5 * Math.max(1, Math.abs(w[k]!));
              if (!ok) assert.unreachable(`row ${i} value ${k}: ${g} vs ${w[k]} (JS ${jsGot[k]})`);
            });
          }
        });
      }
    });
  }
}

test('ArgMin and ArgMax alone over ranges keep the JavaScript kernel (their index starts at 0, and no value says whether a term set it)', async () => {
  const p = problem(5);
  for (const reduction of ['ArgMin', 'ArgMax'] as const) {
    const cpu = new CpuBackend(1, 'wasm');
    await cpu.run(makePlan(d2, { reduction, axis: 1 }), [p.x, p.y], p.M, p.N, p.kr);
    assert.equal([cpu.info().wasmCompiled, cpu.info().jsFallbacks], [0, 0], reduction);
    await cpu.dispose();
  }
});

test.run();
