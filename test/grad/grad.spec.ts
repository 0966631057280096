import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { shutdown } from '../../src/scheduler/backends.js';
import { genred } from '../../src/api/genred.js';
import { LazyTensor, Pm, Vi, Vj } from '../../src/api/lazy.js';
import { ReductionNode } from '../../src/nodes/reduction.js';
import { Node } from '../../src/nodes/node.js';
import { SourceNode } from '../../src/nodes/source.js';
import { source } from '../../src/api/source.js';
import { grad } from '../../src/grad/grad.js';
import { variables, type VarNode } from '../../src/graph/formula.js';
import { resetStats, stats } from '../../src/stats.js';
import { bruteReduce, type Cloud } from '../helpers/brute.js';
import { rng, uniform } from '../helpers/random.js';
import { useTestBackend } from '../helpers/backend.js';

/*
 * Gradients of reductions, run in float32 on the CPU backend, against float64 central finite
 * differences of the brute-force reference (test/helpers/brute.ts), relative error below 1e-3.
 */

const r = rng(2024);
const M = 5;
const N = 7;

/** Float32-rounded random values, so that the float64 reference sees exactly the data the kernels see. */
const f32 = (xs: readonly number[]): number[] => Array.from(Float32Array.from(xs));
const X = f32(uniform(r, M * 2));
const Y = f32(uniform(r, N * 2));
const P = f32(uniform(r, 2, 0.5, 1.5));

/** Relative max-norm error of got against want; `floor` guards components of a vector that is near zero as a whole. */
function relErr(got: ArrayLike<number>, want: readonly number[], floor = 1e-12): number {
  assert.is(got.length, want.length, 'length');
  let err = 0;
  let scale = floor;
  for (let k = 0; k < want.length; k++) {
    err = Math.max(err, Math.abs(got[k]! - want[k]!));
    scale = Math.max(scale, Math.abs(want[k]!));
  }
  return err / scale;
}

/** Rows and width of a source's data as a variable of a formula (a parameter has one row). */
function cloudOf(n: SourceNode, param: boolean, values: number[]): Cloud {
  const s = n.shape;
  if (param) return { rows: 1, dim: values.length, values };
  return { rows: s[0]!, dim: s.length === 1 ? 1 : s[s.length - 1]!, values };
}

/**
 * Float64 d<out, E>/d target by central differences of the brute-force reduction, where `out` is a
 * reduction node reading only sources whose values are given in `data`.
 */
function finiteDiff(out: ReductionNode, data: Map<Node, number[]>, E: readonly number[], target: Node, h = 1e-6): number[] {
  const f = out.formula;
  const g = out.spec.weight ?? null;
  const vars: VarNode[] = [...variables(f), ...(g === null ? [] : variables(g))];
  const K = out.spec.K ?? 0;
  const phi = (): number => {
    const clouds = out.sources.map((s, v) => cloudOf(s as SourceNode, vars.find((u) => u.index === v)?.cat === 2, data.get(s)!));
    const rows = bruteReduce(f, g, out.spec.reduction, out.spec.axis, clouds, vars, K);
    let acc = 0;
    rows.forEach((row, a) => row[out.output]!.forEach((v, k) => (acc += v * E[a * row[out.output]!.length + k]!)));
    return acc;
  };
  const base = data.get(target)!;
  return base.map((_, k) => {
    const at = (t: number): number => {
      const w = [...base];
      w[k]! += t;
      data.set(target, w);
      return phi();
    };
    const d = (at(h) - at(-h)) / (2 * h);
    data.set(target, base);
    return d;
  });
}

interface Setup {
  readonly x: SourceNode;
  readonly y: SourceNode;
  readonly p: SourceNode;
  readonly data: Map<Node, number[]>;
}
function setup(): Setup {
  const x = source(Float32Array.from(X), [M, 2]);
  const y = source(Float32Array.from(Y), [N, 2]);
  const p = source(Float32Array.from(P), [2]);
  return { x, y, p, data: new Map<Node, number[]>([[x, X], [y, Y], [p, P]]) };
}

