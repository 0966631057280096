import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Subject } from 'rxjs';
import { Vi, Vj } from '../../src/api/lazy.js';
import { ComputedNode, disposeAll } from '../../src/nodes/node.js';
import { source } from '../../src/api/source.js';
import type { TensorLike } from '../../src/tensor.js';
import { resetStats, stats } from '../../src/stats.js';
import { collect, scalar, settle, sleep } from '../helpers/graph.js';

test.after.each(() => disposeAll());

/** A frame of n points in 3-D whose first coordinate is the frame number k. */
function frame(k: number, n = 4): TensorLike {
  const data = new Float32Array(n * 3);
  for (let i = 0; i < n; i++) data[i * 3] = k;
  return { data, shape: [n, 3] };
}

test('1000 frames pushed synchronously: one recompute, of the last frame; 999 counted as skipped', async () => {
  const frames = new Subject<TensorLike>();
  const x = source(frames, [0, 3], 'frames');
  const y = source(new Float32Array(6), [2, 3], 'y');
  const firstCoordMax = Vi(x).elem(0).max(0); // [1, 1]: the frame number
  const dist = Vi(x).sqdist(Vj(y)).min(1);
  const got = collect(firstCoordMax);
  const d = collect(dist);
  await settle();
  assert.equal(got.values, [], 'no frame yet: nothing to emit');
  resetStats();
  const before = stats().bytesAllocated;
  for (let k = 1; k <= 1000; k++) frames.next(frame(k));
  // Every frame replaced the previous one: the source holds one frame, nothing is queued.
  assert.is(stats().bytesAllocated - before, 4 * 3 * 4);
  await settle();
  assert.equal(got.values, [1000]);
  assert.is(d.values.length, 1);
  assert.is(firstCoordMax.computeCount, 1);
  assert.is(dist.computeCount, 1);
  assert.is(stats().framesSkipped, 999);
  assert.is(stats().dispatches, 2);
});

test('frames faster than the backend: intermediate frames skipped, the latest always computed, one run at a time', async () => {
  const frames = new Subject<TensorLike>();
  const x = source(frames, [0, 3], 'frames');
  let running = 0;
  let maxRunning = 0;
  const slow = new ComputedNode(
    [x],
    async ([t]) => {
      running++;
      maxRunning = Math.max(maxRunning, running);
      await sleep(6);
      running--;
      return scalar(t!.data[0]!);
    },
    'slow',
  );
  const got = collect(slow);
  resetStats();
  const total = 60;
  for (let k = 1; k <= total; k++) {
    frames.next(frame(k));
    await new Promise((res) => setImmediate(res)); // about 60 frames in far less than 60 * 6 ms
  }
  await settle(20);
  assert.is(got.values.at(-1), total, 'the last frame is computed');
  assert.ok(got.values.length < total / 2, `${got.values.length} computations for ${total} frames`);
  assert.is(maxRunning, 1, 'one computation in flight at a time');
  for (let k = 1; k < got.values.length; k++) assert.ok(got.values[k]! > got.values[k - 1]!, 'emitted in frame order');
  assert.is(slow.computeCount, got.values.length);
  assert.is(stats().framesSkipped, total - slow.computeCount);
});

test('an AsyncIterable source is pulled as its frames are consumed: nothing skipped, nothing drained early', async () => {
  let pulled = 0;
  async function* gen(): AsyncGenerator<TensorLike> {
    for (let k = 1; k <= 8; k++) {
      pulled++;
      yield frame(k);
    }
  }
  const x = source(gen(), [0, 3], 'gen');
  const m = Vi(x).elem(0).max(0);
  await settle(5);
  assert.is(pulled, 1, 'nobody observes: only the first frame was pulled');
  resetStats();
  const got = collect(m);
  for (let k = 0; k < 20; k++) await settle();
  assert.equal(got.values, [1, 2, 3, 4, 5, 6, 7, 8]);
  assert.is(stats().framesSkipped, 0);
});

test('a slow consumer of a pulled stream takes every frame, in order', async () => {
  async function* gen(): AsyncGenerator<TensorLike> {
    for (let k = 1; k <= 5; k++) yield frame(k);
  }
  const x = source(gen(), [0, 3]);
  const slow = new ComputedNode([x], async ([t]) => (await sleep(3), scalar(t!.data[0]!)), 'slow');
  const got = collect(slow);
  await settle(60);
  assert.equal(got.values, [1, 2, 3, 4, 5]);
});

test('stale in-flight work is dropped by version: a computation that honours its AbortSignal stops, its dependents too', async () => {
  const x = source(Float32Array.of(1), [1, 1], 'x');
  let started = 0;
  let aborted = 0;
  const solve = new ComputedNode(
    [x],
    async ([t], signal) => {
      started++;
      for (let k = 0; k < 10; k++) {
        await sleep(2);
        if (signal?.aborted === true) {
          aborted++;
          throw new Error('cancelled');
        }
      }
      return scalar(t!.data[0]! * 100);
    },
    'iterative',
  );
  const after = new ComputedNode([solve], async ([t]) => scalar(t!.data[0]! + 1), 'after');
  const got = collect(after);
  await sleep(5); // the first computation is under way
  x.set(Float32Array.of(2));
  await sleep(5);
  x.set(Float32Array.of(3));
  await settle(80);
  assert.equal(got.values, [301], 'only the latest input was emitted');
  assert.equal(got.errors, [], 'a cancelled computation is not an error');
  assert.is(aborted, 2, 'the runs for x = 1 and x = 2 stopped when x changed');
  assert.is(started, 3);
  assert.is(after.computeCount, 1);
});

test.run();
