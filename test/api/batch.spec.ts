import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shutdown } from '../../src/scheduler/backends.js';
import { genred } from '../../src/api/genred.js';
import { kernelSolve } from '../../src/api/kernel-solve.js';
import { Pm, Vi, Vj } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { grad } from '../../src/grad/grad.js';
import { DimensionError } from '../../src/errors.js';
import { resetStats, stats } from '../../src/stats.js';
import { rng, uniform } from '../helpers/random.js';
import { useTestBackend } from '../helpers/backend.js';

/*
 * Leading batch dimensions, as pykeops: arguments of shape [...batch, n, D] (parameters
 * [...batch, D]) broadcast their batch dims NumPy-style, the result is [...batch, rows, width],
 * and the whole batch is one kernel dispatch. References: float64 brute force per batch, here.
 */

const r = rng(77);
type T = { data: Float32Array; shape: number[] };
const rand = (shape: number[], lo = -1, hi = 1): T => ({ data: Float32Array.from(uniform(r, shape.reduce((a, b) => a * b, 1), lo, hi)), shape });

/** Row `row` (of `rows` per batch, `dim` wide) of t for broadcast batch index `bi` of batch shape `full`: pykeops's broadcasting by hand. */
function rowOf(t: T, full: readonly number[], bi: number, row: number, dim: number, param = false): number[] {
  const tb = t.shape.slice(0, t.shape.length - (param ? 1 : 2));
  const rows = param ? 1 : t.shape[t.shape.length - 2]!;
  const idx: number[] = [];
  let rest = bi;
  for (let k = full.length - 1; k >= 0; k--) {
    idx.unshift(rest % full[k]!);
    rest = Math.floor(rest / full[k]!);
  }
  let off = 0;
  const pad = full.length - tb.length;
  for (let k = 0; k < tb.length; k++) off = off * tb[k]! + (tb[k] === 1 ? 0 : idx[pad + k]!);
  const at = (off * rows + row) * dim;
  return Array.from(t.data.subarray(at, at + dim));
}

const sqdist = (a: number[], b: number[]): number => a.reduce((s, v, k) => s + (v - b[k]!) ** 2, 0);
const count = (s: readonly number[]): number => s.reduce((a, b) => a * b, 1);

function close(got: ArrayLike<number>, want: readonly number[], tol: number, what: string): void {
  assert.is(got.length, want.length, `${what}: length`);
  let scale = 1e-12;
  let err = 0;
  for (let k = 0; k < want.length; k++) {
    scale = Math.max(scale, Math.abs(want[k]!));
    err = Math.max(err, Math.abs(got[k]! - want[k]!));
  }
  assert.ok(err / scale < tol, `${what}: relative error ${err / scale}`);
}

test.before(useTestBackend);
test.after(shutdown);

