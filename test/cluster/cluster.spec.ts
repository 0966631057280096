/**
 * The cluster backend against the local CPU backend, on a real nats-server (JetStream on) and
 * three `kernelflow-worker` processes started here: every reduction family over both kinds of
 * split (blocks of kept rows, blocks of the reduced axis), both axes, ties across blocks, a kernel
 * solve, arrays sent once per version, and large arrays through the object store.
 * Without nats-server the suite is skipped with a notice, except with CI=true where it fails.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { genred, init, kernelSolve, shutdown, source, Vi, Vj, type GenredOptions, type ReductionName, type Tensor, type TensorLike } from '../../src/index.js';
import { natsConnection } from '../../src/cluster/connection.js';
import { arrayAt, decodeFrame, encodeFrame, PROTOCOL, SHARD_SUBJECT, type ShardReply, type ShardRequest } from '../../src/cluster/wire.js';
import { rng, uniform } from '../helpers/random.js';
import { natsServerFor, startCluster, type TestCluster } from '../helpers/nats-cluster.js';

const available = natsServerFor('the cluster tests');

let cluster: TestCluster | undefined;

test.before(async () => {
  if (!available) return;
  cluster = await startCluster(3);
  // Small shards (so that these small problems are split over all three workers), a short stall timeout.
  await init({ backend: 'cpu', servers: cluster.servers, cluster: { minShardPairs: 1000, stallTimeoutMs: 3000 } });
});

test.after(async () => {
  await shutdown();
  await cluster?.stop();
});

const cloud = (r: () => number, n: number, d: number): TensorLike => ({ data: Float32Array.from(uniform(r, n * d)), shape: [n, d] });

/** Close in float32 terms (relative to the magnitude of the reference), indices exact. */
function agree(got: Tensor, want: Tensor, what: string, tol = 2e-5): void {
  assert.equal(got.shape, want.shape, `${what}: shape`);
  assert.is(got.data.constructor, want.data.constructor, `${what}: dtype`);
  if (want.data instanceof Int32Array) {
    assert.equal([...got.data], [...want.data], `${what}: indices`);
    return;
  }
  let scale = 0;
  for (const v of want.data) if (Number.isFinite(v)) scale = Math.max(scale, Math.abs(v));
  for (let k = 0; k < want.data.length; k++) {
    const a = got.data[k]!;
    const b = want.data[k]!;
    if (a === b || (Number.isNaN(a) && Number.isNaN(b))) continue;
    assert.ok(Math.abs(a - b) <= tol * Math.max(1, scale), `${what}: value ${k}: ${a} vs ${b}`);
  }
}

/** The workers' stderr since `marks` once each line matching `re` has arrived (the pipe lags the replies), or after 3 s. */
async function logsSince(marks: readonly number[], re: RegExp, count = cluster!.workers.length): Promise<string[]> {
  const until = Date.now() + 3000;
  for (;;) {
    const logs = cluster!.workers.map((w, k) => w.log().slice(marks[k]));
    if (logs.filter((l) => re.test(l)).length >= count || Date.now() > until) return logs;
    await new Promise((r) => setTimeout(r, 20));
  }
}
const mark = (): number[] => cluster!.workers.map((w) => w.log().length);

const asList = (r: Tensor | [Tensor, Tensor]): Tensor[] => (Array.isArray(r) ? r : [r]);

interface Case {
  readonly reduction: ReductionName;
  readonly formula: string;
  readonly formula2?: string;
  readonly K?: number;
}

const CASES: readonly Case[] = [
  { reduction: 'Sum', formula: 'Exp(-g*SqDist(x,y))*b' },
  { reduction: 'LogSumExp', formula: '-g*SqDist(x,y)' },
  { reduction: 'LogSumExp', formula: '-g*SqDist(x,y)', formula2: 'b' },
  { reduction: 'SumSoftMaxWeight', formula: '-g*SqDist(x,y)', formula2: 'b' },
  { reduction: 'Min', formula: 'SqDist(x,y)' },
  { reduction: 'ArgMin', formula: 'SqDist(x,y)' },
  { reduction: 'Max_ArgMax', formula: '(x|y)' },
  { reduction: 'KMin', formula: 'SqDist(x,y)', K: 5 },
  { reduction: 'ArgKMin', formula: 'SqDist(x,y)', K: 5 },
  { reduction: 'KMin_ArgKMin', formula: 'Abs(x-y)', K: 3 },
];
const ALIASES = ['x = Vi(3)', 'y = Vj(3)', 'b = Vj(2)', 'g = Pm(1)'];

/** Runs a case locally and on the cluster (a fresh cluster config per split), returns both. */
async function both(c: Case, axis: 0 | 1, args: readonly TensorLike[]): Promise<[Tensor[], Tensor[]]> {
  const opts = (backend: 'cpu' | 'cluster'): GenredOptions<ReductionName> => ({
    reduction: c.reduction,
    axis,
    backend,
    ...(c.K === undefined ? {} : { K: c.K }),
    ...(c.formula2 === undefined ? {} : { formula2: c.formula2 }),
  });
  const local = asList(await genred(c.formula, ALIASES, opts('cpu'))(...args));
  const remote = asList(await genred(c.formula, ALIASES, opts('cluster'))(...args));
  return [local, remote];
}

