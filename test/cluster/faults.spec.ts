/**
 * Faults on a real cluster (nats-server and three worker processes started here): a worker
 * killed (SIGKILL) in the middle of its shard, a worker stalled (SIGSTOP) in the middle of its
 * shard, and no worker left. The shards of the lost workers run again elsewhere, the result is the
 * local one (a shard lost or counted twice would change the sum), and with no worker a
 * BackendError says so.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { BackendError, genred, init, shutdown, type Tensor, type TensorLike } from '../../src/index.js';
import { rng, uniform } from '../helpers/random.js';
import { natsServerFor, startCluster, type TestCluster, type WorkerProc } from '../helpers/nats-cluster.js';

const available = natsServerFor('the cluster fault tests');

let cluster: TestCluster | undefined;
test.before(async () => {
  if (!available) return;
  cluster = await startCluster(3);
  // Blocks of the reduced axis: each shard's partial sums are merged, so a shard counted twice or lost shows.
  await init({ backend: 'cpu', servers: cluster.servers, cluster: { split: 'reduced', minShardPairs: 1000, stallTimeoutMs: 1500 } });
});
test.after(async () => {
  await shutdown();
  await cluster?.stop();
});

// About a second of work per shard here (2 cores shared by three workers).
const M = 1500;
const N = 60_000;
const r = rng(7);
const x: TensorLike = { data: Float32Array.from(uniform(r, M * 3)), shape: [M, 3] };
const y: TensorLike = { data: Float32Array.from(uniform(r, N * 3)), shape: [N, 3] };
const b: TensorLike = { data: Float32Array.from(uniform(r, N * 2)), shape: [N, 2] };
const formula = 'Exp(-SqDist(x,y))*b';
const aliases = ['x = Vi(3)', 'y = Vj(3)', 'b = Vj(2)'];
const local = (): Promise<Tensor> => genred(formula, aliases, { reduction: 'Sum', axis: 1, backend: 'cpu' })(x, y, b);
const remote = (): Promise<Tensor> => genred(formula, aliases, { reduction: 'Sum', axis: 1, backend: 'cluster' })(x, y, b);

function close(got: Tensor, want: Tensor, what: string): void {
  assert.equal(got.shape, want.shape);
  let worst = 0;
  for (let k = 0; k < want.data.length; k++) worst = Math.max(worst, Math.abs(got.data[k]! - want.data[k]!) / Math.max(1, Math.abs(want.data[k]!)));
  assert.ok(worst < 1e-5, `${what}: relative error ${worst}`);
}

/** Starts a cluster call, and once `victim` has started its shard of it, does `act` to it. */
async function hitMidShard(victim: WorkerProc, act: () => void): Promise<Tensor> {
  const from = victim.log().length;
  const call = remote();
  await new Promise<void>((resolve, reject) => {
    const t = setInterval(() => {
      if (/shard \S+ start/.test(victim.log().slice(from))) {
        clearInterval(t);
        resolve();
      }
    }, 5);
    call.catch((e: unknown) => {
      clearInterval(t);
      reject(e instanceof Error ? e : new Error(String(e)));
    });
  });
  act();
  return call;
}

let want: Tensor | undefined;

test('a worker killed (SIGKILL) in the middle of its shard: the shard runs again elsewhere, the sum is right', async () => {
  if (!available) return;
  want = await local();
  const [w1, w2, w3] = cluster!.workers;
  const t0 = performance.now();
  const got = await hitMidShard(w1!, () => w1!.proc.kill('SIGKILL'));
  const ms = performance.now() - t0;
  close(got, want, 'after SIGKILL');
  // The killed worker finished nothing; its shard ran twice in all on the two others (3 + 1 starts).
  assert.not.match(w1!.log(), /done/);
  const starts = [w2!, w3!].map((w) => (w.log().match(/shard \S+ start/g) ?? []).length);
  assert.is(starts[0]! + starts[1]!, 3, `starts on w2, w3: ${starts}`);
  assert.ok(ms > 1500, `the re-run waited for the stall timeout (${ms.toFixed(0)} ms)`);
});

test('a worker stalled (SIGSTOP) in the middle of its shard: re-run after the timeout, its late reply ignored', async () => {
  if (!available) return;
  const [, w2] = cluster!.workers;
  const from = w2!.log().length;
  const got = await hitMidShard(w2!, () => w2!.proc.kill('SIGSTOP'));
  close(got, want!, 'after SIGSTOP');
  assert.not.match(w2!.log().slice(from), /done/);
  // Wake it: it finishes and replies to a subscription that is gone; the next call is still right.
  w2!.proc.kill('SIGCONT');
  await new Promise<void>((resolve) => {
    const t = setInterval(() => /done/.test(w2!.log().slice(from)) && (clearInterval(t), resolve()), 10);
  });
  close(await remote(), want!, 'after SIGCONT');
});

test('no worker left: a BackendError', async () => {
  if (!available) return;
  for (const w of cluster!.workers) w.proc.kill('SIGKILL');
  await Promise.all(cluster!.workers.map((w) => new Promise((r) => (w.proc.exitCode !== null || w.proc.signalCode !== null ? r(null) : w.proc.once('exit', r)))));
  try {
    await remote();
    assert.unreachable('expected a BackendError');
  } catch (e) {
    assert.instance(e, BackendError);
    assert.match((e as Error).message, /no kernelflow worker/);
    assert.ok((e as BackendError).transient, 'transient: a worker may come back');
  }
});

test('no server: a BackendError', async () => {
  if (!available) return;
  try {
    await init({ backend: 'cluster', servers: 'nats://127.0.0.1:1' });
    assert.unreachable('expected a BackendError');
  } catch (e) {
    assert.instance(e, BackendError);
    assert.match((e as Error).message, /cannot connect to NATS at nats:\/\/127.0.0.1:1/);
  }
  await init({ backend: 'cpu' });
});

test.run();
