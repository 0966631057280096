import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Subject } from 'rxjs';
import { Vi, Vj } from '../../src/api/lazy.js';
import { source } from '../../src/api/source.js';
import { trieNodesMade } from '../../src/graph/intmap.js';
import { addNode, emptyGraph, removeNodes, touch, type GraphState } from '../../src/graph/state.js';
import { disposeAll, graphState, type Node } from '../../src/nodes/node.js';
import { stats } from '../../src/stats.js';
import type { TensorLike } from '../../src/tensor.js';
import { collect, settle } from '../helpers/graph.js';

/*
 * The graph's size does not make wiring dearer (issue 12): adding, describing and removing a node
 * copies O(its edges) of the state, counted here in trie nodes made (no timing). bench/soak.ts
 * measures the time at 1k and 10k live nodes.
 */

test.after.each(() => disposeAll());

/** Trie nodes made by `fn` (the state's only allocation that could grow with the graph). */
function cost(fn: () => void): number {
  const before = trieNodesMade();
  fn();
  return trieNodesMade() - before;
}

test('adding, removing and changing a node copy one trie path per edge, whatever the graph size', () => {
  const grow = (n: number): [GraphState, number] => {
    let g = emptyGraph;
    let x = 0;
    for (let k = 0; k < n; k++) [g, x] = addNode(g, { kind: 'source', label: '', inputs: [], shape: [1, 1] });
    return [g, x];
  };
  const add = (g: GraphState, x: number) => () => {
    addNode(g, { kind: 'reduction', label: '', inputs: [x, x - 1] });
  };
  // A path is as deep as the largest id needs (log32: 3 levels from 1024 to 32767 ids), so graphs
  // of 1100 and 3000 nodes pay the same; one of 30 pays 1 level.
  const [g30, x30] = grow(30);
  const [g1100, x1100] = grow(1100);
  const [g3000, x3000] = grow(3000);
  const c1100 = cost(add(g1100, x1100));
  const c3000 = cost(add(g3000, x3000));
  assert.is(c3000, c1100, 'the same cost at 1100 and at 3000 nodes');
  // Paths: the record, the new adjacency entry, and per input its set and its entry: 6 paths of 3.
  assert.is(c3000, 6 * 3);
  assert.is(cost(add(g30, x30)), 6 * 1);
  assert.is(cost(() => removeNodes(g3000, [x3000])), 3 * 2, 'a node without edges: its record and its adjacency entry');
  assert.is(cost(() => touch(g3000, [x3000])), 3, 'a change that reaches one node: its record');
});

test('3000 nodes wired and disposed while frames stream: values stay right, the graph and its bytes return to where they were', async () => {
  const nodesBefore = graphState().nodes.size;
  const bytesBefore = stats().bytesAllocated;
  const frames = new Subject<TensorLike>();
  const scan = source(frames, [0, 2], 'scan');
  const y = source(Float32Array.of(0, 0, 3, 4), [2, 2], 'y');
  const near = Vi(scan).sqdist(Vj(y)).min(1);
  const seen = collect(near);
  const made: Node[] = [];
  const costs: number[] = [];
  for (let k = 0; k < 1000; k++) {
    costs.push(
      cost(() => {
        const s = source(Float32Array.of(k, 0), [1, 2], `s${k}`);
        made.push(s, Vi(s).sqdist(Vj(y)).sum(1), Vi(s).sqnorm2().sum(1));
      }),
    );
    if (k % 100 === 0) {
      frames.next({ data: Float32Array.of(k, 0), shape: [1, 2] });
      await settle();
    }
  }
  assert.is(graphState().nodes.size, nodesBefore + 3 + 3000);
  // What wiring costs does not grow with the graph: at 1200-1500 live nodes as at 2700-3000.
  const mean = (a: number[]): number => a.reduce((s, v) => s + v, 0) / a.length;
  const [early, late] = [mean(costs.slice(400, 500)), mean(costs.slice(-100))];
  assert.ok(late <= early * 1.1, `${early} then ${late} trie nodes per source and two reductions`);
  assert.equal([...(await made[2999]!.read()).data], [999 * 999]);
  assert.equal([...(await made[1]!.read()).data], [0 + 25]);
  assert.is(seen.values.length, 10, 'every frame sent with a settle in between was computed');
  assert.is(seen.values[9], (900 - 3) ** 2 + 16);
  for (const n of made) n.dispose();
  assert.is(graphState().nodes.size, nodesBefore + 3, 'the stream, y and the observed reduction are left');
  frames.next({ data: Float32Array.of(3, 4), shape: [1, 2] });
  await settle();
  assert.is(seen.values.at(-1), 0, 'the stream still flows');
  scan.dispose();
  y.dispose();
  assert.is(graphState().nodes.size, nodesBefore);
  assert.is(stats().bytesAllocated, bytesBefore, 'every cached value was freed');
});

test.run();
