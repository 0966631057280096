import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { retry, Subject } from 'rxjs';
import { Vi, Vj } from '../../src/api/lazy.js';
import { disposeAll } from '../../src/nodes/node.js';
import { source } from '../../src/api/source.js';
import type { TensorLike } from '../../src/tensor.js';
import { DataError, DimensionError, ReductionError } from '../../src/errors.js';
import { collect, mapNode, rejects, settle } from '../helpers/graph.js';
import { rng, uniform } from '../helpers/random.js';

const r = rng(8);
const cloud = (n: number, d = 3): Float32Array => Float32Array.from(uniform(r, n * d));

test.after.each(() => disposeAll());

test('an error reaches the failing node observers; a sibling keeps working; the next good input recovers', async () => {
  const x = source(cloud(6), [6, 3], 'x');
  const y = source(cloud(8), [8, 3], 'y');
  const near = Vi(x).sqdist(Vj(y)).argKmin(3, 1); // fails when y has fewer than 3 points
  const norms = Vi(x).sqnorm2().sum(1); // does not read y
  const plain = collect(near);
  const sibling = collect(norms);
  const resilient: number[] = [];
  const errors: unknown[] = [];
  near
    .observe()
    .pipe(retry({ resetOnSuccess: true, delay: (e: unknown) => (errors.push(e), Promise.resolve()) }))
    .subscribe((t) => resilient.push(t.shape[0]!));
  await settle();
  y.set(cloud(2), [2, 3]);
  x.set(cloud(6), [6, 3]);
  await settle();
  assert.is(plain.errors.length, 1);
  assert.instance(plain.errors[0], ReductionError);
  assert.match(String(plain.errors[0]), /K = 3 is larger than the reduced extent 2/);
  await rejects(near.read(), /larger than the reduced extent/);
  assert.is(sibling.values.length, 2, 'the sibling recomputed with the new x');
  assert.is(sibling.errors.length, 0);
  y.set(cloud(9), [9, 3]);
  await settle();
  assert.equal(resilient, [6, 6], 'with retry(), the observer got the next good value');
  assert.is(errors.length, 1);
  assert.is((await near.read()).shape[0], 6);
  assert.is(plain.values.length, 1, 'a plain subscriber stopped at the error (rxjs semantics)');
});

test('an error propagates to dependents; a node failing in JavaScript recovers too', async () => {
  const x = source(Float32Array.of(1), [1, 1], 'x');
  const inv = mapNode([x], (v) => {
    if (v === 0) throw new DataError('division by zero');
    return 1 / v;
  });
  const twice = mapNode([inv], (v) => 2 * v);
  const a = collect(inv);
  const b = collect(twice);
  await settle();
  x.set(Float32Array.of(0));
  await settle();
  assert.is(a.errors.length, 1);
  assert.is(b.errors.length, 1);
  assert.is(b.errors[0], a.errors[0], 'the dependent fails with the same error');
  x.set(Float32Array.of(4));
  await settle();
  assert.is((await twice.read()).data[0], 0.5);
  // A new subscriber after the failure sees the next good value, not the old error.
  const late = collect(twice);
  assert.equal(late.values, [0.5]);
});

test('a malformed stream frame fails the dependents; the next good frame recovers', async () => {
  const frames = new Subject<TensorLike>();
  const x = source(frames, [0, 3], 'frames');
  const s = Vi(x).sqnorm2().sum(0);
  const seen: number[] = [];
  const errs: unknown[] = [];
  s.observe()
    .pipe(retry({ delay: (e: unknown) => (errs.push(e), Promise.resolve()) }))
    .subscribe((t) => seen.push(t.data[0]!));
  frames.next({ data: Float32Array.of(1, 0, 0), shape: [1, 3] });
  await settle();
  frames.next({ data: Float32Array.of(1, 2), shape: [1, 3] }); // 2 values for shape [1, 3]
  await settle();
  frames.next({ data: Float32Array.of(0, 2, 0, 0, 0, 1), shape: [2, 3] });
  await settle();
  assert.equal(seen, [1, 5]);
  assert.is(errs.length, 1);
  assert.instance(errs[0], DataError);
  // A frame of the wrong vector dimension is a DimensionError of the reduction.
  frames.next({ data: Float32Array.of(1, 2), shape: [1, 2] });
  await settle();
  assert.instance(errs[1], DimensionError);
});

test.run();
