/**
 * Streams over NATS: frames published on a subject feed a source (`natsSource`), a reduction
 * computes on the cluster backend (two worker processes), and `natsSink` publishes each result
 * on another subject, where this test, as an outside service would, reads them back.
 */
import { connect, headers, type NatsConnection, type Msg } from '@nats-io/transport-node';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { init, natsSink, natsSource, shutdown, source, Vi, Vj, type NatsSink } from '../../src/index.js';
import { natsConnection } from '../../src/cluster/connection.js';
import { rng, uniform } from '../helpers/random.js';
import { natsServerFor, startCluster, type TestCluster } from '../helpers/nats-cluster.js';

const available = natsServerFor('the NATS stream tests');

let cluster: TestCluster | undefined;
let nc: NatsConnection | undefined;
test.before(async () => {
  if (!available) return;
  cluster = await startCluster(2);
  await init({ backend: 'cpu', servers: cluster.servers, cluster: { minShardPairs: 1000 } });
  nc = await connect({ servers: cluster.servers });
});
test.after(async () => {
  await nc?.close();
  await shutdown();
  await cluster?.stop();
});

/** Messages arriving on a subject, one at a time. */
function inbox(subject: string): { next(ms?: number): Promise<Msg>; close(): void } {
  const queue: Msg[] = [];
  const waiting: ((m: Msg) => void)[] = [];
  const sub = nc!.subscribe(subject, {
    callback: (_err, m) => {
      const w = waiting.shift();
      if (w !== undefined) w(m);
      else queue.push(m);
    },
  });
  return {
    next: (ms = 15_000) =>
      new Promise<Msg>((resolve, reject) => {
        const m = queue.shift();
        if (m !== undefined) return resolve(m);
        const t = setTimeout(() => reject(new Error(`no message on ${subject} within ${ms} ms`)), ms);
        waiting.push((x) => {
          clearTimeout(t);
          resolve(x);
        });
      }),
    close: () => sub.unsubscribe(),
  };
}

const floats = (m: Msg): Float32Array => {
  const own = new Uint8Array(m.data.byteLength);
  own.set(m.data);
  return new Float32Array(own.buffer);
};

/** Nearest squared distance from each row of a to the rows of b (float64 brute force). */
function nearest(a: Float32Array | Float64Array, b: Float32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < a.length / 3; i++) {
    let best = Infinity;
    for (let j = 0; j < b.length / 3; j++) {
      let d = 0;
      for (let k = 0; k < 3; k++) d += (a[i * 3 + k]! - b[j * 3 + k]!) ** 2;
      best = Math.min(best, d);
    }
    out.push(best);
  }
  return out;
}

test('frames published on a subject are computed on the cluster and published back', async () => {
  if (!available) return;
  const r = rng(8);
  const map = Float32Array.from(uniform(r, 4000 * 3));
  const scan = natsSource('lidar.scan', [0, 3]);
  const d = Vi(scan).sqdist(Vj(source(map, [4000, 3], 'map'))).min(1, { backend: 'cluster' });
  const out = inbox('lidar.nearest');
  const sink: NatsSink = natsSink(d, 'lidar.nearest');
  // The source subscribes on the shared connection once it is open: after that, a flush (a
  // round trip on the same connection) means the server has the subscription.
  const shared = await natsConnection(cluster!.servers);
  await new Promise((resolve) => setImmediate(resolve));
  await shared.flush();
  for (const n of [500, 800, 300]) {
    const frame = Float32Array.from(uniform(r, n * 3));
    const h = headers();
    h.set('Kf-Shape', `${n},3`);
    h.set('Kf-Dtype', 'float32');
    nc!.publish('lidar.scan', new Uint8Array(frame.buffer), { headers: h });
    const m = await out.next();
    assert.is(m.headers?.get('Kf-Shape'), `${n},1`);
    assert.is(m.headers?.get('Kf-Dtype'), 'float32');
    const got = floats(m);
    const want = nearest(frame, map);
    want.forEach((v, i) => assert.ok(Math.abs(got[i]! - v) <= 1e-5 * Math.max(1, v), `frame of ${n}, row ${i}: ${got[i]} vs ${v}`));
  }
  // A float64 frame computes in float64 (the float32 map is promoted) and comes back float64.
  const frame64 = Float64Array.from(uniform(r, 200 * 3));
  const h64 = headers();
  h64.set('Kf-Shape', '200,3');
  h64.set('Kf-Dtype', 'float64');
  nc!.publish('lidar.scan', new Uint8Array(frame64.buffer), { headers: h64 });
  const m64 = await out.next();
  assert.is(m64.headers?.get('Kf-Dtype'), 'float64');
  const own64 = new Uint8Array(m64.data.byteLength);
  own64.set(m64.data);
  const got64 = new Float64Array(own64.buffer);
  nearest(frame64, map).forEach((v, i) => assert.ok(Math.abs(got64[i]! - v) <= 1e-12 * Math.max(1, v), `float64 frame, row ${i}: ${got64[i]} vs ${v}`));
  // A frame without headers is float32 rows of the declared dimension.
  const bare = Float32Array.from(uniform(r, 7 * 3));
  nc!.publish('lidar.scan', new Uint8Array(bare.buffer));
  const m = await out.next();
  assert.is(m.headers?.get('Kf-Shape'), '7,1');
  // A malformed frame is published as an error; the next good frame recovers.
  const h = headers();
  h.set('Kf-Shape', '4,2');
  nc!.publish('lidar.scan', new Uint8Array(new Float32Array(8).buffer), { headers: h });
  const e = await out.next();
  assert.ok((e.headers?.get('Kf-Error') ?? '') !== '', 'an error message');
  assert.is(e.data.byteLength, 0);
  nc!.publish('lidar.scan', new Uint8Array(bare.buffer));
  assert.is((await out.next()).headers?.get('Kf-Shape'), '7,1');
  assert.ok(sink.published >= 6 && sink.errors >= 1, `published ${sink.published}, errors ${sink.errors}`);
  await sink.close();
  out.close();
  scan.dispose();
  // The reductions really ran on the workers.
  assert.ok(cluster!.workers.some((w) => /done/.test(w.log())), 'a worker computed a shard');
});

test.run();
