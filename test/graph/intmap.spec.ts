import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { IntMap } from '../../src/graph/intmap.js';
import { rng } from '../helpers/random.js';

test('an IntMap behaves as a Map under random sets and deletes, and earlier maps never change', () => {
  const r = rng(3);
  let m = IntMap.empty<number>();
  const ref = new Map<number, number>();
  const history: [IntMap<number>, [number, number][]][] = [];
  for (let step = 0; step < 4000; step++) {
    // Keys mostly dense and growing (node ids), some far out (root growth), some repeated.
    const k = r() < 0.05 ? Math.floor(r() * 2_000_000) : Math.floor(r() * (step + 40));
    if (r() < 0.35) {
      m = m.delete(k);
      ref.delete(k);
    } else {
      m = m.set(k, step);
      ref.set(k, step);
    }
    if (step % 500 === 0) history.push([m, [...ref].sort((a, b) => a[0] - b[0])]);
  }
  assert.is(m.size, ref.size);
  assert.equal([...m], [...ref].sort((a, b) => a[0] - b[0]), 'entries in ascending key order');
  for (const [k, v] of ref) assert.is(m.get(k), v);
  for (const [old, want] of history) assert.equal([...old], want, 'an earlier map is unchanged');
  assert.is(m.get(-1), undefined);
  assert.is(m.get(1.5), undefined);
  assert.is(m.get(2 ** 40), undefined);
});

test('an IntMap is frozen; setting the same value or deleting a missing key returns the same map', () => {
  const a = IntMap.of<string>([[3, 'x'], [70, 'y']]);
  assert.ok(Object.isFrozen(a));
  assert.is(a.set(3, 'x'), a);
  assert.is(a.delete(5), a);
  assert.equal([...a.keys()], [3, 70]);
  assert.equal([...a.delete(3).delete(70)], []);
  assert.is(a.delete(3).delete(70).size, 0);
  assert.throws(() => a.set(-1, 'z'), /key -1/);
});

test.run();