test('Gaussian sum of (2,3,M,D) against (2,1,N,D) with a batched weight and parameter: one dispatch, (2,3,M,2)', async () => {
  const [M, N, D] = [9, 11, 3];
  const x = rand([2, 3, M, D]);
  const y = rand([2, 1, N, D]);
  const b = rand([2, 1, N, 2]);
  const g = rand([2, 1, 1], 0.5, 2);
  const op = genred('Exp(-g*SqDist(x,y))*b', ['x = Vi(3)', 'y = Vj(3)', 'b = Vj(2)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1 });
  resetStats();
  const out = await op(x, y, b, g);
  assert.is(stats().dispatches, 1);
  assert.equal(out.shape, [2, 3, M, 2]);
  const full = [2, 3];
  const want: number[] = [];
  for (let bi = 0; bi < 6; bi++) {
    for (let i = 0; i < M; i++) {
      const acc = [0, 0];
      const gi = rowOf(g, full, bi, 0, 1, true)[0]!;
      for (let j = 0; j < N; j++) {
        const k = Math.exp(-gi * sqdist(rowOf(x, full, bi, i, D), rowOf(y, full, bi, j, D)));
        const bj = rowOf(b, full, bi, j, 2);
        acc[0] += k * bj[0]!;
        acc[1] += k * bj[1]!;
      }
      want.push(...acc);
    }
  }
  close(out.data, want, 1e-5, 'sum');
});

test('(1,N,D) against (B,M,D): LogSumExp and Min_ArgMin over j per batch', async () => {
  const [B, M, N, D] = [4, 6, 13, 2];
  const x = rand([B, M, D]);
  const y = rand([1, N, D]);
  const full = [B];
  const lse = genred('-SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'LogSumExp', axis: 1 });
  const mam = genred('SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'Min_ArgMin', axis: 1 });
  resetStats();
  const l = await lse(x, y);
  const [mv, mi] = await mam(x, y);
  assert.is(stats().dispatches, 2);
  assert.equal(l.shape, [B, M, 1]);
  assert.equal(mi.shape, [B, M, 1]);
  const wantL: number[] = [];
  const wantV: number[] = [];
  const wantI: number[] = [];
  for (let bi = 0; bi < B; bi++) {
    for (let i = 0; i < M; i++) {
      const d = Array.from({ length: N }, (_, j) => sqdist(rowOf(x, full, bi, i, D), rowOf(y, full, bi, j, D)));
      const m = Math.max(...d.map((v) => -v));
      wantL.push(m + Math.log(d.reduce((s, v) => s + Math.exp(-v - m), 0)));
      const best = d.indexOf(Math.min(...d));
      wantV.push(d[best]!);
      wantI.push(best);
    }
  }
  close(l.data, wantL, 1e-5, 'logsumexp');
  close(mv.data, wantV, 1e-5, 'min');
  assert.equal(Array.from(mi.data), wantI);
});

test('axis 0 per batch: sum over i, and ArgKMin K=2 over i', async () => {
  const [B, M, N, D] = [3, 10, 5, 2];
  const x = rand([B, M, D]);
  const y = rand([B, N, D]);
  const full = [B];
  const sum = genred('Exp(-SqDist(x,y))', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'Sum', axis: 0 });
  const knn = genred('SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'ArgKMin', axis: 0, K: 2 });
  const s = await sum(x, y);
  const k = await knn(x, y);
  assert.equal(s.shape, [B, N, 1]);
  assert.equal(k.shape, [B, N, 2]);
  const wantS: number[] = [];
  const wantK: number[] = [];
  for (let bi = 0; bi < B; bi++) {
    for (let j = 0; j < N; j++) {
      const d = Array.from({ length: M }, (_, i) => sqdist(rowOf(x, full, bi, i, D), rowOf(y, full, bi, j, D)));
      wantS.push(d.reduce((a, v) => a + Math.exp(-v), 0));
      const order = d.map((v, i) => [v, i] as const).sort((a, b2) => a[0] - b2[0] || a[1] - b2[1]);
      wantK.push(order[0]![1], order[1]![1]);
    }
  }
  close(s.data, wantS, 1e-5, 'sum over i');
  assert.equal(Array.from(k.data), wantK);
});

test('a batch large enough for the worker pool (chunks cross batches) and new batch sizes reuse the compiled kernel', async () => {
  const [M, N, D] = [301, 300, 2];
  const op = genred('Exp(-SqDist(x,y))', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'Sum', axis: 1 });
  for (const B of [4, 3]) {
    const x = rand([B, M, D]);
    const y = rand([B, N, D]);
    resetStats();
    const out = await op(x, y);
    assert.is(stats().dispatches, 1, `B = ${B}: one dispatch`);
    if (B === 3) assert.is(stats().pipelinesCompiled, 0, 'a new batch size compiles nothing');
    const want: number[] = [];
    for (let bi = 0; bi < B; bi++) {
      for (let i = 0; i < M; i++) {
        let acc = 0;
        for (let j = 0; j < N; j++) acc += Math.exp(-sqdist(rowOf(x, [B], bi, i, D), rowOf(y, [B], bi, j, D)));
        want.push(acc);
      }
    }
    close(out.data, want, 1e-5, `B = ${B}`);
  }
});

test('several variables of one category with different broadcast patterns', async () => {
  const [M, N] = [7, 8];
  const x = rand([2, 3, M, 1]);
  const u = rand([1, 3, M, 1]);
  const y = rand([2, 1, N, 1]);
  const op = genred('(x+u)*y', ['x = Vi(1)', 'u = Vi(1)', 'y = Vj(1)'], { reduction: 'Max', axis: 1 });
  const out = await op(x, u, y);
  assert.equal(out.shape, [2, 3, M, 1]);
  const want: number[] = [];
  for (let bi = 0; bi < 6; bi++) {
    for (let i = 0; i < M; i++) {
      const xi = rowOf(x, [2, 3], bi, i, 1)[0]! + rowOf(u, [2, 3], bi, i, 1)[0]!;
      want.push(Math.max(...Array.from({ length: N }, (_, j) => xi * rowOf(y, [2, 3], bi, j, 1)[0]!)));
    }
  }
  close(out.data, want, 1e-6, 'max');
});

test('LazyTensor over batched sources: shape, sum and matmul per batch, one dispatch', async () => {
  const [M, N, D] = [6, 5, 2];
  const xd = rand([3, M, D]);
  const yd = rand([1, N, D]);
  const bd = rand([3, N, 1]);
  const x = source(xd);
  const y = source(yd);
  const K = Vi(x).sqdist(Vj(y)).mul(Pm(0.5)).neg().exp();
  assert.equal(K.shape, [3, M, N]);
  const a = K.matmul(source(bd));
  assert.equal(a.staticShape(), [3, M, 1]);
  resetStats();
  const t = await a.read();
  assert.is(stats().dispatches, 1);
  assert.equal(t.shape, [3, M, 1]);
  const want: number[] = [];
  for (let bi = 0; bi < 3; bi++) {
    for (let i = 0; i < M; i++) {
      let acc = 0;
      for (let j = 0; j < N; j++) acc += Math.exp(-0.5 * sqdist(rowOf(xd, [3], bi, i, D), rowOf(yd, [3], bi, j, D))) * rowOf(bd, [3], bi, j, 1)[0]!;
      want.push(acc);
    }
  }
  close(t.data, want, 1e-5, 'matmul');
});

test('batch dims that do not broadcast: a DimensionError naming both arguments and shapes', async () => {
  const op = genred('SqDist(x,y)', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 });
  const x = rand([2, 3, 4, 1]);
  const y = rand([3, 1, 5, 1]);
  try {
    await op(x, y);
    assert.unreachable('should have thrown');
  } catch (e) {
    assert.instance(e, DimensionError);
    const msg = (e as Error).message;
    assert.match(msg, "'x' (argument 0) [2, 3]");
    assert.match(msg, "'y' (argument 1) [3, 1]");
  }
  const g = genred('g*x', ['x = Vi(1)', 'g = Pm(1)'], { reduction: 'Sum', axis: 1 });
  const err = await g(rand([2, 4, 1]), rand([3, 1])).then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, DimensionError, 'a parameter batch [3] against [2]');
});

test('a zero-sized batch gives an empty result of the broadcast shape', async () => {
  const op = genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 });
  const out = await op(rand([0, 4, 1]), rand([1, 3, 1]));
  assert.equal(out.shape, [0, 4, 1]);
  assert.is(out.data.length, count(out.shape));
});