for (const split of ['rows', 'reduced'] as const) {
  test(`every reduction family on 3 workers (split: ${split}, both axes) agrees with the CPU backend`, async () => {
    if (!available) return;
    await init({ backend: 'cpu', servers: cluster!.servers, cluster: { split, minShardPairs: 1000, stallTimeoutMs: 3000 } });
    const r = rng(split === 'rows' ? 1 : 2);
    const M = 700;
    const half = cloud(r, 450, 3);
    // y repeats its first 450 points: every nearest neighbour, minimum and K-list has ties
    // between j and j + 450, in different blocks of a reduced split; the lower index must win.
    const y: TensorLike = { data: Float32Array.from([...half.data, ...half.data]), shape: [900, 3] };
    const x = cloud(r, M, 3);
    // Positive weights: a weighted LogSumExp of mixed-sign weights is log of a negative number for some rows.
    const bj = { data: Float32Array.from(uniform(r, 900 * 2, 0.1, 1)), shape: [900, 2] };
    const bi = { data: Float32Array.from(uniform(r, M * 2, 0.1, 1)), shape: [M, 2] };
    const g = { data: Float32Array.of(2), shape: [1] };
    for (const c of CASES) {
      for (const axis of [1, 0] as const) {
        // Over axis 0 the roles swap: y is the kept side and x (with a b of M rows) is reduced.
        const args = axis === 1 ? [x, y, bj, g] : [y, x, bi, g];
        const [local, remote] = await both(c, axis, args);
        local.forEach((t, o) => agree(remote[o]!, t, `${c.reduction}${c.formula2 === undefined ? '' : ' weighted'} axis ${axis} output ${o}`));
      }
    }
  });
}

for (const split of ['rows', 'reduced'] as const) {
  test(`float64 data computes in float64 on the workers (split: ${split}): Float64Array results within 1e-12 of the local CPU backend`, async () => {
    if (!available) return;
    await init({ backend: 'cpu', servers: cluster!.servers, cluster: { split, minShardPairs: 1000, stallTimeoutMs: 3000 } });
    const r = rng(split === 'rows' ? 11 : 12);
    const f64 = (n: number, d: number, lo = -1, hi = 1): TensorLike => ({ data: Float64Array.from(uniform(r, n * d, lo, hi)), shape: [n, d] });
    const args = [f64(300, 3), f64(400, 3), f64(400, 2, 0.1, 1), { data: Float64Array.of(2), shape: [1] }];
    for (const c of CASES) {
      const [local, remote] = await both(c, 1, args);
      local.forEach((t, o) => {
        if (!(t.data instanceof Int32Array)) assert.instance(remote[o]!.data, Float64Array, `${c.reduction} output ${o}`);
        agree(remote[o]!, t, `float64 ${c.reduction}${c.formula2 === undefined ? '' : ' weighted'} output ${o}`, 1e-12);
      });
    }
  });
}

test('the shards really went to all three workers, and arrays travel once per version', async () => {
  if (!available) return;
  await init({ backend: 'cpu', servers: cluster!.servers, cluster: { split: 'rows', minShardPairs: 1000 } });
  const r = rng(3);
  const x = source(cloud(r, 600, 3), 'x');
  const y = source(cloud(r, 800, 3), 'y');
  const a = Vi(x).sqdist(Vj(y)).neg().exp().sum(1, { backend: 'cluster' });
  const m1 = mark();
  await a.read();
  const first = await logsSince(m1, /done/);
  for (const [k, l] of first.entries()) assert.match(l, /start rows \d+-\d+ terms 0-800 jobs Sum arrays cached 0 inline 2 store 0/, `worker ${k + 1} got a shard with its arrays`);
  // The same data again: every worker has both arrays already.
  const m2 = mark();
  x.set(Float32Array.from(x.value!.data), [600, 3]); // a new version with the same content
  await a.read();
  for (const [k, l] of (await logsSince(m2, /done/)).entries()) assert.match(l, /arrays cached 2 inline 0 store 0/, `worker ${k + 1} reused both arrays`);
  // A changed y travels once more; x does not.
  const m3 = mark();
  y.set(cloud(r, 800, 3).data as Float32Array);
  const got = await a.read();
  for (const [k, l] of (await logsSince(m3, /done/)).entries()) assert.match(l, /arrays cached 1 inline 1 store 0/, `worker ${k + 1} got only the new y`);
  const want = await Vi(x).sqdist(Vj(y)).neg().exp().sum(1, { backend: 'cpu' }).read();
  agree(got, want, 'graph on the cluster');
});