/** A smooth vector formula of dimension 2 in x_i, y_j and the parameter p, without ties between j. */
const vectorF = (s: Setup): LazyTensor =>
  Vi(s.x).sub(Vj(s.y)).square().mul(Pm(s.p)).add(Vi(s.x).mul(Vj(s.y)).sin());
/** A scalar formula and a positive vector weight, both in x, y and p. */
const scalarF = (s: Setup): LazyTensor => Vi(s.x).sqdist(Vj(s.y)).mul(Pm(s.p).elem(0)).neg().add(Vi(s.x).dot(Vj(s.y)));
const weightV = (s: Setup): LazyTensor => Vi(s.x).sub(Vj(s.y)).square().add(Pm(s.p)).add(0.5);

type Build = (s: Setup, axis: 0 | 1) => Node;
const CASES: Readonly<Record<string, Build>> = {
  Sum: (s, a) => vectorF(s).sum(a),
  LogSumExp: (s, a) => vectorF(s).logsumexp(a),
  'LogSumExp with weight': (s, a) => scalarF(s).logsumexp(a, { weight: weightV(s) }),
  SumSoftMaxWeight: (s, a) => scalarF(s).sumSoftmaxWeight(weightV(s), a),
  Min: (s, a) => vectorF(s).min(a),
  Max: (s, a) => vectorF(s).max(a),
  Min_ArgMin: (s, a) => vectorF(s).minArgmin(a)[0],
  Max_ArgMax: (s, a) => vectorF(s).maxArgmax(a)[0],
  KMin: (s, a) => vectorF(s).kmin(3, a),
  KMin_ArgKMin: (s, a) => vectorF(s).kminArgKmin(3, a)[0],
};

for (const [name, build] of Object.entries(CASES)) {
  for (const axis of [0, 1] as const) {
    test(`${name} over axis ${axis}: gradients in i-, j- and parameter variables match float64 finite differences`, async () => {
      const s = setup();
      const out = build(s, axis) as ReductionNode;
      const value = await out.read();
      const rows = axis === 1 ? M : N;
      const width = out.dim;
      const E = f32(uniform(r, rows * width));
      // The cotangent is given in the output's own shape ([rows, K, D] for KMin).
      const gs = grad(out, [s.x, s.y, s.p], { data: Float32Array.from(E), shape: value.shape });
      for (const [k, target] of [s.x, s.y, s.p].entries()) {
        const got = await gs[k]!.read();
        assert.equal(got.shape, [...(target as SourceNode).shape], `${name}: gradient shaped like its target`);
        const want = finiteDiff(out, s.data, E, target);
        const err = relErr(got.data, want);
        assert.ok(err < 1e-3, `${name} axis ${axis}, target ${['x', 'y', 'p'][k]}: relative error ${err}\n got ${[...got.data]}\nwant ${want}`);
      }
    });
  }
}


test.before(useTestBackend);
test('index outputs (ArgMin, ArgKMin, the indices of Min_ArgMin) have zero gradient', async () => {
  const s = setup();
  for (const out of [vectorF(s).argmin(1), vectorF(s).argKmin(2, 0), vectorF(s).minArgmin(1)[1]]) {
    const [gx] = grad(out, [s.x]);
    const t = await gx!.read();
    assert.equal(t.shape, [M, 2]);
    assert.ok(t.data.every((v) => v === 0));
  }
});

test('Min and KMin of distances: the gradient flows to the nearest points (away from ties)', async () => {
  // 1-D points: x_i's nearest y_j is known; d/dx of min_j (x - y_j)^2 is 2 (x - y_nearest).
  const xs = [0.1, 1.05, 2.4];
  const ys = [0, 1, 2, 3, -1];
  const x = source(Float32Array.from(xs), [3, 1]);
  const y = source(Float32Array.from(ys), [5, 1]);
  const d = Vi(x).sub(Vj(y)).square();
  const [gmin] = grad(d.min(1), [x]);
  const near = (v: number): number[] => [...ys].sort((a, b) => Math.abs(v - a) - Math.abs(v - b));
  assert.ok(relErr((await gmin!.read()).data, xs.map((v) => 2 * (v - near(v)[0]!))) < 1e-6);
  // Sum over the 2 nearest: 2 (x - y1) + 2 (x - y2).
  const [gk] = grad(d.kmin(2, 1), [x]);
  assert.ok(relErr((await gk!.read()).data, xs.map((v) => 2 * (v - near(v)[0]!) + 2 * (v - near(v)[1]!))) < 1e-6);
  const [gy] = grad(d.kmin(2, 1), [y]);
  const wantY = ys.map((yj) => xs.reduce((acc, v) => acc + (near(v).slice(0, 2).includes(yj) ? -2 * (v - yj) : 0), 0));
  assert.ok(relErr((await gy!.read()).data, wantY) < 1e-6, `${[...(await gy!.read()).data]} vs ${wantY}`);
});

