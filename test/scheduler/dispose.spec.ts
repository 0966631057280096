import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Subject } from 'rxjs';
import { Pm, Vi, Vj } from '../../src/api/lazy.js';
import { disposeAll, graphState } from '../../src/nodes/node.js';
import { printGraph } from '../../src/api/pipeline.js';
import { source } from '../../src/api/source.js';
import type { TensorLike } from '../../src/tensor.js';
import { KernelflowError } from '../../src/errors.js';
import { stats } from '../../src/stats.js';
import { collect, rejects, settle } from '../helpers/graph.js';
import { rng, uniform } from '../helpers/random.js';

const r = rng(5);
const cloud = (n: number): Float32Array => Float32Array.from(uniform(r, n * 3));

test.after.each(() => disposeAll());

test('disposing a source completes every dependent observer and frees every buffer', async () => {
  const baseline = stats().bytesAllocated;
  const nodesBefore = graphState().nodes.size;
  const x = source(cloud(50), [50, 3], 'x');
  const y = source(cloud(70), [70, 3], 'y');
  const w = { data: Float32Array.from(uniform(r, 70)), shape: [70, 1] };
  const K = Vi(x).sqdist(Vj(y)).mul(Pm(-0.5)).exp(); // Pm(-0.5) is a lifted constant source
  const a = K.matmul(w); // w lifted too
  const [d, idx] = Vi(x).sqdist(Vj(y)).kminArgKmin(3, 1);
  const e = Vi(a).sum(0); // reads a reduction
  const seen = [collect(a), collect(d), collect(idx), collect(e)];
  await settle();
  assert.ok(seen.every((s) => s.values.length === 1));
  assert.ok(stats().bytesAllocated > baseline + (50 + 70) * 12, 'sources and cached results are counted');
  x.set(cloud(50));
  await settle();
  x.dispose();
  assert.ok(seen.every((s) => s.completed), 'every observer downstream of x completed');
  assert.ok(a.disposed && d.disposed && idx.disposed && e.disposed);
  const err = await rejects(a.read(), /disposed/);
  assert.ok(err instanceof KernelflowError && err.code === 'DISPOSED');
  assert.throws(() => x.set(cloud(50)), /disposed/);
  assert.throws(() => Vi(x).sum(1), /disposed/);
  // y is the user's: still alive, still readable.
  assert.is((await y.read()).shape[0], 70);
  y.dispose();
  assert.is(stats().bytesAllocated, baseline, 'bytesAllocated is back to the baseline');
  // The records left the graph state; the two lifted constants stay (parked, no bytes) while the
  // LazyTensor K that holds them lives.
  const left = [...graphState().nodes.values()].slice(nodesBefore);
  assert.equal(left.map((n) => [n.kind, n.lifted]), [['source', true], ['source', true]]);
  assert.not.match(printGraph(), /lifted/);
});

test('disposing a reduction completes its observers only; the source and siblings keep working', async () => {
  const baseline = stats().bytesAllocated;
  const x = source(cloud(20), [20, 3], 'x');
  const a = Vi(x).sqnorm2().sum(1);
  const b = Vi(x).sqnorm2().max(0);
  const c = Vi(a).sum(0);
  const sa = collect(a);
  const sb = collect(b);
  const sc = collect(c);
  await settle();
  a.dispose();
  assert.ok(sa.completed && sc.completed, 'a and c (which reads a) completed');
  assert.not.ok(sb.completed);
  x.set(cloud(20));
  await settle();
  assert.is(sb.values.length, 2);
  x.dispose();
  assert.ok(sb.completed);
  assert.is(stats().bytesAllocated, baseline);
});

test('disposing a stream source stops its stream; a pending read rejects', async () => {
  const frames = new Subject<TensorLike>();
  const x = source(frames, [0, 3], 'frames');
  const m = Vi(x).sqnorm2().sum(1);
  const pending = m.read(); // no frame yet
  assert.ok(frames.observed);
  x.dispose();
  assert.not.ok(frames.observed, 'unsubscribed from the stream');
  await rejects(pending, /disposed/);
});

test('a lifted constant shared by a LazyTensor is released with its last node and counted again when reused', async () => {
  const baseline = stats().bytesAllocated;
  const x = source(cloud(10), [10, 3], 'x');
  const K = Vi(x).sqdist(Vj({ data: cloud(15), shape: [15, 3] }));
  const a = K.sum(1);
  await a.read();
  a.dispose();
  assert.is(stats().bytesAllocated, baseline + 10 * 12, 'only x is left');
  const b = K.min(1); // the same lifted y, wired again
  assert.is((await b.read()).shape[0], 10);
  b.dispose();
  x.dispose();
  assert.is(stats().bytesAllocated, baseline);
});

test.run();