test('gradients of a batched reduction vs float64 finite differences: broadcast inputs get gradients summed over their broadcast dims', async () => {
  const [M, N, D] = [4, 5, 2];
  const xd = rand([2, 3, M, D]);
  const yd = rand([2, 1, N, D]);
  const bd = rand([1, N, 1]);
  const gd = rand([2, 1, 1], 0.5, 1.5);
  const [x, y, b, g] = [source(xd), source(yd), source(bd), source(gd)];
  const a = Vi(x).sqdist(Vj(y)).mul(Pm(g)).neg().exp().mul(Vj(b)).sum(1);
  const [dx, dy, db, dg] = grad(a, [x, y, b, g]);
  resetStats();
  const got = await Promise.all([dx!, dy!, db!, dg!].map((n) => n.read()));
  // One fused reduction per input (the parameter's adds one sum over rows), never one per batch.
  assert.ok(stats().dispatches <= 5, `dispatches ${stats().dispatches}`);
  const full = [2, 3];
  /** The loss sum(a) in float64, by brute force over every batch, row and term. */
  const loss = (X: T, Y: T, Bw: T, G: T): number => {
    let s = 0;
    for (let bi = 0; bi < 6; bi++) {
      const gi = rowOf(G, full, bi, 0, 1, true)[0]!;
      for (let i = 0; i < M; i++) {
        for (let j = 0; j < N; j++) s += Math.exp(-gi * sqdist(rowOf(X, full, bi, i, D), rowOf(Y, full, bi, j, D))) * rowOf(Bw, full, bi, j, 1)[0]!;
      }
    }
    return s;
  };
  const args = [xd, yd, bd, gd];
  args.forEach((arg, k) => {
    const fd: number[] = [];
    for (let e = 0; e < arg.data.length; e++) {
      const at = (h: number): number => {
        const copy = args.map((t) => ({ data: Float64Array.from(t.data) as unknown as Float32Array, shape: t.shape }));
        copy[k]!.data[e]! += h;
        return loss(copy[0]!, copy[1]!, copy[2]!, copy[3]!);
      };
      fd.push((at(1e-5) - at(-1e-5)) / 2e-5);
    }
    assert.equal(got[k]!.shape, arg.shape, `gradient ${k}: shape of its input`);
    close(got[k]!.data, fd, 1e-3, `gradient ${k}`);
  });
});