// ---- the Gaussian kernel energy L = sum_i b_i . a_i, a_i = sum_j exp(-g |x_i - y_j|^2) c_j ----

const GM = 40;
const GN = 30;
const GD = 3;
const GV = 2;

interface Energy {
  readonly x: number[];
  readonly y: number[];
  readonly b: number[];
  readonly c: number[];
  readonly g: number;
}

/** Closed forms in float64: L, dL/dx, dL/dy, dL/dg. */
function energy(e: Energy): { L: number; dx: number[]; dy: number[]; dg: number } {
  const dx = new Array<number>(GM * GD).fill(0);
  const dy = new Array<number>(GN * GD).fill(0);
  let L = 0;
  let dg = 0;
  for (let i = 0; i < GM; i++) {
    for (let j = 0; j < GN; j++) {
      let d2 = 0;
      for (let k = 0; k < GD; k++) d2 += (e.x[i * GD + k]! - e.y[j * GD + k]!) ** 2;
      let bc = 0;
      for (let v = 0; v < GV; v++) bc += e.b[i * GV + v]! * e.c[j * GV + v]!;
      const w = Math.exp(-e.g * d2) * bc;
      L += w;
      dg -= d2 * w;
      for (let k = 0; k < GD; k++) {
        const t = -2 * e.g * (e.x[i * GD + k]! - e.y[j * GD + k]!) * w;
        dx[i * GD + k]! += t;
        dy[j * GD + k]! -= t;
      }
    }
  }
  return { L, dx, dy, dg };
}

test('Gaussian kernel energy: dL/dx, dL/dy, dL/dg equal their float64 closed forms; Hessian-vector product', async () => {
  const rr = rng(11);
  const e: Energy = {
    x: f32(uniform(rr, GM * GD)),
    y: f32(uniform(rr, GN * GD)),
    b: f32(uniform(rr, GM * GV)),
    c: f32(uniform(rr, GN * GV)),
    g: Math.fround(0.8),
  };
  const x = source(Float32Array.from(e.x), [GM, GD]);
  const y = source(Float32Array.from(e.y), [GN, GD]);
  const b = source(Float32Array.from(e.b), [GM, GV]);
  const c = source(Float32Array.from(e.c), [GN, GV]);
  const g = source(Float32Array.of(e.g), [1]);
  const a = Vi(x).sqdist(Vj(y)).mul(Pm(g)).neg().exp().matmul(c);
  const L = Vi(a).dot(Vi(b)).sum(0);
  const want = energy(e);
  assert.ok(Math.abs((await L.read()).data[0]! - want.L) < 1e-5 * Math.abs(want.L));
  const [dx, dy, dg] = grad(L, [x, y, g]);
  assert.ok(relErr((await dx!.read()).data, want.dx) < 1e-5, 'dL/dx');
  assert.ok(relErr((await dy!.read()).data, want.dy) < 1e-5, 'dL/dy');
  const tg = await dg!.read();
  assert.equal(tg.shape, [1]);
  assert.ok(relErr(tg.data, [want.dg]) < 1e-5, `dL/dg ${tg.data[0]} vs ${want.dg}`);

  // Hessian-vector product: the gradient of (dL/dx . v) in x, against central differences of the
  // closed-form gradient along v.
  const v = f32(uniform(rr, GM * GD));
  const vs = source(Float32Array.from(v), [GM, GD]);
  const [hv] = grad(Vi(dx!).dot(Vi(vs)).sum(0), [x]);
  const h = 1e-4;
  const at = (t: number): number[] => energy({ ...e, x: e.x.map((u, k) => u + t * v[k]!) }).dx;
  const plus = at(h);
  const minus = at(-h);
  const fdHv = plus.map((p, k) => (p - minus[k]!) / (2 * h));
  const got = await hv!.read();
  assert.equal(got.shape, [GM, GD]);
  assert.ok(relErr(got.data, fdHv) < 1e-3, `HVP relative error ${relErr(got.data, fdHv)}`);
});

