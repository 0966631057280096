import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JS_PRELUDE, jsDialect } from '../../src/cpu/dialect.js';
import type { Dialect } from '../../src/ops/op.js';
import { isWide, type Ix, type Operand } from '../../src/ops/loop.js';
import { REDUCTIONS, stateWidth, type ReduceCtx, type ReductionDef } from '../../src/ops/reductions.js';
import { rng } from '../helpers/random.js';

// The split of the reduced axis (pass 1: a partial state per block, pass 2: merge in block order,
// finalize) evaluated through the JS dialect, against the unsplit hooks and the float64 reference.
// No GPU needed: these are the same hooks the WGSL kernels print.

/** The JS dialect with a barrier (a no-op in float64), so the compensated (Kahan) state layout of float32 dialects is exercised too. */
const compensated: Dialect = { ...jsDialect, barrier: (e) => `(${e})` };

interface Terms {
  readonly f: number[][];
  readonly g: number[][];
}

type Outputs = number[][];

/** The components of F (or G) at the current j: scalars `f0, f1, ...` where narrow, else read from the row array in a loop. */
function operand(d: Dialect, name: 'f' | 'g', dim: number): Operand {
  return { dim, at: (k) => (typeof k === 'number' && !isWide(d, dim) ? `${name}${k}` : `${name.toUpperCase()}[j][${k}]`) };
}

/** Compiles `(F, G, j0, j1, put) => void` reducing terms [j0, j1) with the hooks and storing the state, and the unsplit reduction. */
function programs(def: ReductionDef, d: Dialect, fDim: number, gDim: number, K: number) {
  const c: ReduceCtx = { d, fDim, gDim, K, p: 'a_' };
  const q: ReduceCtx = { ...c, p: 'q_' };
  const W = stateWidth(def, d, fDim, gDim, K);
  const outs = def.outputs(fDim, gDim, K);
  const loop = [
    'for (let j = j0; j < j1; j++) {',
    ...Array.from({ length: fDim }, (_, k) => `const f${k} = F[j][${k}];`),
    ...Array.from({ length: gDim }, (_, k) => `const g${k} = G[j][${k}];`),
    ...def.combine(c, operand(d, 'f', fDim), operand(d, 'g', gDim), 'j'),
    '}',
  ];
  const write = (o: number, k: Ix, e: string): string => `O[${o}][${k}] = ${e};`;
  const header = `const O = [${outs.map((o) => `new Array(${o.width}).fill(0)`).join(', ')}];`;
  const partial = new Function('F', 'G', 'j0', 'j1', 'S', 'at', [JS_PRELUDE, ...def.init(c), ...loop, ...def.save(c, (k, e) => `S[at + ${k}] = ${e};`)].join('\n')) as (
    F: number[][],
    G: number[][],
    j0: number,
    j1: number,
    S: Float64Array,
    at: number,
  ) => void;
  const merge = new Function(
    'S',
    'B',
    [
      JS_PRELUDE,
      header,
      ...def.load(c, (k) => `S[${k}]`),
      'for (let b = 1; b < B; b++) {',
      `const at = b * ${W};`,
      ...def.load(q, (k) => `S[at + ${k}]`),
      ...def.merge(c, 'q_'),
      '}',
      ...def.finalize(c, write),
      'return O;',
    ].join('\n'),
  ) as (S: Float64Array, B: number) => Outputs;
  const whole = new Function('F', 'G', 'j0', 'j1', [JS_PRELUDE, header, ...def.init(c), ...loop, ...def.finalize(c, write), 'return O;'].join('\n')) as (
    F: number[][],
    G: number[][],
    j0: number,
    j1: number,
  ) => Outputs;
  return {
    W,
    /** Splits [0, n) at `cuts` (ascending), reduces each block to a state and merges them. */
    split(t: Terms, cuts: readonly number[]): Outputs {
      const bounds = [0, ...cuts, t.f.length];
      const B = bounds.length - 1;
      const S = new Float64Array(B * W);
      for (let b = 0; b < B; b++) partial(t.f, t.g, bounds[b]!, bounds[b + 1]!, S, b * W);
      return merge(S, B);
    },
    whole: (t: Terms): Outputs => whole(t.f, t.g, 0, t.f.length),
  };
}

/** Narrow cases, and wide ones (dims above the JS dialect's unrollMax, K-lists above its list threshold): the hooks then print loops over arrays. */
function dims(def: ReductionDef): { fDim: number; gDim: number; K: number }[] {
  const K = def.usesK ? 3 : 0;
  if (def.weight === 'required') return [{ fDim: 1, gDim: 2, K }, { fDim: 1, gDim: 70, K }];
  const out = [
    { fDim: 1, gDim: 0, K },
    { fDim: 3, gDim: 0, K },
    def.usesK ? { fDim: 2, gDim: 0, K: 20 } : { fDim: 70, gDim: 0, K },
  ];
  if (def.weight === 'optional') out.push({ fDim: 1, gDim: 3, K }, { fDim: 1, gDim: 70, K });
  return out;
}

