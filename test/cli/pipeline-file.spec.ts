/**
 * The pipeline file format (src/cli/pipeline-file.ts, graph.ts): each validation error is a
 * PipelineFileError giving the JSON path of the problem; the command line (args.ts); and the
 * command run in-process (`main`) for its exit codes, a saved `toJSON` pipeline whose sources are
 * matched to `--input` by label, and `--points`.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { Pm, source, toJSON, Vi, Vj } from '../../src/index.js';
import { clouds } from '../../scripts/gen-sample-data.js';
import { parseArgs, parseInput } from '../../src/cli/args.js';
import { main } from '../../src/cli/cli.js';
import { EXIT, PipelineFileError, UsageError } from '../../src/cli/errors.js';
import { buildGraph } from '../../src/cli/graph.js';
import { parsePipeline } from '../../src/cli/pipeline-file.js';
import { assertClose, assertNearest, DATA, density, f32, nearest, parseCsv, parseNpy } from './helpers.js';

/** A pipeline under edit: loose records, as a person's JSON is. */
interface Editable {
  [key: string]: unknown;
  inputs: Record<string, Record<string, unknown>>;
  outputs: Record<string, Record<string, unknown>>;
}

const base = (): Editable => ({
  version: 1,
  inputs: { x: { dim: 3 }, y: { dim: 3 } },
  outputs: { nn: { formula: 'SqDist(p,q)', aliases: ['p = Vi(x)', 'q = Vj(y)'], reduction: 'ArgKMin', K: 1, axis: 1 } },
});

/** The PipelineFileError (path, message) of a pipeline, parsed and built with declared dims. */
function errorOf(p: unknown): { path: string; message: string } {
  try {
    const spec = parsePipeline('p.json', JSON.stringify(p));
    buildGraph(spec, new Map(), 'cpu').dispose();
  } catch (e) {
    assert.instance(e, PipelineFileError);
    return { path: (e as PipelineFileError).path, message: (e as Error).message };
  }
  assert.unreachable('no error');
  throw new Error('unreachable');
}

const edit = (fn: (p: Editable) => void): Editable => {
  const p = base();
  fn(p);
  return p;
};

test('a valid hand-written pipeline builds, with pair results and outputs reading outputs', () => {
  const spec = parsePipeline('r.json', readFileSync('examples/cli/registration.json', 'utf8'));
  assert.is(spec.kind, 'spec');
  const g = buildGraph(spec, new Map([['scan', 3], ['ref', 3]]), 'cpu');
  assert.equal(g.results.map((r) => r.name), ['d2', 'nn', 'target', 'shift', 'moved']);
  assert.equal([...g.sources.keys()], ['scan', 'ref', 'g']);
  g.dispose();
  assert.ok(g.results.every((r) => r.node.disposed));
});

