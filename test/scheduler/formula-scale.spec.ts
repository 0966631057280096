/**
 * Formulas at scale, end to end: heavily shared DAGs, deep chains and long formula strings
 * either work (with values checked against float64) or fail with a typed LimitError that says
 * which limit was hit; never a RangeError or a crash. Limits through the LazyTensor API.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { genred } from '../../src/api/genred.js';
import { Pm, Vi, Vj, type LazyTensor } from '../../src/api/lazy.js';
import { fromJSON, printGraph, toJSON } from '../../src/api/pipeline.js';
import { source } from '../../src/api/source.js';
import { KernelflowError, LimitError } from '../../src/errors.js';
import { disposeAll } from '../../src/nodes/node.js';
import { init, shutdown, type BackendName } from '../../src/scheduler/backends.js';
import { webgpuTestable } from '../helpers/adapter.js';

test.after.each(() => disposeAll());
// Later suites in this process expect the default backend (CPU) again.
test.after(async () => {
  await init({ backend: 'cpu' });
  await shutdown();
});

/** Runs `fn`, expects a LimitError for `which`; returns its message. */
async function limitHit(fn: () => unknown, which: string): Promise<string> {
  try {
    await fn();
  } catch (e) {
    assert.ok(e instanceof LimitError, `expected a LimitError, got ${String(e)}`);
    assert.is((e as LimitError).limit, which, (e as Error).message);
    assert.is((e as KernelflowError).code, 'LIMIT');
    assert.ok((e as Error).message.length < 2000, 'the message is bounded');
    return (e as Error).message;
  }
  assert.unreachable(`no LimitError for ${which}`);
  return '';
}

const XS = [0.05, -0.3, 0.2];

/** x = x*x + x forty times: 121 nodes, a printed tree of ~10^20 characters. */
async function sharedDag(backend: BackendName): Promise<void> {
  await init({ backend });
  const x = source(Float32Array.from(XS), [3, 1]);
  let f: LazyTensor = Vi(x).mul(0.01);
  for (let k = 0; k < 40; k++) f = f.mul(f).add(f);
  const text = f.formulaString;
  assert.is(text.length, 10_003, 'toString is elided');
  const node = f.sum(1);
  assert.ok(node.describe().length < 600);
  assert.ok(printGraph([node]).length < 11_000);
  const got = (await node.read()).data;
  XS.forEach((v0, i) => {
    let v = Math.fround(v0) * 0.01;
    for (let k = 0; k < 40; k++) v = v * v + v;
    assert.ok(Math.abs(got[i]! - v) <= 1e-5 * Math.abs(v), `${backend} row ${i}: ${got[i]} vs ${v}`);
  });
  // Saving needs the full text, which would be ~10^20 characters.
  await limitHit(() => toJSON([node]), 'printLength');
}

test('CPU: x = x*x + x forty times computes, prints bounded, and cannot be saved (typed)', () => sharedDag('cpu'));

test('a LazyTensor chain of depth 100 000 fails typed: more nodes than one kernel takes', async () => {
  await init({ backend: 'cpu' });
  const x = source(Float32Array.from(XS), [3, 1]);
  let t = Vi(x);
  for (let k = 0; k < 100_000; k++) t = t.add(1);
  assert.ok(t.formulaString.endsWith('...'));
  const msg = await limitHit(() => t.sum(1), 'kernelNodes');
  assert.match(msg, /100002 distinct nodes/);
});

test('a chain of depth 3000 computes, and round-trips through toJSON / fromJSON', async () => {
  await init({ backend: 'cpu' });
  const x = source(Float32Array.from(XS), [3, 1]);
  let t = Vi(x);
  for (let k = 0; k < 3000; k++) t = t.add(k % 2 === 0 ? 0.5 : -0.25);
  const node = t.sum(1);
  const want = XS.map((v) => Math.fround(v) + 1500 * 0.5 - 1500 * 0.25);
  const close = (got: ArrayLike<number>): boolean => want.every((w, i) => Math.abs(got[i]! - w) < 1e-4);
  assert.ok(close((await node.read()).data));
  const saved = JSON.stringify(toJSON([node]));
  assert.ok(saved.includes('('.repeat(3000)), 'saved with its 3000 nested parentheses');
  const { outputs } = fromJSON(saved);
  assert.ok(close((await outputs[0]!.read()).data));
});

test('a 100 000-term sum string parses, then fails typed: more nodes than one kernel takes', async () => {
  const s = Array.from({ length: 100_000 }, () => 'x').join('+');
  await limitHit(() => genred(s, ['x = Vi(1)'], { reduction: 'Sum', axis: 1, backend: 'cpu' }), 'kernelNodes');
});

test('limits through the LazyTensor API name the culprit', async () => {
  const x = source(Float32Array.from(XS), [3, 1]);
  assert.match(await limitHit(() => Vi(x).kmin(1_000_000, 1), 'K'), /K = 1000000/);
  assert.match(await limitHit(() => Vi(x).elem(3e9), 'param'), /Elem/);
  assert.match(await limitHit(() => Pm(new Array<number>(70_000).fill(0)), 'dim'), /70000/);
  assert.match(await limitHit(() => genred('Var(1e300,1,0)', [], { reduction: 'Sum', axis: 1 }), 'varIndex'), /1e\+300/);
  assert.match(await limitHit(() => genred('Sum(Zero(100000000))', [], { reduction: 'Sum', axis: 1 }), 'dim'), /100000000/);
  await limitHit(() => genred('Sum(Vi(4294967295,1))', [], { reduction: 'Sum', axis: 1 }), 'varIndex');
});

test('CPU: the widest vector works or fails typed (never a RangeError)', async () => {
  const sum = genred('Sum(Zero(65536) + x)', ['x = Vi(1)'], { reduction: 'Sum', axis: 1, backend: 'cpu' });
  try {
    const got = (await sum({ data: Float32Array.of(2), shape: [1, 1] })).data;
    assert.equal([...got], [131072]);
  } catch (e) {
    assert.ok(e instanceof LimitError, `expected a LimitError, got ${String(e)}`);
  }
});

if (webgpuTestable(test, 'the WebGPU scale tests')) {
  test('WebGPU: x = x*x + x forty times computes, prints bounded, and cannot be saved (typed)', () => sharedDag('webgpu'));
  test('WebGPU: a short chain with a parameter and literals computes', async () => {
    await init({ backend: 'webgpu' });
    const x = source(Float32Array.from(XS), [3, 1]);
    const y = source(Float32Array.of(1, 2), [2, 1]);
    let t = Vi(x).sub(Vj(y));
    for (let k = 0; k < 200; k++) t = t.mul(1.001).add(0.001);
    const got = (await t.sum(1).read()).data;
    XS.forEach((v, i) => {
      let want = 0;
      for (const w of [1, 2]) {
        let u = Math.fround(v) - w;
        for (let k = 0; k < 200; k++) u = u * 1.001 + 0.001;
        want += u;
      }
      assert.ok(Math.abs(got[i]! - want) < 1e-4 * (1 + Math.abs(want)), `row ${i}: ${got[i]} vs ${want}`);
    });
  });
}

test.run();