/** Terms on a coarse grid (many exact ties), weights positive. */
function terms(r: () => number, n: number, fDim: number, gDim: number, grid: boolean): Terms {
  const v = (): number => (grid ? Math.round(r() * 8) / 4 - 1 : 4 * r() - 2);
  return {
    f: Array.from({ length: n }, () => Array.from({ length: fDim }, v)),
    g: Array.from({ length: n }, () => Array.from({ length: gDim }, () => 0.1 + r())),
  };
}

function randomCuts(r: () => number, n: number): number[] {
  const cuts = new Set<number>();
  const count = 1 + Math.floor(r() * 8);
  for (let k = 0; k < count; k++) cuts.add(1 + Math.floor(r() * (n - 1)));
  if (r() < 0.5) cuts.add(n - 1); // a one-term last block
  return [...cuts].sort((a, b) => a - b);
}

function close(got: readonly number[], want: readonly number[], tol: number, what: string): void {
  assert.is(got.length, want.length, `${what}: length`);
  got.forEach((g, k) => {
    const w = want[k]!;
    if (g === w) return; // infinite values of a K-list that is not full
    if (!(Math.abs(g - w) <= tol * Math.max(1, Math.abs(w)))) assert.unreachable(`${what}[${k}]: got ${g}, want ${w}`);
  });
}

const exact = (def: ReductionDef): boolean => !['Sum', 'LogSumExp', 'SumSoftMaxWeight'].includes(def.name);

for (const [name, def] of REDUCTIONS) {
  for (const d of [jsDialect, compensated]) {
    for (const { fDim, gDim, K } of dims(def)) {
      const label = `${name} fDim=${fDim} gDim=${gDim}${def.usesK ? ` K=${K}` : ''}${d.barrier === undefined ? '' : ' (compensated state)'}`;
      test(`${label}: merged partial states equal the unsplit hooks and the float64 reference`, () => {
        const r = rng(fDim * 31 + gDim * 7 + name.length);
        const prog = programs(def, d, fDim, gDim, K);
        assert.is(prog.W, stateWidth(def, d, fDim, gDim, K));
        for (let trial = 0; trial < 40; trial++) {
          const n = 2 + Math.floor(r() * 60);
          const t = terms(r, n, fDim, gDim, trial % 2 === 0);
          const cuts = randomCuts(r, n);
          const got = prog.split(t, cuts);
          const whole = prog.whole(t);
          const ref = def.ref(
            t.f.map((f, j) => ({ f, g: t.g[j]! })),
            fDim,
            gDim,
            K,
          );
          got.forEach((o, k) => {
            const what = `${label} trial ${trial} cuts ${cuts.join(',')} output ${k}`;
            // Min/Max/KMin and their indices: bit-identical, ties included (lowest index first).
            // Sums: the JS dialect's exp (fexp) is within 1e-8 of Math.exp.
            if (exact(def)) assert.equal(o, whole[k], what);
            else close(o, whole[k]!, 1e-7, what);
            close(o, ref[k]!, exact(def) ? 0 : 1e-7, `${what} vs reference`);
          });
        }
      });
    }
  }
}

test('ties across block boundaries keep the lowest index (ArgMin, ArgMax, ArgKMin)', () => {
  // Equal values at j = 1, 3, 4 and 6, cut so that each sits in a different block.
  const f = [[5], [0], [7], [0], [0], [9], [0]];
  const t = { f, g: f.map(() => []) };
  const cuts = [2, 4, 5];
  const run = (n: string, K = 0): Outputs => programs(REDUCTIONS.get(n as 'ArgMin')!, jsDialect, 1, 0, K).split(t, cuts);
  assert.equal(run('ArgMin'), [[1]]);
  assert.equal(run('Min_ArgMin'), [[0], [1]]);
  assert.equal(run('ArgKMin', 4), [[1, 3, 4, 6]]);
  assert.equal(run('KMin_ArgKMin', 5), [[0, 0, 0, 0, 5], [1, 3, 4, 6, 0]]);
  const g = [[1], [9], [3], [9], [2], [9]];
  assert.equal(programs(REDUCTIONS.get('ArgMax')!, jsDialect, 1, 0, 0).split({ f: g, g: g.map(() => []) }, [2, 3, 5]), [[1]]);
});

test('a K-list that is not full (K > terms of a block) merges with its -1 indices left out', () => {
  const def = REDUCTIONS.get('KMin_ArgKMin')!;
  const f = [[3], [1], [2], [1]];
  const got = programs(def, jsDialect, 1, 0, 3).split({ f, g: f.map(() => []) }, [1, 2, 3]);
  assert.equal(got, [[1, 1, 2], [1, 3, 2]]);
});

test('the compensated Sum state carries its compensation through the merge', () => {
  // 2^53 + 1 rounds back to 2^53 in float64: only a compensated merge of the blocks gets 2.
  const def = REDUCTIONS.get('Sum')!;
  const big = 2 ** 53;
  const f = [[big], [1], [1], [-big]];
  const t = { f, g: f.map(() => []) };
  const comp = programs(def, compensated, 1, 0, 0);
  assert.is(comp.W, 2, 'state: sum and compensation');
  assert.equal(comp.split(t, [1, 2, 3]), [[2]]);
  const plain = programs(def, jsDialect, 1, 0, 0);
  assert.is(plain.W, 1, 'float64 JS keeps no compensation');
  assert.equal(plain.split(t, [1, 2, 3]), [[0]]);
});

test.run();
