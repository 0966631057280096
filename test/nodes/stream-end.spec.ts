import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { EMPTY, Subject, throwError } from 'rxjs';
import { Vi, Vj } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { DataError } from '../../src/errors.js';
import { disposeAll } from '../../src/nodes/node.js';
import type { TensorLike } from '../../src/tensor.js';
import { collect, settle } from '../helpers/graph.js';

test.after.each(() => disposeAll());

/** The promise's error, or a failure if it does not settle within `ms` (a hang fails the test, it does not stall it). */
async function rejection(p: Promise<unknown>, ms = 1000): Promise<unknown> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const hang = new Promise<'hang'>((res) => (timer = setTimeout(() => res('hang'), ms)));
  try {
    const r = await Promise.race([p.then(() => 'resolved' as const), hang]);
    assert.unreachable(`expected a rejection, got: ${r}`);
  } catch (e) {
    if (e instanceof assert.Assertion) throw e;
    return e;
  } finally {
    clearTimeout(timer);
  }
}

const frame = (v: number): TensorLike => ({ data: Float32Array.of(v, 0), shape: [1, 2] });
const y = (): TensorLike => ({ data: Float32Array.of(0, 0, 3, 4), shape: [2, 2] });

async function* none(): AsyncGenerator<TensorLike> {}
async function* failing(): AsyncGenerator<TensorLike> {
  throw new Error('scanner unplugged');
}

const ended = [
  ['an Observable that completes at once (EMPTY)', () => EMPTY],
  ['an AsyncIterable that ends at once', () => none()],
] as const;

for (const [what, stream] of ended) {
  test(`${what}: read() rejects with a DataError naming the source, downstream too`, async () => {
    const scan = source(stream(), [0, 2], 'scan');
    const d = Vi(scan).sqdist(Vj(y())).min(1);
    const e = await rejection(d.read());
    assert.instance(e, DataError);
    assert.is((e as Error).message, "source 'scan': its stream completed before its first frame, so it has no value");
    assert.instance(await rejection(scan.read()), DataError);
  });
}

test('a read issued before the stream completes settles when it completes', async () => {
  const frames = new Subject<TensorLike>();
  const scan = source(frames, [0, 2], 'scan');
  const pending = Vi(scan).sqdist(Vj(y())).min(1).read();
  await settle(10);
  frames.complete();
  assert.match(String(await rejection(pending)), /source 'scan': its stream completed before its first frame/);
});

const failed = [
  ['an Observable that errors before its first frame', () => throwError(() => new Error('scanner unplugged'))],
  ['an AsyncIterable that throws before its first frame', () => failing()],
] as const;

for (const [what, stream] of failed) {
  test(`${what}: a DataError naming the source, the stream's error as its cause`, async () => {
    const scan = source(stream(), [0, 2], 'scan');
    const e = await rejection(Vi(scan).sqnorm2().sum(1).read());
    assert.instance(e, DataError);
    assert.is((e as Error).message, "source 'scan': its stream failed: scanner unplugged");
    assert.is(((e as Error).cause as Error).message, 'scanner unplugged');
  });
}

test('a stream that completes after a frame keeps its last value', async () => {
  const frames = new Subject<TensorLike>();
  const scan = source(frames, [0, 2], 'scan');
  const n = Vi(scan).sqnorm2().sum(1);
  frames.next(frame(3));
  frames.complete();
  assert.equal([...(await n.read()).data], [9]);
});

test('an AsyncIterable that ends after its frames keeps the last one', async () => {
  async function* two(): AsyncGenerator<TensorLike> {
    yield frame(1);
    yield frame(2);
  }
  const scan = source(two(), [0, 2], 'scan');
  const n = Vi(scan).sqnorm2().sum(1);
  const seen = collect(n);
  await settle(20);
  await settle(20);
  assert.equal(seen.values, [1, 4], 'pulled frame by frame');
  assert.equal(seen.errors, [], 'the end of the stream is not an error');
  assert.equal([...(await n.read()).data], [4]);
});

test.run();
