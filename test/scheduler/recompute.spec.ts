import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Vi, Vj } from '../../src/api/lazy.js';
import { batch, disposeAll } from '../../src/nodes/node.js';
import { source } from '../../src/api/source.js';
import { resetStats, stats } from '../../src/stats.js';
import { collect, mapNode, settle } from '../helpers/graph.js';
import { rng, uniform } from '../helpers/random.js';

const r = rng(11);
const M = 9;
const N = 13;
const cloud = (n: number): Float32Array => Float32Array.from(uniform(r, n * 3));

test.after.each(() => disposeAll());

test('one source change: each dependent reduction recomputes exactly once, in one dispatch (the two siblings fused)', async () => {
  const x = source(cloud(M), [M, 3], 'x');
  const y = source(cloud(N), [N, 3], 'y');
  const a = Vi(x).sqdist(Vj(y)).sum(1);
  const b = Vi(x).sqdist(Vj(y)).min(1);
  const c = Vj(y).sqnorm2().sum(0); // does not read x
  const seen = [collect(a), collect(b), collect(c)];
  await settle();
  assert.equal([a.computeCount, b.computeCount, c.computeCount], [1, 1, 1]);
  assert.equal(seen.map((s) => s.values.length), [1, 1, 1]);
  resetStats();
  x.set(cloud(M));
  await settle();
  assert.equal([a.computeCount, b.computeCount, c.computeCount], [2, 2, 1]);
  assert.equal(seen.map((s) => s.values.length), [2, 2, 1]);
  assert.is(stats().dispatches, 1, 'a and b reduce over the same j of x and y: one fused kernel');
  // Several set() calls in one synchronous stretch coalesce into one recompute (microtask flush).
  x.set(cloud(M));
  x.set(cloud(M));
  y.set(cloud(N));
  await settle();
  assert.equal([a.computeCount, b.computeCount, c.computeCount], [3, 3, 2]);
  assert.is(stats().framesSkipped, 1, 'the first of the two x frames was never computed');
});

test('two sources changed in one batch: a node reading both recomputes once', async () => {
  const x = source(cloud(M), [M, 3], 'x');
  const y = source(cloud(N), [N, 3], 'y');
  const a = Vi(x).sqdist(Vj(y)).sum(1);
  const got = collect(a);
  await settle();
  batch(() => {
    x.set(cloud(M));
    y.set(cloud(N));
  });
  await settle();
  assert.is(a.computeCount, 2);
  assert.is(got.values.length, 2);
  // A batch spanning an await is two batches; a nested batch is one.
  batch(() => {
    batch(() => x.set(cloud(M)));
    y.set(cloud(N));
  });
  await settle();
  assert.is(a.computeCount, 3);
});

test('an unobserved branch computes nothing; reading it computes only what it needs', async () => {
  const x = source(cloud(M), [M, 3], 'x');
  const y = source(cloud(N), [N, 3], 'y');
  const watched = Vi(x).sqnorm2().sum(1);
  const ignored = Vi(x).sqdist(Vj(y)).sum(1);
  const deeper = Vi(ignored).exp().sum(1);
  collect(watched);
  await settle();
  resetStats();
  for (let k = 0; k < 5; k++) {
    x.set(cloud(M));
    await settle();
  }
  assert.is(watched.computeCount, 6);
  assert.is(ignored.computeCount, 0);
  assert.is(deeper.computeCount, 0);
  assert.is(stats().dispatches, 5);
  await deeper.read();
  assert.equal([ignored.computeCount, deeper.computeCount], [1, 1]);
  await deeper.read();
  assert.equal([ignored.computeCount, deeper.computeCount], [1, 1], 'a current value is cached');
});

test('a diamond never emits an inconsistent value, even when its branches take different times', async () => {
  const x = source(Float32Array.of(1), [1, 1], 'x');
  const fast = mapNode([x], (v) => v + 1, 0, 'fast');
  const slow = mapNode([x], (v) => v * 10, 8, 'slow');
  const slower = mapNode([slow], (v) => v + 0.5, 3, 'slower');
  // consistent iff tip = (fast - 1) * 10 + 0.5: both branches from the same x
  const tip = mapNode([fast, slower], (f, s) => ((f - 1) * 10 + 0.5 === s ? f - 1 : -1), 0, 'tip');
  const got = collect(tip);
  const fastSeen = collect(fast);
  await settle(20);
  assert.equal(got.values, [1]);
  for (const v of [2, 3, 4]) {
    x.set(Float32Array.of(v));
    await settle(30);
  }
  assert.equal(got.values, [1, 2, 3, 4], 'one consistent emission per change, none mixing old and new');
  assert.equal(fastSeen.values, [2, 3, 4, 5]);
  assert.is(tip.computeCount, 4);
  assert.is(fast.computeCount, 4);
  assert.is(slow.computeCount, 4);
});

test('a diamond of reductions: the tip recomputes once per change with both new branches', async () => {
  const x = source(cloud(M), [M, 3], 'x');
  const twice = Vi(x).mul(2).sum(1);
  const plus = Vi(x).add(1).sum(1);
  const tip = Vi(twice).add(Vi(plus)).sum(1); // 3x + 1
  const values: Float32Array[] = [];
  tip.observe().subscribe((t) => values.push(t.data as Float32Array));
  await settle();
  const frames = [cloud(M), cloud(M)];
  for (const f of frames) {
    x.set(f);
    await settle();
  }
  assert.is(values.length, 3);
  assert.is(tip.computeCount, 3);
  const last = values[2]!;
  for (let k = 0; k < M * 3; k++) assert.ok(Math.abs(last[k]! - (3 * frames[1]![k]! + 1)) < 1e-5);
});

test('observe() gives the current value at once to a late subscriber, without recomputing', async () => {
  const x = source(cloud(M), [M, 3], 'x');
  const a = Vi(x).sqnorm2().sum(1);
  await a.read();
  let sync: number | undefined;
  const sub = a.observe().subscribe((t) => (sync ??= t.data.length));
  assert.is(sync, M, 'emitted synchronously on subscribe');
  sub.unsubscribe();
  assert.is(a.computeCount, 1);
});

test.run();
