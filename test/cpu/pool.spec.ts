import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { genred } from '../../src/api/genred.js';
import { busyWorkersForTesting, killBusyWorkerForTesting, WorkerPool } from '../../src/cpu/pool.js';
import { BackendError } from '../../src/errors.js';
import { init, shutdown } from '../../src/scheduler/backends.js';
import { sleep } from '../helpers/graph.js';
import { rng, uniform } from '../helpers/random.js';

/*
 * Faults of the CPU backend's worker threads: a worker that dies and a shutdown() during a
 * computation settle every pending call within a second with a transient BackendError, and the
 * next call succeeds (issue 12).
 */

/** A kernel source for the pool: each row busy-waits `ins[0][0]` ms, then writes its index. */
const SLOW = `return (N, i0, i1, ins, outs) => {
  for (let i = i0; i < i1; i++) { const t = Date.now(); while (Date.now() - t < ins[0][0]) {} outs[0][i] = i; }
};`;

function job(ms: number, rows: number) {
  const ins = [new Float32Array(new SharedArrayBuffer(4)).fill(ms)];
  const out = new Float32Array(new SharedArrayBuffer(rows * 4));
  return { base: { key: 'slow', source: SLOW, N: 0, ins, outs: [out] }, out };
}

/** How a promise settles within `ms`: its value or error, or 'pending' (never leaves a timer behind). */
async function within<T>(p: Promise<T>, ms: number): Promise<{ ok: true; value: T } | { ok: false; error: unknown } | 'pending'> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<'pending'>((res) => (timer = setTimeout(() => res('pending'), ms)));
  const r = await Promise.race([p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error })), late]);
  clearTimeout(timer);
  return r;
}

async function until(cond: () => boolean, what: string, ms = 5000): Promise<void> {
  const t0 = Date.now();
  while (!cond()) {
    if (Date.now() - t0 > ms) throw new Error(`timed out waiting for ${what}`);
    await sleep(2);
  }
}

/** The error of a call that must fail with a transient BackendError within 1 s of `fault()`. */
async function failsWithin1s(p: Promise<unknown>, fault: () => unknown): Promise<BackendError> {
  const outcome = p.then((value) => ({ ok: true as const, value }), (error: unknown) => ({ ok: false as const, error }));
  await fault();
  const r = await within(outcome.then((o) => (o.ok ? o.value : Promise.reject(o.error))), 1000);
  assert.ok(r !== 'pending', 'the pending call settled within 1 s');
  assert.ok(!r.ok, 'the pending call failed');
  assert.instance(r.error, BackendError);
  assert.ok((r.error as BackendError).transient, 'a transient fault');
  return r.error as BackendError;
}

test('a worker killed mid-computation fails its call within 1 s; its slot gets a new worker; the next call succeeds', async () => {
  const pool = await WorkerPool.create(2);
  try {
    const { base } = job(5000, 2);
    const p = pool.run(base, 2, 1);
    await until(() => pool.busy() === 2, 'both workers busy');
    const before = pool.threadIds();
    const e = await failsWithin1s(p, () => pool.killBusyWorker());
    assert.match(e.message, /a worker thread died during the computation/);
    const after = pool.threadIds();
    assert.is(after.length, 2, 'the pool keeps its size');
    assert.is(after.filter((id) => !before.includes(id)).length, 1, 'exactly one new worker');
    // The other worker is still busy with its 5 s chunk of the failed call: let it finish in the
    // background; the next call runs on the new worker.
    const next = job(0, 6);
    await pool.run(next.base, 6, 1);
    assert.equal([...next.out], [0, 1, 2, 3, 4, 5]);
  } finally {
    await pool.close();
  }
});

