import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Pm, Vi, Vj } from '../../src/api/lazy.js';
import { ComputedNode, disposeAll, graphState } from '../../src/nodes/node.js';
import { fromJSON, printGraph, toJSON, type PipelineJSON } from '../../src/api/pipeline.js';
import { source } from '../../src/api/source.js';
import { KernelflowError } from '../../src/errors.js';
import {
  addNode,
  dependentsOf,
  downstream,
  emptyGraph,
  formatGraph,
  nodeIds,
  removeNodes,
  topoOrder,
  touch,
  upstream,
} from '../../src/graph/state.js';
import { resetStats, stats } from '../../src/stats.js';
import { rng, uniform } from '../helpers/random.js';

const r = rng(2);

test.after.each(() => disposeAll());

test('wiring is a pure update: earlier states are frozen and unchanged', () => {
  const [g1, x] = addNode(emptyGraph, { kind: 'source', label: 'x', inputs: [], shape: [4, 3] });
  const [g2, y] = addNode(g1, { kind: 'source', label: 'y', inputs: [], shape: [5, 3] });
  const [g3, a] = addNode(g2, {
    kind: 'reduction',
    label: '',
    inputs: [x, y],
    reduction: { formula: 'SqDist(Var(0,3,0),Var(1,3,1))', reduction: 'Min', axis: 1, weight: null, output: 0, dim: 1 },
  });
  const [g4, b] = addNode(g3, { kind: 'computed', label: 'b', inputs: [a, x] });
  assert.equal(nodeIds(g1), [0]);
  assert.equal(dependentsOf(g2, x), []);
  assert.equal(dependentsOf(g4, x), [a, b]);
  assert.ok(Object.isFrozen(g4) && Object.isFrozen(g4.nodes.get(a)) && Object.isFrozen(g4.nodes.get(a)!.inputs));
  assert.throws(() => addNode(g4, { kind: 'computed', label: '', inputs: [99] }), /#99/);
  // A change stamps the source and everything downstream with one new clock value.
  const g5 = touch(g4, [y]);
  assert.is(g5.clock, g4.clock + 1);
  assert.equal([x, y, a, b].map((id) => g5.nodes.get(id)!.version), [0, 1, 1, 1]);
  assert.equal([x, y, a, b].map((id) => g4.nodes.get(id)!.version), [0, 0, 0, 0]);
  assert.equal(downstream(g5, [y]).sort(), [y, a, b].sort());
  assert.equal(upstream(g5, [b]).sort(), [x, y, a, b].sort());
  assert.equal(topoOrder(g5, [b, a, y, x]), [x, y, a, b]);
  const g6 = removeNodes(g5, [a, b]);
  assert.equal(dependentsOf(g6, x), []);
  assert.is(g6.nodes.get(a), undefined);
  assert.ok(g5.nodes.get(a) !== undefined);
  assert.match(formatGraph(g5), /#2 reduction = Min_Reduction\(SqDist\(Var\(0,3,0\),Var\(1,3,1\)\),axis=1\)  Var\(0\) = #0, Var\(1\) = #1  v1/);
});

test('live nodes are recorded in the graph state; printGraph shows KeOps formulas', async () => {
  const x = source(Float32Array.from(uniform(r, 30)), [10, 3], 'x');
  const y = source(Float32Array.from(uniform(r, 60)), [20, 3], 'y');
  const [d, idx] = Vi(x).sqdist(Vj(y)).kminArgKmin(3, 1);
  const g = graphState();
  assert.equal(g.nodes.get(idx.id)!.inputs, [x.id, y.id]);
  assert.is(g.nodes.get(idx.id)!.reduction!.output, 1);
  assert.equal(g.nodes.get(x.id)!.shape, [10, 3]);
  const text = printGraph([d, idx]);
  assert.match(text, /kernelflow graph: 4 nodes/);
  assert.match(text, /source 'x' \[10, 3\] float32/);
  assert.match(text, /reduction = KMin_ArgKMin_Reduction\(SqDist\(Var\(0,3,0\),Var\(1,3,1\)\),K=3,axis=1\)\[output 1\]/);
  const v0 = graphState().nodes.get(d.id)!.version;
  x.set(Float32Array.from(uniform(r, 15)), [5, 3]);
  assert.ok(graphState().nodes.get(d.id)!.version > v0, 'a change stamps the dependents');
  assert.equal(graphState().nodes.get(x.id)!.shape, [5, 3]);
  assert.match(printGraph(), /source 'x' \[5, 3\]/);
});

/** Float64 sum_j exp(-g |x_i - y_j|^2) b_j. */
function gaussRef(x: Float32Array, y: Float32Array, b: Float32Array, g: number): number[] {
  const out: number[] = [];
  for (let i = 0; i < x.length / 3; i++) {
    let s = 0;
    for (let j = 0; j < y.length / 3; j++) {
      let d2 = 0;
      for (let k = 0; k < 3; k++) d2 += (x[i * 3 + k]! - y[j * 3 + k]!) ** 2;
      s += Math.exp(-g * d2) * b[j]!;
    }
    out.push(s);
  }
  return out;
}

function close(got: ArrayLike<number>, want: readonly number[], tol = 1e-5): void {
  assert.is(got.length, want.length);
  for (let k = 0; k < want.length; k++) {
    if (!(Math.abs(got[k]! - want[k]!) <= tol * Math.max(1, Math.abs(want[k]!)))) assert.unreachable(`[${k}] got ${got[k]} want ${want[k]}`);
  }
}

test('a pipeline saved to JSON and loaded back computes the same values (float64 reference)', async () => {
  const M = 23;
  const N = 31;
  const xs = Float32Array.from(uniform(r, M * 3));
  const ys = Float32Array.from(uniform(r, N * 3));
  const bs = Float32Array.from(uniform(r, N));
  const x = source(xs, [M, 3], 'x');
  const y = source(ys, [N, 3], 'y');
  const gauss = Vi(x).sqdist(Vj(y)).mul(Pm(0.8)).neg().exp().matmul({ data: bs, shape: [N, 1] });
  const energy = Vi(gauss).sum(0); // a reduction reading a reduction
  const [, idx] = Vi(x).sqdist(Vj(y)).kminArgKmin(3, 1);
  const lse = Vi(x).sqdist(Vj(y)).neg().logsumexp(1, { weight: Vj(y).sqnorm2() });
  const before = await Promise.all([gauss, energy, idx, lse].map((n) => n.read()));

  const text = JSON.stringify(toJSON([gauss, energy, idx, lse]));
  const saved = JSON.parse(text) as PipelineJSON;
  assert.is(saved.nodes.filter((n) => n.kind === 'source').length, 4, 'x, y, b and the Pm constant');
  disposeAll();

  resetStats();
  const loaded = fromJSON(text);
  const [g2, e2, i2, l2] = loaded.outputs;
  const after = await Promise.all([g2!, e2!, i2!, l2!].map((n) => n.read()));
  assert.is(stats().dispatches, 2, 'the gauss sum, the kMin/argKMin pair (its values output was not saved) and lse run as one fused kernel, the energy reading gauss as a second');
  const want = gaussRef(xs, ys, bs, 0.8);
  close(after[0]!.data, want);
  close(after[1]!.data, [want.reduce((a, v) => a + v, 0)]);
  assert.ok(after[2]!.data instanceof Int32Array);
  assert.equal([...after[2]!.data], [...before[2]!.data]);
  close(after[3]!.data, [...before[3]!.data]);
  assert.equal(after.map((t) => t.shape), before.map((t) => t.shape));

  // The rebuilt graph is live: its sources feed its reductions.
  const lx = loaded.sources.find((s) => s.label === 'x')!;
  const xs2 = Float32Array.from(uniform(r, 4 * 3));
  lx.set(xs2, [4, 3]);
  close((await g2!.read()).data, gaussRef(xs2, ys, bs, 0.8));
});

test('pipelines written by hand: aliases, data as number arrays', async () => {
  const json: PipelineJSON = {
    format: 'kernelflow-pipeline',
    version: 1,
    nodes: [
      { id: 0, kind: 'source', label: 'x', shape: [2, 1], data: [0, 1] },
      { id: 1, kind: 'source', label: 'y', shape: [3, 1], data: [0, 1, 2] },
      { id: 2, kind: 'reduction', formula: 'Exp(-SqDist(a, b))', aliases: ['a = Vi(1)', 'b = Vj(1)'], reduction: 'Sum', axis: 1, inputs: [0, 1] },
      { id: 3, kind: 'reduction', formula: 'SqDist(a, b)', aliases: ['a = Vi(1)', 'b = Vj(1)'], reduction: 'ArgMin', axis: 0, inputs: [0, 1] },
    ],
    outputs: [2, 3],
  };
  const { outputs } = fromJSON(json);
  close((await outputs[0]!.read()).data, [1 + Math.exp(-1) + Math.exp(-4), Math.exp(-1) + 1 + Math.exp(-1)]);
  assert.equal([...(await outputs[1]!.read()).data], [0, 1, 1]);
  // Round trip through toJSON with number arrays.
  const again = toJSON(outputs, { data: 'array' });
  assert.equal((again.nodes[0] as { data: readonly number[] }).data, [0, 1]);
  assert.is((again.nodes[2] as { formula: string }).formula, 'Exp(-SqDist(Var(0,1,0),Var(1,1,1)))');
});

test('what cannot be saved or loaded says why', () => {
  const x = source(Float32Array.of(1, 2), [2, 1], 'x');
  const f = new ComputedNode([x], async (v) => v[0]!, 'my function');
  assert.throws(() => toJSON([f]), (e: unknown) => e instanceof KernelflowError && /my function.*JavaScript function/.test(e.message));
  assert.throws(() => fromJSON('{"nodes": [{"id": 0, "kind": "reduction", "formula": "x", "aliases": ["x = Vi(1)"], "reduction": "Sum", "axis": 1, "inputs": [4]}]}'), /reads node 4/);
  assert.throws(() => fromJSON('{"nodes": [{"id": 0, "kind": "tensor"}]}'), /unknown kind 'tensor'/);
  assert.throws(() => fromJSON({ format: 'kernelflow-pipeline', version: 1, nodes: [{ id: 0, kind: 'source', shape: [3], data: [1, 2] }], outputs: [] }), /2 values/);
});

test.run();
