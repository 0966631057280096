import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { fromJSON, KernelflowError, ParseError, source, toJSON, Vi, Vj } from '../../src/index.js';
import { PipelineError } from '../../src/errors.js';
import { disposeAll, graphState } from '../../src/nodes/node.js';

/*
 * fromJSON checks the pipeline format before building anything (issue 12): each malformed file is
 * a PipelineError (a KernelflowError, code 'JSON') giving the JSON path of the culprit, and a
 * failed load leaves no node behind.
 */

test.after.each(() => disposeAll());

const src = (over: Record<string, unknown> = {}) => ({ id: 0, kind: 'source', label: 'x', shape: [2, 1], data: [1, 2], ...over });
const red = (over: Record<string, unknown> = {}) => ({
  id: 1,
  kind: 'reduction',
  formula: 'SqDist(a,b)',
  aliases: ['a = Vi(1)', 'b = Vj(1)'],
  reduction: 'Sum',
  axis: 1,
  inputs: [0, 0],
  ...over,
});
const doc = (over: Record<string, unknown> = {}) => ({ format: 'kernelflow-pipeline', version: 1, nodes: [src(), red()], outputs: [1], ...over });

/** fromJSON(input) fails with a PipelineError at `path` whose message is `message`, and builds nothing. */
function rejects(input: unknown, path: string, message: string): void {
  const before = graphState().nodes.size;
  let e: unknown;
  try {
    fromJSON(input as never);
  } catch (err) {
    e = err;
  }
  assert.instance(e, PipelineError, `${path}: ${String(e)}`);
  assert.instance(e, KernelflowError);
  assert.is((e as PipelineError).code, 'JSON');
  assert.is((e as PipelineError).path, path);
  assert.is((e as Error).message, `${path}: ${message}`);
  assert.is(graphState().nodes.size, before, 'nothing was built');
}

test('a well-formed file loads (with and without format and version)', async () => {
  assert.equal([...(await fromJSON(doc() as never).outputs[0]!.read()).data], [1, 1]);
  assert.equal([...(await fromJSON({ nodes: [src(), red()], outputs: [1] } as never).outputs[0]!.read()).data], [1, 1]);
});

test('text that is not JSON, and documents that are not pipelines', () => {
  let e: unknown;
  try {
    fromJSON('{"nodes": [');
  } catch (err) {
    e = err;
  }
  assert.instance(e, PipelineError);
  assert.is((e as PipelineError).path, '$');
  assert.match((e as Error).message, /^\$: not JSON: /);
  assert.instance((e as Error).cause, SyntaxError);
  rejects('null', '$', 'expected a kernelflow pipeline { format, version, nodes, outputs }, got null');
  rejects('[1, 2]', '$', 'expected a kernelflow pipeline { format, version, nodes, outputs }, got an array of 2');
  rejects({ outputs: [] }, '$.nodes', 'is missing');
  rejects(doc({ nodes: { 0: src() } }), '$.nodes', 'expected an array of nodes, got an object (Object)');
  rejects(doc({ format: 'onnx' }), '$.format', "expected one of 'kernelflow-pipeline', got 'onnx'");
  rejects(doc({ version: 99 }), '$.version', 'unknown pipeline version 99: this kernelflow reads version 1');
  rejects(doc({ version: '1' }), '$.version', "unknown pipeline version '1': this kernelflow reads version 1");
  rejects(doc({ extra: true }), '$.extra', "unknown field 'extra' (known: nodes, format, version, outputs)");
});