test('seed check: c = K_xx @ b (Gaussian, sigma 0.1, N = 2000 in the unit square): grad(c, [x], e) equals dense float64', async () => {
  const rr = rng(5);
  const n = 2000;
  const sigma = 0.1;
  const gamma = 0.5 / sigma ** 2;
  const xv = f32(uniform(rr, n * 2, 0, 1));
  const bv = f32(uniform(rr, n * 2));
  const ev = f32(uniform(rr, n * 2));
  const x = source(Float32Array.from(xv), [n, 2]);
  const b = source(Float32Array.from(bv), [n, 2]);
  const cNode = Vi(x).sqdist(Vj(x)).mul(-gamma).exp().matmul(b);
  const [gx] = grad(cNode, [x], { data: Float32Array.from(ev), shape: [n, 2] });
  // d<c, e>/dx_k = -2 gamma sum_j K_kj (x_k - x_j) (e_k . b_j + e_j . b_k): x is both Vi and Vj.
  const want = new Array<number>(n * 2).fill(0);
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < n; j++) {
      const d0 = xv[k * 2]! - xv[j * 2]!;
      const d1 = xv[k * 2 + 1]! - xv[j * 2 + 1]!;
      const K = Math.exp(-gamma * (d0 * d0 + d1 * d1));
      const s = ev[k * 2]! * bv[j * 2]! + ev[k * 2 + 1]! * bv[j * 2 + 1]! + ev[j * 2]! * bv[k * 2]! + ev[j * 2 + 1]! * bv[k * 2 + 1]!;
      want[k * 2]! += -2 * gamma * K * d0 * s;
      want[k * 2 + 1]! += -2 * gamma * K * d1 * s;
    }
  }
  const got = await gx!.read();
  assert.equal(got.shape, [n, 2]);
  const err = relErr(got.data, want);
  assert.ok(err < 1e-3, `max-norm relative error ${err}`);
});

test('dispatches: the gradient in x of a Sum reduction is one fused reduction', async () => {
  const s = setup();
  const a = Vi(s.x).sqdist(Vj(s.y)).neg().exp().matmul(Vj(s.y));
  // A Sum's gradient needs no forward value: reading it runs exactly its own kernel, even with a unread.
  const [gx] = grad(a, [s.x]);
  resetStats();
  await gx!.read();
  assert.is(stats().dispatches, 1, 'one dispatch for d sum(a)/dx');
  // LogSumExp's gradient reads the forward value: once that is computed, the gradient is one dispatch too.
  const l = Vi(s.x).sqdist(Vj(s.y)).neg().logsumexp(1);
  await l.read();
  const [gl] = grad(l, [s.x]);
  resetStats();
  await gl!.read();
  assert.is(stats().dispatches, 1, 'one dispatch for d lse/dx after the forward pass');
  // A parameter's gradient sums over both indices: over j in the fused kernel, then over the rows.
  const [gp] = grad(Vi(s.x).sqdist(Vj(s.y)).mul(Pm(s.p).elem(0)).neg().exp().sum(1), [s.p]);
  resetStats();
  await gp!.read();
  assert.is(stats().dispatches, 2, 'two dispatches for a parameter');
});

