import { test } from 'uvu';
import * as assert from 'uvu/assert';
import {
  DataError,
  DimensionError,
  genred,
  KernelflowError,
  ParseError,
  ReductionError,
  source,
  Vi,
  Vj,
} from '../../src/index.js';

const t = (rows: number, dim: number) => ({ data: new Float32Array(rows * dim).fill(0.5), shape: [rows, dim] });

/** Asserts `fn` throws (or rejects with) `cls` whose message contains every `parts`. */
async function throwsWith(fn: () => unknown, cls: new (...a: never[]) => Error, ...parts: string[]): Promise<void> {
  let caught: unknown;
  try {
    await fn();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught instanceof cls, `expected ${cls.name}, got ${String(caught)}`);
  assert.ok(caught instanceof KernelflowError, 'is a KernelflowError');
  for (const p of parts) assert.ok((caught as Error).message.includes(p), `message "${(caught as Error).message}" names "${p}"`);
}

test('parse errors name the culprit and the column', async () => {
  await throwsWith(() => genred('Exp(x) + Foo(x)', ['x = Vi(1)'], { reduction: 'Sum' }), ParseError, 'Foo', 'column 10');
  await throwsWith(() => genred('Exp((x)', ['x = Vi(1)'], { reduction: 'Sum' }), ParseError, 'column 4');
  await throwsWith(() => genred('x + z', ['x = Vi(1)'], { reduction: 'Sum' }), ParseError, "'z'", 'column 5');
  await throwsWith(() => genred('x', ['x = Vq(1)'], { reduction: 'Sum' }), ParseError, 'x = Vq(1)');
});

test('dimension errors name the op or the argument', async () => {
  await throwsWith(() => genred('x + y', ['x = Vi(2)', 'y = Vj(3)'], { reduction: 'Sum' }), DimensionError, 'Add');
  const op = genred('SqDist(x, y)', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'Sum', axis: 1 });
  await throwsWith(() => op(t(4, 2), t(5, 3)), DimensionError, "'x'", '[4, 2]');
  const xs = genred('x * y', ['x = Vi(1)', 'y = Vi(1)'], { reduction: 'Sum', axis: 1 });
  await throwsWith(() => xs(t(4, 1), t(5, 1)), DimensionError, "'y'", '5 rows', "'x'");
  // @ts-expect-error a wrong argument count does not compile; at run time it is an error too
  await throwsWith(() => op(t(4, 3)), KernelflowError, 'expected 2 arguments');
});

test('a TensorLike whose data length differs from its shape is a DataError naming it', async () => {
  const op = genred('SqDist(x, y)', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'Sum', axis: 1 });
  await throwsWith(() => op(t(4, 3), { data: new Float32Array(7), shape: [3, 3] }), DataError, "'y'", '7 values', '[3, 3]');
  await throwsWith(() => source(new Float32Array(5), [2, 3]), DataError, '5 values');
});

test('K larger than the reduced extent, unknown reductions and bad axes are ReductionErrors', async () => {
  const op = genred('SqDist(x, y)', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'ArgKMin', axis: 1, K: 6 });
  await throwsWith(() => op(t(4, 3), t(5, 3)), ReductionError, 'K = 6', 'extent 5');
  await throwsWith(() => genred('x', ['x = Vi(1)'], { reduction: 'Median' as 'Sum' }), ReductionError, 'Median');
  const x = source(new Float32Array(3), [3, 1]);
  await throwsWith(() => Vi(x).sub(Vj(x)).kmin(0, 1), ReductionError, 'K');
  await throwsWith(() => Vi(x).sum(2 as 0), ReductionError, 'axis');
  await throwsWith(() => Vi(x).concat(Vj(x)).sumSoftmaxWeight(Vi(x), 1), ReductionError, "scalar");
});

test('bad input never hangs and never mutates the caller data', async () => {
  const data = Float32Array.from([1, 2, 3]);
  const op = genred('x - y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'KMin', K: 4, axis: 1 });
  await throwsWith(() => op({ data, shape: [3, 1] }, { data, shape: [3, 1] }), ReductionError);
  assert.equal([...data], [1, 2, 3]);
  for (const bad of ['', '((((((', ')', 'Exp(', 'x +', '1e', 'Pow(x)']) {
    await throwsWith(() => genred(bad, ['x = Vi(1)'], { reduction: 'Sum' }), KernelflowError);
  }
});

test.run();
