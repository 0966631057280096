import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { JS_PRELUDE, jsDialect } from '../../src/cpu/dialect.js';
import { kList, kListWide } from '../../src/ops/kmin.js';
import { isWide, type Ix, type Operand } from '../../src/ops/loop.js';
import type { Dialect } from '../../src/ops/op.js';
import { REDUCTIONS, stateWidth, type ReduceCtx } from '../../src/ops/reductions.js';
import { rng } from '../helpers/random.js';

// The K-lists of the KMin family, run through the JS dialect: each dialect's choice of list form
// (scalars or arrays) and insertion, against a sort of the terms. "WGSL choices" is the JS
// dialect under the WGSL name, so the WGSL K-list code (selects) runs here without a GPU.

const wgslChoices: Dialect = { ...jsDialect, name: 'wgsl' };
const dialects: [string, Dialect][] = [
  ['JS', jsDialect],
  ['WGSL choices', wgslChoices],
];

/** Per coordinate k: the K smallest non-NaN values below +Infinity in order, ties by lower j, padded with (Infinity, -1). */
function sortedLists(f: readonly (readonly number[])[], fDim: number, K: number): { vals: number[]; idxs: number[] } {
  const vals: number[] = [];
  const idxs: number[] = [];
  const per = Array.from({ length: fDim }, (_, k) => {
    const kept = f.map((row, j) => ({ v: row[k]!, j })).filter((t) => t.v < Infinity);
    // Array.prototype.sort is stable: equal values keep ascending j.
    return kept.sort((a, b) => (a.v < b.v ? -1 : a.v > b.v ? 1 : 0)).slice(0, K);
  });
  for (let r = 0; r < K; r++)
    for (let k = 0; k < fDim; k++) {
      vals.push(per[k]![r]?.v ?? Infinity);
      idxs.push(per[k]![r]?.j ?? -1);
    }
  return { vals, idxs };
}

const def = REDUCTIONS.get('KMin_ArgKMin')!;

/** The KMin_ArgKMin hooks compiled in JS: whole (one pass) and split (blocks at `cuts`, partial states merged in order). */
function program(d: Dialect, fDim: number, K: number) {
  const c: ReduceCtx = { d, fDim, gDim: 0, K, p: 'a_' };
  const q: ReduceCtx = { ...c, p: 'q_' };
  const W = stateWidth(def, d, fDim, 0, K);
  const f: Operand = { dim: fDim, at: (k) => (typeof k === 'number' && !isWide(d, fDim) ? `f${k}` : `F[j][${k}]`) };
  const loop = ['for (let j = j0; j < j1; j++) {', ...Array.from({ length: fDim }, (_, k) => `const f${k} = F[j][${k}];`), ...def.combine(c, f, f, 'j'), '}'];
  const out = ['const O = [[], []];', ...def.finalize(c, (o: number, k: Ix, e: string) => `O[${o}][${k}] = ${e};`), 'return O;'];
  type Fn = (...a: unknown[]) => number[][];
  const whole = new Function('F', 'j0', 'j1', [JS_PRELUDE, ...def.init(c), ...loop, ...out].join('\n')) as Fn;
  const partial = new Function('F', 'j0', 'j1', 'S', 'at', [JS_PRELUDE, ...def.init(c), ...loop, ...def.save(c, (k, e) => `S[at + ${k}] = ${e};`)].join('\n')) as Fn;
  const merge = new Function(
    'S',
    'B',
    [JS_PRELUDE, ...def.load(c, (k) => `S[${k}]`), 'for (let b = 1; b < B; b++) {', `const at = b * ${W};`, ...def.load(q, (k) => `S[at + ${k}]`), ...def.merge(c, 'q_'), '}', ...out].join('\n'),
  ) as Fn;
  return {
    whole: (F: number[][]) => whole(F, 0, F.length),
    split(F: number[][], cuts: readonly number[]) {
      const bounds = [0, ...cuts, F.length];
      const S = new Float64Array((bounds.length - 1) * W);
      for (let b = 0; b + 1 < bounds.length; b++) partial(F, bounds[b], bounds[b + 1], S, b * W);
      return merge(S, bounds.length - 1);
    },
  };
}

/** Values with many exact ties (a coarse grid), and NaN, +Infinity, -Infinity and -0 sprinkled in. */
function values(r: () => number, n: number, fDim: number): number[][] {
  const special = [NaN, Infinity, -Infinity, -0, 0];
  return Array.from({ length: n }, () => Array.from({ length: fDim }, () => (r() < 0.1 ? special[Math.floor(r() * special.length)]! : Math.round(r() * 12) / 4 - 1)));
}

// Scalar lists (K·D up to the unroll limit), arrays (above it), arrays with a loop over coordinates (D above the JS unrollMax).
const shapes = [
  { fDim: 1, K: 1 },
  { fDim: 1, K: 10 },
  { fDim: 3, K: 4 },
  { fDim: 1, K: 16 },
  { fDim: 1, K: 17 },
  { fDim: 2, K: 20 },
  { fDim: 70, K: 2 },
  { fDim: 1, K: 64 },
  { fDim: 3, K: 33 },
];

for (const [name, d] of dialects) {
  for (const { fDim, K } of shapes) {
    const form = kListWide(d, fDim * K) ? (isWide(d, fDim) ? 'array lists, coordinates looped' : 'array lists') : 'scalar lists';
    test(`${name} (${form}, ${kList(d).insertion} insertion), D=${fDim} K=${K}: whole and merged K-lists equal a stable sort; NaN and +Infinity never enter`, () => {
      const r = rng(fDim * 101 + K);
      const prog = program(d, fDim, K);
      for (let trial = 0; trial < 30; trial++) {
        const n = 1 + Math.floor(r() * 3 * K + 20);
        const F = values(r, n, fDim);
        const want = sortedLists(F, fDim, K);
        const got = prog.whole(F);
        assert.equal(got[1], want.idxs, `indices, trial ${trial}`);
        // Object.is: -0 and 0 tie, and the first one kept is the one that must be reported.
        got[0]!.forEach((v, k) => assert.ok(Object.is(v, want.vals[k]), `value ${k}: got ${v}, want ${want.vals[k]}, trial ${trial}`));
        const cuts = [...new Set(Array.from({ length: 1 + Math.floor(r() * 5) }, () => 1 + Math.floor(r() * (n - 1))))].filter((x) => x < n).sort((a, b) => a - b);
        const split = prog.split(F, cuts);
        assert.equal(split[1], want.idxs, `merged indices, cuts ${cuts}`);
        assert.equal(split[0], got[0], `merged values, cuts ${cuts}`);
      }
    });
  }
}

test('each dialect keeps lists up to 16 entries in scalars, longer ones in arrays (code linear in K)', () => {
  for (const [, d] of dialects) {
    assert.not.ok(kListWide(d, 16));
    assert.ok(kListWide(d, 17));
    const size = (K: number): number => def.combine({ d, fDim: 1, gDim: 0, K, p: 'a_' }, { dim: 1, at: () => 'f' }, { dim: 1, at: () => 'f' }, 'j').join('\n').length;
    // Scalar lists: code proportional to K; arrays: the same code for every K (up to the printed K).
    assert.ok(size(16) < 2.2 * size(8), `${d.name}: ${size(16)} vs ${size(8)}`);
    assert.ok(Math.abs(size(400) - size(20)) < 40, `${d.name}: ${size(400)} vs ${size(20)}`);
  }
});

test.run();