test('gradient nodes recompute when a source is set', async () => {
  const x = source(Float32Array.of(0.5, -0.25), [2, 1]);
  const y = source(Float32Array.of(0, 1, 2), [3, 1]);
  const [gx] = grad(Vi(x).sub(Vj(y)).square().sum(1), [x]);
  const sum = (xv: number): number => [0, 1, 2].reduce((acc, yv) => acc + 2 * (xv - yv), 0);
  assert.ok(relErr((await gx!.read()).data, [sum(0.5), sum(-0.25)]) < 1e-6);
  x.set(Float32Array.of(3, 4));
  assert.ok(relErr((await gx!.read()).data, [sum(3), sum(4)]) < 1e-6);
  y.set(Float32Array.of(1, 1), [2, 1]);
  assert.ok(relErr((await gx!.read()).data, [4 * 2, 6 * 2]) < 1e-6);
});

test('gradient nodes are observable: a set() emits the recomputed gradient', async () => {
  const x = source(Float32Array.of(0.5, -0.25), [2, 1]);
  const y = source(Float32Array.of(0, 1, 2), [3, 1]);
  const [gx] = grad(Vi(x).sub(Vj(y)).square().sum(1), [x]);
  const seen: number[][] = [];
  const sub = gx!.observe().subscribe((t) => seen.push([...t.data]));
  const until = async (n: number): Promise<void> => {
    for (let k = 0; k < 200 && seen.length < n; k++) await new Promise((res) => setTimeout(res, 5));
  };
  await until(1);
  x.set(Float32Array.of(1, 2));
  await until(2);
  sub.unsubscribe();
  assert.ok(seen.length >= 2, `${seen.length} emissions`);
  assert.ok(relErr(seen[seen.length - 1]!, [2 * (3 - 3), 2 * (6 - 3)]) < 1e-6, `${seen[seen.length - 1]}`);
});

test('extents are kept when the gradient formula loses an index: d/dx sum_j (x_i + y_j) = N', async () => {
  const x = source(Float32Array.from(X), [M, 2]);
  const y = source(Float32Array.from(Y), [N, 2]);
  const p = source(Float32Array.from(P), [2]);
  const [gx, gy] = grad(Vi(x).add(Vj(y)).sum(1), [x, y]);
  assert.equal([...(await gx!.read()).data], new Array(M * 2).fill(N));
  assert.equal([...(await gy!.read()).data], new Array(N * 2).fill(M));
  // An elementwise map (no j): d/da sum of (a_i + b_i) is ones of a's shape, M rows.
  const b = source(Float32Array.from(X.map((v) => 2 * v)), [M, 2]);
  const [ga] = grad(Vi(x).add(Vi(b)).sum(1), [x]);
  const ta = await ga!.read();
  assert.equal(ta.shape, [M, 2]);
  assert.equal([...ta.data], new Array(M * 2).fill(1));
  // A parameter: sum over both indices, M * N.
  const [gp] = grad(Vi(x).add(Vj(y)).add(Pm(p)).sum(1), [p]);
  const tp = await gp!.read();
  assert.equal(tp.shape, [2]);
  assert.equal([...tp.data], [M * N, M * N]);
});

test('second order through LogSumExp (its gradient reads its own output): Hessian-vector product', async () => {
  // L = sum_i log sum_j exp(-|x_i - y_j|^2); dL/dx_i = sum_j p_ij (-2)(x_i - y_j).
  const rr = rng(77);
  const xs = f32(uniform(rr, M * 2));
  const v = f32(uniform(rr, M * 2));
  const gradAt = (xv: readonly number[]): number[] => {
    const out: number[] = [];
    for (let i = 0; i < M; i++) {
      const w = Array.from({ length: N }, (_, j) => Math.exp(-((xv[i * 2]! - Y[j * 2]!) ** 2 + (xv[i * 2 + 1]! - Y[j * 2 + 1]!) ** 2)));
      const z = w.reduce((a, b) => a + b, 0);
      for (let k = 0; k < 2; k++) out.push(w.reduce((a, wj, j) => a + (wj / z) * -2 * (xv[i * 2 + k]! - Y[j * 2 + k]!), 0));
    }
    return out;
  };
  const x = source(Float32Array.from(xs), [M, 2]);
  const y = source(Float32Array.from(Y), [N, 2]);
  const vs = source(Float32Array.from(v), [M, 2]);
  const lse = Vi(x).sqdist(Vj(y)).neg().logsumexp(1);
  const [gx] = grad(Vi(lse).sum(0), [x]);
  assert.ok(relErr((await gx!.read()).data, gradAt(xs)) < 1e-5, 'first order');
  const [hv] = grad(Vi(gx!).dot(Vi(vs)).sum(0), [x]);
  const h = 1e-5;
  const plus = gradAt(xs.map((u, k) => u + h * v[k]!));
  const minus = gradAt(xs.map((u, k) => u - h * v[k]!));
  const want = plus.map((q, k) => (q - minus[k]!) / (2 * h));
  const err = relErr((await hv!.read()).data, want);
  assert.ok(err < 1e-3, `HVP relative error ${err}`);
});