test('arrays larger than inlineBytes go through the JetStream object store, once', async () => {
  if (!available) return;
  await init({ backend: 'cpu', servers: cluster!.servers, cluster: { split: 'reduced', minShardPairs: 1000, inlineBytes: 1024 } });
  const r = rng(4);
  const x = cloud(r, 50, 3); // 600 bytes: inline
  const y = cloud(r, 3000, 3); // 36 kB: object store
  const op = (backend: 'cpu' | 'cluster') => genred('SqDist(x,y)', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'ArgKMin', K: 4, axis: 1, backend });
  const m1 = mark();
  agree((await op('cluster')(x, y)) as Tensor, (await op('cpu')(x, y)) as Tensor, 'ArgKMin through the object store');
  const logs = await logsSince(m1, /inline 1 store 1/, 1);
  assert.ok(logs.some((l) => /inline 1 store 1/.test(l)), `a worker fetched y from the store:\n${logs.join('\n')}`);
  const m2 = mark();
  await op('cluster')(x, y);
  for (const [k, l] of (await logsSince(m2, /done/, 3)).entries()) assert.not.match(l, /store [1-9]/, `worker ${k + 1} fetched nothing again`);
});

test('a kernel solve with the cluster backend agrees with the CPU backend', async () => {
  if (!available) return;
  await init({ backend: 'cpu', servers: cluster!.servers, cluster: { minShardPairs: 1000 } });
  const r = rng(5);
  const n = 400;
  const x = { data: Float32Array.from(uniform(r, n * 2, 0, 1)), shape: [n, 2] };
  const b = { data: Float32Array.from(uniform(r, n * 2, 0, 1)), shape: [n, 2] };
  const g = { data: Float32Array.of(50), shape: [1] };
  const Kinv = kernelSolve('Exp(-g*SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(2)', 'g = Pm(1)'], 'b', { axis: 1, alpha: 0.1, tol: 1e-6 });
  const local = await Kinv(x, x, b, g, { backend: 'cpu' });
  const remote = await Kinv(x, x, b, g, { backend: 'cluster' });
  agree(remote, local, 'solve', 1e-4);
});

test('the cluster backend as the default backend (init backend: cluster)', async () => {
  if (!available) return;
  assert.is(await init({ backend: 'cluster', servers: cluster!.servers, cluster: { minShardPairs: 1000 } }), 'cluster');
  const r = rng(6);
  const x = cloud(r, 300, 3);
  const op = genred('Exp(-SqDist(x,y))', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'LogSumExp', axis: 1 });
  const got = (await op(x, x)) as Tensor;
  const want = (await genred('Exp(-SqDist(x,y))', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'LogSumExp', axis: 1, backend: 'cpu' })(x, x)) as Tensor;
  agree(got, want, 'default cluster backend');
  await init({ backend: 'cpu' });
});

test('any NATS client can ask the queue group (kernelflow.shard): ack, then the result', async () => {
  if (!available) return;
  const nc = await natsConnection(cluster!.servers);
  const x = Float32Array.of(0, 0, 3, 4);
  const req: ShardRequest = {
    v: PROTOCOL,
    shard: 'external.1',
    jobs: [{ reduction: 'Sum', K: 0, f: 'SqNorm2(Var(0,2,0))', g: null }],
    M: 2,
    N: 1,
    i0: 0,
    i1: 2,
    j0: 0,
    j1: 1,
    vars: [{ index: 0, dim: 2, cat: 0, id: 'external-x', length: 4, f64: false, at: { inline: 0 } }],
  };
  const replies = await nc.requestMany(SHARD_SUBJECT, encodeFrame(req, [new Uint8Array(x.buffer)]), { strategy: 'stall', stall: 5000, maxWait: 15_000 });
  const got: ShardReply[] = [];
  let out: Float32Array | undefined;
  for await (const m of replies) {
    const { header, payload } = decodeFrame<ShardReply>(m.data);
    if (header.status === 'beat') continue;
    got.push(header);
    if (header.status === 'ok') {
      out = arrayAt(payload, header.outputs[0]![0]!.offset, 2, false) as Float32Array;
      break;
    }
  }
  assert.equal(got.map((h) => h.status), ['ack', 'ok']);
  assert.equal([...out!], [0, 25]);
});

test('a worker that evicted arrays (a tiny cache) answers missing and gets them again', async () => {
  if (!available) return;
  const tiny = await cluster!.addWorker('tiny', ['--cache-mb', '0.001']);
  try {
    await init({ backend: 'cpu', servers: cluster!.servers, cluster: { split: 'rows', minShardPairs: 1000 } });
    const r = rng(9);
    const x = cloud(r, 400, 3);
    const y = cloud(r, 500, 3);
    const op = (backend: 'cpu' | 'cluster') => genred('SqDist(x,y)', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'ArgMin', axis: 1, backend });
    const want = (await op('cpu')(x, y)) as Tensor;
    for (let k = 0; k < 3; k++) agree((await op('cluster')(x, y)) as Tensor, want, `call ${k + 1} with a forgetful worker`);
    await tiny.waitFor(/missing/, 3000);
  } finally {
    tiny.proc.kill('SIGKILL');
    cluster!.workers.splice(cluster!.workers.indexOf(tiny), 1);
  }
});

test.run();