test('null nodes and fields of the wrong type', () => {
  rejects(doc({ nodes: [null] }), '$.nodes[0]', 'expected a node { id, kind, ... }, got null');
  rejects(doc({ nodes: [src({ kind: 'tensor' }), red()] }), '$.nodes[0].kind', "node 0: unknown kind 'tensor' (a node is a 'source' or a 'reduction')");
  rejects(doc({ nodes: [src({ id: '0' }), red()] }), '$.nodes[0].id', "expected an integer >= 0, got '0'");
  rejects(doc({ nodes: [src({ shape: '2,1' }), red()] }), '$.nodes[0].shape', "expected an array of integers >= 0, got '2,1'");
  rejects(doc({ nodes: [src({ shape: [2, -1] })] }), '$.nodes[0].shape[1]', 'expected an integer >= 0, got -1');
  rejects(doc({ nodes: [src({ label: 7 }), red()] }), '$.nodes[0].label', 'expected a string, got 7');
  rejects(doc({ nodes: [src({ dtype: 'float16' }), red()] }), '$.nodes[0].dtype', "expected one of 'float32', 'float64', 'int32', got 'float16'");
  rejects(doc({ nodes: [src({ lable: 'x' }), red()] }), '$.nodes[0].lable', "unknown field 'lable' (known: id, kind, shape, data, label, dtype, lifted)");
  rejects(doc({ nodes: [src(), red({ formula: null })] }), '$.nodes[1].formula', 'expected a string, got null');
  rejects(doc({ nodes: [src(), red({ axis: 2 })] }), '$.nodes[1].axis', 'expected one of 0, 1, got 2');
  rejects(doc({ nodes: [src(), red({ inputs: 0 })] }), '$.nodes[1].inputs', 'expected an array of integers >= 0, got 0');
  rejects(doc({ nodes: [src(), red({ K: 1.5 })] }), '$.nodes[1].K', 'expected an integer >= 1, got 1.5');
  rejects(doc({ nodes: [src(), red({ backend: 'cuda' })] }), '$.nodes[1].backend', "expected one of 'auto', 'webgpu', 'cpu', got 'cuda'");
  rejects(doc({ nodes: [src(), red({ aliases: ['a = Vi(1)', 3] })] }), '$.nodes[1].aliases[1]', 'expected a string, got 3');
});

test('data that is not numbers of the dtype, or does not fit the shape', () => {
  rejects(doc({ nodes: [src({ data: ['1', '2'] })] }), '$.nodes[0].data[0]', "expected a number, got '1'");
  rejects(doc({ nodes: [src({ data: [true, false] })] }), '$.nodes[0].data[0]', 'expected a number, got true');
  rejects(
    doc({ nodes: [src({ data: [1, null] })] }),
    '$.nodes[0].data[1]',
    'expected a number, got null (JSON has no NaN or Infinity: save such data as base64)',
  );
  rejects(doc({ nodes: [src({ dtype: 'int32', data: [1, 2.5] }), red()] }), '$.nodes[0].data[1]', 'expected an int32 value, got 2.5');
  rejects(doc({ nodes: [src({ data: 'not base64!' }), red()] }), '$.nodes[0].data', 'is not base64');
  rejects(doc({ nodes: [src({ data: 'AAAA' }), red()] }), '$.nodes[0].data', '3 bytes is not a whole number of 4-byte values');
  rejects(doc({ nodes: [src({ data: [1, 2, 3] }), red()] }), '$.nodes[0].data', 'data has 3 values but shape [2, 1] needs 2');
  rejects(doc({ nodes: [src({ data: 7 }), red()] }), '$.nodes[0].data', 'expected an array of numbers (or a base64 string), got 7');
});

test('references: duplicate ids, inputs defined later, outputs that are no node, outputs a reduction lacks', () => {
  rejects(doc({ nodes: [src(), src()] }), '$.nodes[1].id', 'duplicate node id 0');
  rejects(doc({ nodes: [red(), src()] }), '$.nodes[0].inputs[0]', 'reduction 1 reads node 0, which is not defined before it');
  rejects(doc({ outputs: [5] }), '$.outputs[0]', 'output 5 is not a node of the pipeline');
  rejects(doc({ nodes: [src(), red({ output: 1 })] }), '$.nodes[1].output', 'Sum has no output 1');
});

test('a formula that does not parse is still a ParseError (with its column); nothing is left behind', () => {
  const before = graphState().nodes.size;
  let e: unknown;
  try {
    fromJSON(doc({ nodes: [src(), red({ formula: 'SqDst(a,b)' })] }) as never);
  } catch (err) {
    e = err;
  }
  assert.instance(e, ParseError);
  assert.is(graphState().nodes.size, before);
});

test('NaN data round-trips through base64 (the default); toJSON output always validates', async () => {
  const x = source(Float32Array.of(NaN, 1), [2, 1], 'x');
  const saved = JSON.stringify(toJSON([Vi(x).sqdist(Vj(x)).sum(1)]));
  const loaded = fromJSON(saved);
  assert.ok(Number.isNaN(loaded.sources[0]!.value!.data[0]!));
});

test.run();
