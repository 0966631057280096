import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { genred } from '../../src/api/genred.js';
import { Vi, Vj } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { BackendError } from '../../src/errors.js';
import { loseDeviceForTesting, releaseDevice } from '../../src/gpu/device.js';
import { disposeAll } from '../../src/nodes/node.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { sleep } from '../helpers/graph.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * A WebGPU device destroyed mid-computation (issue 12): the pending call settles within 1 s with
 * a transient BackendError, the next call acquires a new device and succeeds, and a node that
 * failed with the loss computes again on its next read.
 */

if (webgpuTestable(test, 'the WebGPU fault tests')) register();

test.after(async () => {
  disposeAll();
  await releaseDevice();
});

test.run();

function register(): void {
  const r = rng(31);
  const cloud = (n: number) => ({ data: Float32Array.from(uniform(r, n * 3)), shape: [n, 3] });
  const op = genred('Exp(-SqDist(x,y))', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'Sum', axis: 1, backend: 'webgpu' });
  const big = 12_000; // 1.4e8 pairs: 0.2 s or more on lavapipe

  /**
   * Outcome of `p` when it settles, at most `ms` after this is called. (Destroying the device
   * blocks until the work already submitted has run, so 1 s holds for work of that order; lavapipe
   * cannot preempt a dispatch.)
   */
  async function settledWithin(p: Promise<{ ok: boolean; error?: unknown }>, ms: number) {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const r2 = await Promise.race([p, new Promise<'pending'>((res) => (timer = setTimeout(() => res('pending'), ms)))]);
    clearTimeout(timer);
    return r2;
  }

  /** When to lose the device: a quarter into the call (20 ms at most), timed on a warm run. */
  let lossAt = 20;

  test('genred on WebGPU: a device destroyed mid-computation fails the call within 1 s; the next call succeeds', async () => {
    const x = cloud(big);
    await op(cloud(8), cloud(8)); // device acquired, kernel compiled
    const t = performance.now();
    await op(x, x);
    lossAt = Math.min(20, (performance.now() - t) / 4);
    const outcome = op(x, x).then(() => ({ ok: true }), (error: unknown) => ({ ok: false, error }));
    await sleep(lossAt);
    const t0 = Date.now();
    await loseDeviceForTesting();
    const r2 = await settledWithin(outcome, Math.max(0, 1000 - (Date.now() - t0)));
    assert.ok(r2 !== 'pending', 'the pending call settled within 1 s of the loss');
    assert.ok(!r2.ok, 'the computation was cut short');
    assert.instance(r2.error, BackendError);
    assert.ok((r2.error as BackendError).transient, 'a transient fault');
    assert.match((r2.error as Error).message, /device lost/);
    const small = cloud(5);
    const again = (await op(small, small)) as { data: Float32Array };
    assert.ok(again.data.every((v) => v >= 1 && v <= 5), 'computed on a new device');
  });

  test('a reduction node that failed with the loss computes again on its next read', async () => {
    const x = source(cloud(big).data, [big, 3], 'x');
    const s = Vi(x).sqdist(Vj(x)).neg().exp().sum(1, { backend: 'webgpu' });
    await op(cloud(8), cloud(8));
    const failed = s.read().then(() => null, (e: unknown) => e);
    await sleep(lossAt);
    await loseDeviceForTesting();
    const e = await failed;
    assert.instance(e, BackendError);
    assert.ok((e as BackendError).transient);
    const again = await s.read();
    assert.equal(again.shape, [big, 1]);
    assert.ok(again.data.every((v) => v >= 1 && v <= big), 'each row sums its own term 1 and others in (0, 1]');
  });
}
