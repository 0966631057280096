/**
 * The compiled-kernel caches are bounded and least-recently-used, on both backends: evictions
 * are counted in stats(), an evicted kernel compiles again when it is needed, and results stay
 * right (also through the CPU worker pool, whose workers drop evicted kernels too).
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Vi, Vj } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { KernelflowError } from '../../src/errors.js';
import { DEFAULT_KERNEL_CACHE_SIZE, kernelCacheSize, LruCache } from '../../src/kernel/cache.js';
import { disposeAll, type Node } from '../../src/nodes/node.js';
import { init, shutdown, type BackendName } from '../../src/scheduler/backends.js';
import { resetStats, stats } from '../../src/stats.js';
import { webgpuTestable } from '../helpers/adapter.js';

test.after.each(async () => {
  disposeAll();
  await init({ backend: 'cpu', kernelCacheSize: DEFAULT_KERNEL_CACHE_SIZE });
});
test.after(() => shutdown());

test('LruCache keeps the most recently used entries and counts what it evicts', async () => {
  await init({ backend: 'cpu', kernelCacheSize: 3 });
  const evicted: string[] = [];
  const c = new LruCache<number>((key) => evicted.push(key));
  resetStats();
  c.set('a', 1);
  c.set('b', 2);
  c.set('c', 3);
  assert.is(c.get('a'), 1); // a is now the most recent: b goes first
  c.set('d', 4);
  assert.equal(evicted, ['b']);
  assert.is(c.get('b'), undefined);
  c.delete('c'); // a failed compile: removed, not an eviction
  c.set('e', 5);
  assert.equal(evicted, ['b']);
  await init({ backend: 'cpu', kernelCacheSize: 1 }); // shrinking trims at once
  assert.equal(evicted, ['b', 'a', 'd']);
  assert.is(c.size, 1);
  // The backends' caches were trimmed too, and their evictions are counted with these.
  assert.ok(stats().kernelsEvicted >= 3);
});

test('the cache size must be a positive integer', async () => {
  for (const bad of [0, -1, 2.5, NaN]) {
    try {
      await init({ backend: 'cpu', kernelCacheSize: bad });
      assert.unreachable(`size ${bad}`);
    } catch (e) {
      assert.instance(e, KernelflowError);
      assert.is((e as KernelflowError).code, 'OPTION');
    }
  }
  assert.is(kernelCacheSize(), DEFAULT_KERNEL_CACHE_SIZE);
});

/** x_i^m summed over j against y_j (Pow's exponent is structural: one kernel per m). */
async function powerSums(backend: BackendName, M: number, N: number, powers: readonly number[]): Promise<void> {
  const xs = Float32Array.from({ length: M }, (_, i) => 0.5 + (i % 7) / 10);
  const ys = Float32Array.from({ length: N }, (_, j) => (j % 5) / 4);
  const x = source(xs, [M, 1]);
  const y = source(ys, [N, 1]);
  const sumY = ys.reduce((a, v) => a + v, 0);
  for (const m of powers) {
    const node: Node = Vi(x).pow(m).mul(Vj(y)).sum(1);
    const got = (await node.read()).data;
    for (let i = 0; i < M; i += Math.max(1, Math.floor(M / 17))) {
      const want = xs[i]! ** m * sumY;
      assert.ok(Math.abs(got[i]! - want) <= 1e-5 * Math.abs(want), `${backend}, m = ${m}, row ${i}: ${got[i]} vs ${want}`);
    }
    node.dispose();
  }
}

/** Powers b+1, b+2, b+3 (b new per test, so none is compiled yet) through a cache of two. */
async function evicts(backend: BackendName, M: number, N: number, b: number): Promise<void> {
  await init({ backend, kernelCacheSize: 2 });
  resetStats();
  await powerSums(backend, M, N, [b + 1, b + 2]); // the cache now holds exactly these two
  assert.is(stats().pipelinesCompiled, 2);
  resetStats();
  await powerSums(backend, M, N, [b + 3]);
  let s = stats();
  assert.is(s.pipelinesCompiled, 1);
  assert.is(s.kernelsEvicted, 1, 'b + 1, the least recently used, is evicted');
  resetStats();
  await powerSums(backend, M, N, [b + 2]); // still cached, and now more recent than b + 3
  assert.is(stats().pipelinesCompiled, 0);
  await powerSums(backend, M, N, [b + 1]); // compiled again; b + 3 goes
  await powerSums(backend, M, N, [b + 2]);
  s = stats();
  assert.is(s.pipelinesCompiled, 1);
  assert.is(s.kernelsEvicted, 1);
  assert.is(s.pipelineCacheHits, 2);
}

test('CPU: a full cache evicts the least recently used kernel and recompiles it on demand', () => evicts('cpu', 40, 30, 10));

test('CPU: workers drop evicted kernels and get them again (M*N large enough for the pool)', async () => {
  await evicts('cpu', 700, 400, 20);
  await powerSums('cpu', 700, 400, [22, 23, 21, 22]);
});

if (webgpuTestable(test, 'the WebGPU cache tests')) {
  test('WebGPU: a full cache evicts the least recently used pipeline and recompiles it on demand', () => evicts('webgpu', 40, 30, 30));
}

test.run();
