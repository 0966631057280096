import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { delayUnless, observePace, paceFor, type PaceState } from '../../src/gpu/pace.js';

test('a tiny call does not set the pace: its fixed costs would predict seconds of sleep for a large call', () => {
  const s: PaceState = {};
  observePace(s, 64, 0, 5, undefined); // first call: includes the shader compile, not timed
  observePace(s, 25, 0, 2, undefined); // 25 pairs in 2 ms: all fixed cost
  assert.is(paceFor(s, 144e6), 0, 'no estimate yet, no sleep');
  observePace(s, 1e6, 0, 3, undefined); // a call large enough to time
  assert.ok(paceFor(s, 144e6) < 500, `a sleep in proportion: ${paceFor(s, 144e6)} ms`);
});

test('delayUnless ends when its stop signal settles', async () => {
  const t0 = Date.now();
  await delayUnless(10_000, new Promise((res) => setTimeout(res, 5)));
  assert.ok(Date.now() - t0 < 1000);
  await delayUnless(10_000, Promise.reject(new Error('lost')));
});

test.run();
