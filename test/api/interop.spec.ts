/**
 * Interop: nodes are AsyncIterable (`for await`) and rxjs-interoperable (`from(node)`), and
 * `scope(fn)` disposes the nodes made inside it except those it returns (asserted through the
 * graph's node count).
 */
import { firstValueFrom, from, isObservable, take, toArray as collectAll } from 'rxjs';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { grad, scope, source, Vi, Vj, type Node, type Tensor } from '../../src/index.js';
import { disposeAll, graphState } from '../../src/nodes/node.js';
import { init } from '../../src/scheduler/backends.js';
import { settle, sleep } from '../helpers/graph.js';

test.before(async () => {
  await init({ backend: 'cpu', quiet: true });
});
test.after.each(disposeAll);

const count = (): number => graphState().nodes.size;

test('for await yields the current value, then one per recompute, and ends when the node is disposed', async () => {
  const x = source(new Float32Array([1, 2, 3]), [3, 1], 'x');
  const total = Vi(x).sum(0); // [1, 1]
  const seen: number[] = [];
  const loop = (async () => {
    for await (const t of total) {
      seen.push(t.data[0]!);
      if (seen.length === 1) x.set(new Float32Array([10, 20, 30]));
      else if (seen.length === 2) x.set(new Float32Array([1, 1, 1, 1]), [4, 1]);
      else if (seen.length === 3) x.dispose(); // disposing the source disposes `total`: the loop ends
    }
    return 'ended';
  })();
  assert.is(await loop, 'ended');
  assert.equal(seen, [6, 60, 4]);
});

test('a slow consumer gets the latest value; break unsubscribes; errors are thrown', async () => {
  const x = source(new Float32Array([1]), [1, 1], 'x');
  const y = Vi(x).mul(2).sum(1);
  const it = y[Symbol.asyncIterator]();
  assert.is((await it.next()).value?.data[0], 2);
  x.set(new Float32Array([2]));
  await settle();
  x.set(new Float32Array([3]));
  await settle();
  assert.is((await it.next()).value?.data[0], 6, 'the latest of two recomputes');
  assert.equal(await it.return?.(), { value: undefined, done: true });
  assert.is((await it.next()).done, true);
  // An error of the node ends the loop by throwing it.
  const p = source(new Float32Array([0, 1, 2]), [3, 1], 'p');
  const k = Vi(p).sqdist(Vj(p)).kmin(2, 1);
  const caught = (async () => {
    try {
      for await (const t of k) if (t.shape[0] === 3) p.set(new Float32Array([5]), [1, 1]); // K = 2 > N = 1
    } catch (e) {
      return e;
    }
    return undefined;
  })();
  assert.match(String(await caught), /K = 2 is larger than the reduced extent 1/);
});

test('from(node) is the node as an rxjs Observable', async () => {
  const x = source(new Float32Array([3, 4]), [1, 2], 'x');
  const n = Vi(x).sqnorm2().sum(1);
  const o = from(n);
  assert.ok(isObservable(o));
  assert.is((await firstValueFrom(o)).data[0], 25);
  const two = firstValueFrom(from(n).pipe(take(2), collectAll()));
  await sleep(0);
  x.set(new Float32Array([1, 0]));
  assert.equal((await two).map((t: Tensor) => t.data[0]), [25, 1]);
  // The typed node stays typed through from().
  const idx = from(Vi(x).sqdist(Vj(x)).argmin(1));
  const i: Int32Array = (await firstValueFrom(idx)).data;
  assert.ok(i instanceof Int32Array);
  assert.is(typeof n['@@observable'], 'function');
});

test('scope disposes the nodes made inside it (sync), keeping what it returns and what that reads', async () => {
  const x = source(new Float32Array([0, 1, 2, 3]), [4, 1], 'x');
  const before = count();
  const none = scope(() => {
    Vi(x).sqdist(Vj(x)).sum(1);
    Vi(x).sqdist(Vj({ data: new Float32Array([5, 6]), shape: [2, 1] })).min(1); // a lifted source too
    grad(Vi(x).sqnorm2().sum(0), [x]);
  });
  assert.is(none, undefined);
  assert.is(count(), before, 'nothing left');
  const kept = scope(() => {
    const s = Vi(x).sqdist(Vj(x)).sum(1); // read by the returned node: kept
    Vi(x).mul(3).sum(1); // not returned: disposed
    return s.mean();
  });
  assert.is(count(), before + 2);
  assert.is((await kept.read()).data[0], (14 + 6 + 6 + 14) / 4);
  // Nodes in returned arrays and objects are kept; x (made outside) is never touched.
  const { a, list } = scope(() => ({ a: Vi(x).sum(0), list: [Vi(x).max(0), Vi(x).mul(2).sum(1)], junk: 1 }));
  assert.is(count(), before + 5);
  assert.equal([(await a.read()).data[0], (await list[0]!.read()).data[0]], [6, 3]);
  assert.not.ok(x.disposed);
  // A throwing fn disposes everything it made.
  assert.throws(() =>
    scope(() => {
      Vi(x).sum(0);
      throw new Error('boom');
    }),
  );
  assert.is(count(), before + 5);
});

test('scope of an async fn disposes at settlement; nested scopes hand their result to the outer one', async () => {
  const x = source(new Float32Array([0, 1, 2, 3]), [4, 1], 'x');
  const before = count();
  const value = await scope(async () => {
    const d = Vi(x).sqdist(Vj(x)).min(1);
    await sleep(1);
    const e = d.add(1); // made after an await: tracked too
    return (await e.sum().read()).data[0]!;
  });
  assert.is(value, 4);
  assert.is(count(), before);
  let inner: Node | undefined;
  const outer = scope(() => {
    inner = scope(() => Vi(x).sum(0).mul(2)); // kept by the inner scope, made inside the outer
    return Vi(x).max(0);
  });
  assert.ok(inner?.disposed, 'the outer scope disposed what the inner one returned');
  assert.not.ok(outer.disposed);
  assert.is(count(), before + 1);
  // Two async scopes running at once each dispose only their own nodes.
  const [p, q] = await Promise.all([
    scope(async () => {
      await sleep(2);
      const n = Vi(x).sum(0);
      await sleep(4);
      return n;
    }),
    scope(async () => {
      const n = Vi(x).mul(5).sum(0);
      await sleep(4);
      Vi(x).min(0);
      return 7;
    }),
  ]);
  assert.is(q, 7);
  assert.not.ok(p.disposed);
  assert.is((await p.read()).data[0], 6);
  assert.is(count(), before + 2);
});

test.run();