test('validation errors give the JSON path of the problem', () => {
  const cases: [unknown, string, RegExp][] = [
    [[1, 2], '$', /expected a JSON object/],
    [edit((p) => { p.version = 2; }), '$.version', /expected 1, got 2/],
    [edit((p) => { p.extra = true; }), '$.extra', /unknown key \(allowed: version, description, inputs, outputs\)/],
    [edit((p) => { p.inputs = {}; }), '$.inputs', /expected an object of named inputs/],
    [edit((p) => { p.inputs.x.dim = 0; }), '$.inputs.x.dim', /expected a positive integer, got 0/],
    [edit((p) => { p.inputs['2x'] = { dim: 1 }; }), '$.inputs["2x"]', /must be an identifier/],
    [edit((p) => { p.inputs.x.value = [1, 'a']; }), '$.inputs.x.value', /expected a number or a non-empty array of numbers/],
    [edit((p) => { p.inputs.x.value = [1, 2]; }), '$.inputs.x.value', /has 2 numbers but dim is 3/],
    [edit((p) => { p.inputs.x.dimm = 3; }), '$.inputs.x.dimm', /unknown key/],
    [edit((p) => { p.outputs.nn.formula = 'SqDist(p,q'; }), '$.outputs.nn.formula', /at column \d+\n {2}SqDist\(p,q\n {2}\s*\^/],
    [edit((p) => { p.outputs.nn.formula = 'SqDist(p,z)'; }), '$.outputs.nn.formula', /'z'/],
    [edit((p) => { p.inputs.y.dim = 2; }), '$.outputs.nn.formula', /SqDist at column 1 of 'SqDist\(p,q\)': operand dimensions 3 and 2 differ/],
    [edit((p) => { p.outputs.nn.aliases = ['p = Vi(x)', 'q = Vk(y)']; }), '$.outputs.nn.aliases[1]', /'q = Vk\(y\)' is not an alias/],
    [edit((p) => { p.outputs.nn.aliases = ['p = Vi(x)', 'q = Vj(w)']; }), '$.outputs.nn.aliases[1]', /'w' is not an input or result \(known: x, y, nn\)/],
    [edit((p) => { p.outputs.nn.aliases = ['x = Vi(2)', 'q = Vj(y)']; p.outputs.nn.formula = 'SqDist(x,q)'; }), '$.outputs.nn.aliases[0]', /Vi\(2\) but 'x' has dimension 3/],
    [edit((p) => { p.outputs.nn.aliases = ['p = Vi(x)', 'p = Vj(y)']; }), '$.outputs.nn.aliases[1]', /alias name 'p' is declared twice/],
    [edit((p) => { p.outputs.nn.reduction = 'ArgKmin'; }), '$.outputs.nn.reduction', /expected one of Sum, LogSumExp/],
    [edit((p) => { delete p.outputs.nn.K; }), '$.outputs.nn.K', /expected a positive integer, got null/],
    [edit((p) => { p.outputs.nn.reduction = 'Sum'; }), '$.outputs.nn.K', /K applies to KMin, ArgKMin and KMin_ArgKMin, not Sum/],
    [edit((p) => { p.outputs.nn.axis = 2; }), '$.outputs.nn.axis', /expected 1 \(reduce over j/],
    [edit((p) => { p.outputs.nn.reduction = 'SumSoftMaxWeight'; delete p.outputs.nn.K; }), '$.outputs.nn.formula2', /needs formula2/],
    [edit((p) => { p.outputs.nn.formula2 = 'q'; }), '$.outputs.nn.formula2', /applies to SumSoftMaxWeight and LogSumExp, not ArgKMin/],
    [edit((p) => { p.outputs.nn.reduction = 'SumSoftMaxWeight'; delete p.outputs.nn.K; p.outputs.nn.formula2 = 'Exp(q'; }), '$.outputs.nn.formula2', /Exp\(q/],
    [edit((p) => { p.outputs.nn.names = ['a', 'b']; }), '$.outputs.nn.names', /'names' is for the pair reductions/],
    [edit((p) => { p.outputs.nn.reduction = 'Min_ArgMin'; delete p.outputs.nn.K; p.outputs.nn.names = ['a', 'a']; }), '$.outputs.nn.names', /two distinct names/],
    [edit((p) => { p.outputs.x = { formula: 'p', aliases: ['p = Vi(x)'], reduction: 'Sum', axis: 1 }; }), '$.outputs.x', /result name 'x' is already an input or result name/],
    [edit((p) => {
      p.outputs.a = { formula: 'p', aliases: ['p = Vi(b)'], reduction: 'Sum', axis: 1 };
      p.outputs.b = { formula: 'p', aliases: ['p = Vi(a)'], reduction: 'Sum', axis: 1 };
    }), '$.outputs.a', /outputs read each other in a cycle: a -> b -> a/],
    [edit((p) => { p.outputs.nn.backend = 'gpu'; }), '$.outputs.nn.backend', /expected auto, cpu or webgpu/],
    [{ format: 'other' }, '$.format', /unknown format "other"/],
  ];
  for (const [p, path, re] of cases) {
    const e = errorOf(p);
    assert.is(e.path, path, `path of ${e.message}`);
    assert.ok(e.message.startsWith(`p.json: ${path}: `), e.message);
    assert.match(e.message, re);
  }
  const bad = (() => {
    try {
      parsePipeline('q.json', '{\n  "version": 1,\n  "inputs": {,\n}');
    } catch (e) {
      return (e as Error).message;
    }
    return '';
  })();
  assert.match(bad, /^q\.json: \$: not valid JSON \(line 3, column 14\)/);
});

test('command line: NAME=FILE:ATTRIBUTE, options, usage errors', () => {
  assert.equal(parseInput('x=scan.ply:normal'), { name: 'x', file: 'scan.ply', attribute: 'normal' });
  assert.equal(parseInput('x=dir.v2/scan.ply'), { name: 'x', file: 'dir.v2/scan.ply' });
  assert.equal(parseInput('x=a.csv:0,2'), { name: 'x', file: 'a.csv', attribute: '0,2' });
  assert.equal(parseInput('x=C:\\data\\scan.ply'), { name: 'x', file: 'C:\\data\\scan.ply' });
  const p = parseArgs(['run', 'p.json', '--input=x=a.ply', '--output', 'a,b=o.csv', '--param', 'g=1,2', '--watch'], { KF_BACKEND: 'cpu' });
  assert.is(p.kind, 'command');
  if (p.kind === 'command') {
    assert.is(p.args.backend, 'cpu', '$KF_BACKEND');
    assert.equal(p.args.outputs, [{ names: ['a', 'b'], file: 'o.csv' }]);
    assert.equal(p.args.params, [{ name: 'g', values: [1, 2] }]);
    assert.ok(p.args.watch && !p.args.progress);
  }
  assert.is(parseArgs([]).kind, 'help');
  const usage = (argv: string[], re: RegExp): void => {
    assert.throws(() => parseArgs(argv), (e: unknown) => e instanceof UsageError && re.test((e as Error).message));
  };
  usage(['frob'], /unknown command 'frob'/);
  usage(['run'], /'run' needs a pipeline file/);
  usage(['run', 'p.json', 'q.json'], /unexpected argument 'q.json'/);
  usage(['run', 'p.json', '--inptu', 'x=a'], /unknown option '--inptu'/);
  usage(['inspect', 'p.json', '--watch'], /'--watch' does not apply to 'inspect'/);
  usage(['run', 'p.json', '--input'], /'--input' needs a value/);
  usage(['run', 'p.json', '--input', 'x'], /expected NAME=FILE/);
  usage(['run', 'p.json', '--backend', 'gpu'], /--backend must be auto, cpu or webgpu, got 'gpu'/);
  usage(['bench', 'p.json', '--repeat', '0'], /--repeat must be a positive integer/);
  usage(['run', 'p.json', '--param', 'g=x'], /expected NAME=NUMBER/);
  usage(['run', 'p.json', '--input', 'x=a', '--input', 'x=b'], /--input x given twice/);
});

let dir = '';
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kf-cli-main-'));
});
test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

/** `main` with captured output. */
async function runMain(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await main(argv, { out: (l) => { out += `${l}\n`; }, err: (l) => { err += `${l}\n`; } });
  return { code, out, err };
}

test('exit codes: 0 ok, 2 usage, 3 pipeline file, 4 data file; each error one line on stderr', async () => {
  assert.is((await runMain(['--help'])).code, EXIT.ok);
  const usage = await runMain(['run', 'examples/cli/density.json', '--input', 'nope=a.ply']);
  assert.is(usage.code, EXIT.usage);
  assert.match(usage.err, /^kernelflow: error: --input nope: the pipeline has no input 'nope' \(its inputs: x, g\)\n/);
  const missing = await runMain(['run', join(dir, 'none.json')]);
  assert.is(missing.code, EXIT.pipeline);
  assert.match(missing.err, /none\.json: \$: no such file/);
  const npy = await runMain(['run', 'examples/cli/registration.json', '--backend', 'cpu', '--output', join(dir, 'all.npy')]);
  assert.is(npy.code, EXIT.usage);
  assert.match(npy.err, /a \.npy file holds one result, and the pipeline has 5 \(d2, nn, target, shift, moved\): write NAME=/);
  const rows = await runMain(['run', 'examples/cli/registration.json', '--backend', 'cpu', '--output', join(dir, 'all.csv')]);
  assert.is(rows.code, EXIT.usage);
  assert.match(rows.err, /results d2 \[800, 1\] and shift \[1, 3\] have different row counts/);
  const loop = await runMain(['run', 'examples/cli/density.json', '--backend', 'cpu', '--input', `x=${join(DATA, 'scan.ply')}`, '--output', join(DATA, 'scan.ply'), '--watch']);
  assert.is(loop.code, EXIT.usage);
  assert.match(loop.err, /--watch: output .*scan\.ply is also the file of input 'x'/);
  const data = await runMain(['run', 'examples/cli/density.json', '--backend', 'cpu', '--input', `x=${join(DATA, 'scan.ply')}:color`]);
  assert.is(data.code, EXIT.data);
  const noData = await runMain(['run', writePipeline('nodata.json', base())]);
  assert.is(noData.code, EXIT.usage);
  assert.match(noData.err, /input 'x' has no data: give --input x=FILE/);
  const k = await runMain(['run', writePipeline('k.json', edit((p) => { p.outputs.nn.K = 5000; })), '--backend', 'cpu', '--input', `x=${join(DATA, 'scan.npy')}`, '--input', `y=${join(DATA, 'scan.csv')}`]);
  assert.is(k.code, EXIT.runtime, 'a failed computation is a runtime failure');
  assert.match(k.err, /^kernelflow: error: .*K = 5000 is larger than the reduced extent 300/);
});

function writePipeline(name: string, p: unknown): string {
  const f = join(dir, name);
  writeFileSync(f, JSON.stringify(p));
  return f;
}

test('a saved toJSON pipeline: sources matched to --input by label, lifted constants kept; --points in CSV', async () => {
  const x = source(new Float32Array(6), [2, 3], 'x');
  const y = source(new Float32Array(6), [2, 3], 'y');
  const [d2, nn] = Vi(x).sqdist(Vj(y)).minArgmin(1);
  const dens = Vi(x).sqdist(Vj(y)).mul(Pm(-200)).exp().sum(1); // Pm(-200) is a lifted source: not an input
  const file = join(dir, 'saved.json');
  writeFileSync(file, JSON.stringify(toJSON([d2!, nn!, dens])));
  x.dispose();
  y.dispose();
  const out = join(dir, 'saved.csv');
  const r = await runMain(['run', file, '--backend', 'cpu', '--input', `x=${join(DATA, 'scan.npy')}`, '--input', `y=${join(DATA, 'ref.pcd')}`,
    '--output', `output1,output2=${out}`, '--points', 'x', '--output', `output0=${join(dir, 'd2.npy')}`]);
  assert.is(r.code, 0, r.err);
  const { scan, ref } = clouds();
  const xs = f32(scan.position);
  const ys = f32(ref.position);
  const csv = parseCsv(readFileSync(out, 'utf8'));
  assert.equal(csv.names, ['x', 'y', 'z', 'output1', 'output2']);
  assert.equal(csv.rows.map((row) => Math.fround(row[0]!)), Array.from({ length: 800 }, (_, i) => xs[3 * i]));
  const ref64 = nearest(xs, ys, 3);
  assertNearest(csv.rows.map((row) => row[3]!), xs, ys, 3, ref64, 'nn');
  assertClose(csv.rows.map((row) => row[4]!), density(xs, ys, 3, 200), 1e-5, 1e-30, 'density');
  assertClose(parseNpy(readFileSync(join(dir, 'd2.npy'))).data, ref64.d2, 1e-5, 1e-9, 'd2');
});

test.run();