test('kernelSolve with batch dims: each batch solves its own (alpha Id + K) c = b (float64 residual)', async () => {
  const [n, B] = [40, 3];
  const x = rand([B, n, 2], 0, 1);
  const b = rand([1, n, 1]);
  const g = rand([B, 1], 2, 8);
  const alpha = 0.1;
  const solve = kernelSolve('Exp(-g*SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(1)', 'g = Pm(1)'], 'b', { axis: 1, alpha, tol: 1e-6 });
  const c = await solve(x, x, b, g);
  assert.equal(c.shape, [B, n, 1]);
  for (let bi = 0; bi < B; bi++) {
    const gi = rowOf(g, [B], bi, 0, 1, true)[0]!;
    const res: number[] = [];
    for (let i = 0; i < n; i++) {
      let s = alpha * c.data[bi * n + i]!;
      for (let j = 0; j < n; j++) s += Math.exp(-gi * sqdist(rowOf(x, [B], bi, i, 2), rowOf(x, [B], bi, j, 2))) * c.data[bi * n + j]!;
      res.push(s);
    }
    close(res, Array.from({ length: n }, (_, i) => rowOf(b, [B], bi, i, 1)[0]!), 1e-4, `batch ${bi}: (alpha Id + K) c vs b`);
  }
});

test('LazyTensor.solve refuses batch dims with a DimensionError that points to kernelSolve', async () => {
  const x = source(rand([2, 10, 2]));
  const c = Vi(x).sqdist(Vj(x)).neg().exp().solve(rand([2, 10, 1]), { alpha: 0.1 });
  const err = await c.read().then(
    () => undefined,
    (e: unknown) => e,
  );
  assert.instance(err, DimensionError);
  assert.match((err as Error).message, 'kernelSolve');
});

test('five batch axes (more than the WebGPU kernel decodes: run batch by batch there) give the same values', async () => {
  const [M, N] = [3, 4];
  const x = rand([2, 1, 2, 1, 2, M, 1]);
  const y = rand([1, 2, 1, 1, 2, N, 1]);
  const full = [2, 2, 2, 1, 2];
  const op = genred('Exp(-SqDist(x,y))', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 });
  const out = await op(x, y);
  assert.equal(out.shape, [...full, M, 1]);
  const want: number[] = [];
  for (let bi = 0; bi < count(full); bi++) {
    for (let i = 0; i < M; i++) {
      let acc = 0;
      for (let j = 0; j < N; j++) acc += Math.exp(-sqdist(rowOf(x, full, bi, i, 1), rowOf(y, full, bi, j, 1)));
      want.push(acc);
    }
  }
  close(out.data, want, 1e-5, 'rank-5 batch');
});

test('a [1, D] parameter is the unbatched form (API.md); a variable with an explicit leading 1 is a batch of one', async () => {
  const op = genred('g*x', ['x = Vi(2)', 'g = Pm(2)'], { reduction: 'Sum', axis: 1 });
  const x = rand([3, 2]);
  const g = { data: Float32Array.of(2, -1), shape: [1, 2] };
  const plain = await op(x, g);
  assert.equal(plain.shape, [3, 2]);
  close(plain.data, Array.from(x.data, (v, k) => v * (k % 2 === 0 ? 2 : -1)), 1e-7, '[1, D] parameter');
  const one = await op({ data: x.data, shape: [1, 3, 2] }, g);
  assert.equal(one.shape, [1, 3, 2]);
  close(one.data, Array.from(plain.data), 1e-7, 'batch of one');
});

test.run();
