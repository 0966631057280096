import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { retry } from 'rxjs';
import { Vi, Vj } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { busyWorkersForTesting, killBusyWorkerForTesting } from '../../src/cpu/pool.js';
import { BackendError, DataError } from '../../src/errors.js';
import { ComputedNode, disposeAll } from '../../src/nodes/node.js';
import { init, shutdown } from '../../src/scheduler/backends.js';
import { collect, mapNode, scalar, settle, sleep } from '../helpers/graph.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * A node whose computation failed on a transient backend fault (a lost device, a dead worker, a
 * shutdown) does not keep the stale error: its next read (or subscription) computes it again, once.
 * Other errors are values held until an input changes (test/scheduler/errors.spec.ts).
 */

test.after.each(() => disposeAll());

const lost = (): BackendError => new BackendError('WebGPU device lost (destroyed): test', { transient: true });

/** A node that fails with `faults[k]` on its k-th computation (while there is one), then computes 10 * x. */
function flaky(x: ReturnType<typeof source>, faults: Error[]): ComputedNode {
  let k = 0;
  return new ComputedNode([x], async ([v]) => {
    const f = faults[k++];
    if (f !== undefined) throw f;
    return scalar(10 * v!.data[0]!);
  }, 'flaky');
}

test('a transient fault is retried by the next read: no input changed, the node computes again', async () => {
  const x = source(Float32Array.of(2), [1, 1], 'x');
  const fault = lost();
  const n = flaky(x, [fault]);
  const twice = mapNode([n], (v) => 2 * v);
  let caught: unknown;
  await twice.read().catch((e: unknown) => (caught = e));
  assert.is(caught, fault, 'the dependent failed with the fault');
  assert.is(n.computeCount, 1);
  assert.equal([...(await twice.read()).data], [40], 'the next read retried the failed node and its dependent');
  assert.is(n.computeCount, 2);
  assert.is(twice.computeCount, 1, 'the dependent never ran on the failed input; it ran once on the retried one');
  assert.equal([...(await twice.read()).data], [40]);
  assert.is(n.computeCount, 2, 'a good value is cached again');
});

test('the retry happens once per read: a fault that persists rejects that read', async () => {
  const x = source(Float32Array.of(1), [1, 1], 'x');
  const n = flaky(x, [lost(), lost(), lost()]);
  for (let k = 1; k <= 3; k++) {
    let caught: unknown;
    await n.read().catch((e: unknown) => (caught = e));
    assert.instance(caught, BackendError);
    assert.is(n.computeCount, k, `read ${k} computed once`);
  }
  assert.equal([...(await n.read()).data], [10]);
});

test('an error that is not transient is held until an input changes (no retry)', async () => {
  const x = source(Float32Array.of(1), [1, 1], 'x');
  const n = flaky(x, [new DataError('bad data'), new BackendError('WebGPU: kernel failed to compile')]);
  for (const e of [DataError, DataError]) {
    let caught: unknown;
    await n.read().catch((err: unknown) => (caught = err));
    assert.instance(caught, e);
  }
  assert.is(n.computeCount, 1);
  x.set(Float32Array.of(3));
  let caught: unknown;
  await n.read().catch((err: unknown) => (caught = err));
  assert.instance(caught, BackendError, 'a non-transient BackendError is held too');
  await n.read().catch(() => undefined);
  assert.is(n.computeCount, 2);
});

test('an observer that resubscribes with retry() gets the recomputed value', async () => {
  const x = source(Float32Array.of(4), [1, 1], 'x');
  const n = flaky(x, [lost()]);
  const seen: number[] = [];
  const errors: unknown[] = [];
  n.observe()
    .pipe(retry({ count: 1, delay: (e: unknown) => (errors.push(e), Promise.resolve()) }))
    .subscribe((t) => seen.push(t.data[0]!));
  await settle();
  await settle();
  assert.is(errors.length, 1);
  assert.equal(seen, [40]);
  const late = collect(n);
  assert.equal(late.values, [40]);
});

// ---- a real fault: a CPU worker thread killed while a reduction node computes ----

test('a reduction node whose worker died mid-computation succeeds on its next read', async () => {
  await init({ backend: 'cpu' });
  try {
    const r = rng(4);
    const n = 3000; // 9e6 pairs: runs on the worker pool
    const x = source(Float32Array.from(uniform(r, n * 3)), [n, 3], 'x');
    const s = Vi(x).sqdist(Vj(x)).neg().exp().sum(1);
    const first = s.read();
    const failed = first.then(() => null, (e: unknown) => e);
    const t0 = Date.now();
    while (busyWorkersForTesting() === 0 && Date.now() - t0 < 5000) await sleep(2);
    assert.ok(killBusyWorkerForTesting(), 'a worker was busy');
    const e = await failed;
    assert.instance(e, BackendError);
    assert.ok((e as BackendError).transient);
    const again = await s.read();
    assert.equal(again.shape, [n, 1]);
    assert.ok(again.data.every((v) => v >= 1 && v <= n), 'each row sums n terms in (0, 1], its own term 1');
  } finally {
    await shutdown();
  }
});

test.run();
