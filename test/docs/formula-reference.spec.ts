/**
 * docs/formula-reference.md is generated from the op and reduction tables by
 * scripts/gen-formula-reference.ts; this fails when the committed file no longer matches them
 * (an op added, an arity or gradient changed), or when an op has no hand-written definition line.
 */
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { readFileSync } from 'node:fs';
import { render } from '../../scripts/gen-formula-reference.js';
import { disposeAll } from '../../src/nodes/node.js';

// render() builds sample LazyTensors and reduction nodes to check the LazyTensor spellings.
test.after(disposeAll);

test('docs/formula-reference.md is up to date with OPS and REDUCTIONS', () => {
  const want = render();
  const have = readFileSync(new URL('../../docs/formula-reference.md', import.meta.url), 'utf8');
  assert.ok(have === want, 'docs/formula-reference.md is out of date: run npx tsx scripts/gen-formula-reference.ts');
});

test.run();