test('a worker that exits or crashes inside a kernel: a transient BackendError saying how; the pool keeps working', async () => {
  const pool = await WorkerPool.create(1);
  try {
    const run = (source: string) => {
      const { base } = job(0, 1);
      return pool.run({ ...base, key: source, source }, 1, 1);
    };
    const exited = await failsWithin1s(run('return () => process.exit(7);'), () => undefined);
    assert.match(exited.message, /a worker thread died during the computation \(exit code 7\)/);
    // An error the worker's own handler cannot report (its stack getter throws) escapes and kills it.
    const crashed = await failsWithin1s(run("return () => { throw { get stack() { throw new Error('boom'); } }; };"), () => undefined);
    assert.match(crashed.message, /a worker thread died during the computation \(boom\)/);
    // A kernel that throws is reported by the worker, which lives on: a BackendError, not transient.
    const r = await within(run("return () => { throw new Error('bad kernel'); };"), 1000);
    assert.ok(r !== 'pending' && !r.ok);
    assert.instance(r.error, BackendError);
    assert.not.ok((r.error as BackendError).transient);
    assert.match((r.error as Error).message, /^CPU backend: the kernel failed in a worker: Error: bad kernel/);
    const next = job(0, 3);
    await pool.run(next.base, 3, 1);
    assert.equal([...next.out], [0, 1, 2]);
  } finally {
    await pool.close();
  }
});

test('the chunks of a failed call still queued are dropped, not computed', async () => {
  const pool = await WorkerPool.create(1);
  try {
    const { base, out } = job(300, 4);
    const p = pool.run(base, 4, 1);
    await until(() => pool.busy() === 1, 'the worker busy');
    await failsWithin1s(p, () => pool.killBusyWorker());
    await sleep(400);
    assert.is(pool.busy(), 0, 'nothing left to compute');
    assert.equal([...out].slice(1), [0, 0, 0], 'queued rows never ran');
  } finally {
    await pool.close();
  }
});

test('close() fails every pending call within 1 s, queued ones too; a closed pool refuses new calls', async () => {
  const pool = await WorkerPool.create(1);
  const a = pool.run(job(5000, 1).base, 1, 1);
  const b = pool.run(job(5000, 1).base, 1, 1); // queued behind a
  await until(() => pool.busy() === 1, 'the worker busy');
  const t0 = Date.now();
  const closing = pool.close();
  for (const p of [a, b]) {
    const r = await within(p, 1000);
    assert.ok(r !== 'pending' && !r.ok && r.error instanceof BackendError && r.error.transient);
  }
  await closing;
  assert.ok(Date.now() - t0 < 1000, 'close() itself is prompt');
  const late = await within(pool.run(job(0, 1).base, 1, 1), 1000);
  assert.ok(late !== 'pending' && !late.ok && late.error instanceof BackendError);
});

// ---- through the public API: genred on the CPU backend's pool ----

const r = rng(12);
const M = 3000;
const N = 3000; // 9e6 pairs: on the worker pool, a few hundred ms of work
const x = { data: Float32Array.from(uniform(r, M * 3)), shape: [M, 3] };
const y = { data: Float32Array.from(uniform(r, N * 3)), shape: [N, 3] };
const op = genred('Exp(-SqDist(x,y))', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'Sum', axis: 1, backend: 'cpu' });
const small = { data: Float32Array.of(0, 0, 0), shape: [1, 3] };
const one = { data: Float32Array.of(0, 0, 0), shape: [1, 3] };

test.before(async () => {
  await init({ backend: 'cpu' });
});
test.after(async () => {
  await shutdown();
});

test('genred: a worker that dies mid-computation fails the call within 1 s; the next call succeeds', async () => {
  const p = op(x, y);
  await until(() => busyWorkersForTesting() > 0, 'a busy worker');
  await failsWithin1s(p, () => assert.ok(killBusyWorkerForTesting(), 'a worker was busy'));
  const again = (await op(x, y)) as { data: Float32Array; shape: number[] };
  assert.equal(again.shape, [M, 1]);
  assert.ok(again.data.every((v) => v > 0 && v <= N), 'a finished sum');
  assert.equal([...((await op(small, one)) as { data: Float32Array }).data], [1]);
});

test('genred: shutdown() mid-computation fails the call within 1 s; the next call starts the pool again', async () => {
  const p = op(x, y);
  await until(() => busyWorkersForTesting() > 0, 'a busy worker');
  const e = await failsWithin1s(p, () => shutdown());
  assert.match(e.message, /shutdown\(\)/);
  const again = (await op(x, y)) as { data: Float32Array; shape: number[] };
  assert.ok(again.data.every((v) => v > 0 && v <= N), 'a finished sum');
});

test.run();