test('targets the output does not depend on get zeros of their shape; the output itself gets gradOutput', async () => {
  const s = setup();
  const other = source(Float32Array.of(1, 2, 3), [3]);
  const a = Vi(s.x).sum(-1).sum(1);
  const [z, self] = grad(a, [other, a], { data: Float32Array.from([1, 2, 3, 4, 5]), shape: [M, 1] });
  const tz = await z!.read();
  assert.equal(tz.shape, [3]);
  assert.equal([...tz.data], [0, 0, 0]);
  assert.equal([...(await self!.read()).data], [1, 2, 3, 4, 5]);
});

test('Grad(F, x, e) in a genred formula string matches finite differences', async () => {
  const aliases = ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(1)', 'e = Vi(1)'];
  const op = genred('Grad(Exp(-SqDist(x,y))*b, x, e)', aliases, { reduction: 'Sum', axis: 1 });
  const B = f32(uniform(r, N));
  const Ev = f32(uniform(r, M));
  const got = await op(
    { data: Float32Array.from(X), shape: [M, 2] },
    { data: Float32Array.from(Y), shape: [N, 2] },
    { data: Float32Array.from(B), shape: [N, 1] },
    { data: Float32Array.from(Ev), shape: [M, 1] },
  );
  assert.equal(got.shape, [M, 2]);
  // d/dx_i of sum_j e_i exp(-|x_i - y_j|^2) b_j, by central differences of the float64 sum.
  const F = (xi: number[], i: number): number =>
    Array.from({ length: N }, (_, j) => Math.exp(-((xi[0]! - Y[j * 2]!) ** 2 + (xi[1]! - Y[j * 2 + 1]!) ** 2)) * B[j]! * Ev[i]!).reduce(
      (a, v) => a + v,
      0,
    );
  const want = Array.from({ length: M * 2 }, (_, q) => {
    const i = Math.floor(q / 2);
    const xi = X.slice(i * 2, i * 2 + 2);
    const h = 1e-6;
    const p = [...xi];
    const m = [...xi];
    p[q % 2]! += h;
    m[q % 2]! -= h;
    return (F(p, i) - F(m, i)) / (2 * h);
  });
  assert.ok(relErr(got.data, want) < 1e-3, `${[...got.data]} vs ${want}`);
  // A variable F does not depend on gives zeros of its dimension.
  const zero = genred('Grad(Exp(-SqDist(x,y)), b, e)', aliases, { reduction: 'Sum', axis: 1 });
  const tz = await zero(
    { data: Float32Array.from(X), shape: [M, 2] },
    { data: Float32Array.from(Y), shape: [N, 2] },
    { data: Float32Array.from(B), shape: [N, 1] },
    { data: Float32Array.from(Ev), shape: [M, 1] },
  );
  assert.ok(tz.data.every((v) => v === 0));
});

test('Grad: bad arguments are errors naming Grad', () => {
  const aliases = ['x = Vi(2)', 'y = Vj(2)', 'e = Vi(1)'];
  assert.throws(() => genred('Grad(SqDist(x,y), x)', aliases, { reduction: 'Sum', axis: 1 }), /Grad takes 3 arguments/);
  assert.throws(() => genred('Grad(SqDist(x,y), x+y, e)', aliases, { reduction: 'Sum', axis: 1 }), /Grad: the second argument must be a variable/);
  assert.throws(() => genred('Grad(SqDist(x,y), x, x)', aliases, { reduction: 'Sum', axis: 1 }), /Grad at column 1/);
});

test.after(async () => {
  await shutdown();
});

test.run();
