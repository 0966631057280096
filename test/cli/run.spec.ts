/**
 * Issue 20, acceptance 1 and 3: the `kernelflow` command run as a child process on the committed
 * sample files (every format it reads: PLY ascii / binary little- and big-endian, PCD ascii /
 * binary / binary_compressed, LAS, LAZ, .npy, CSV), its written outputs (.npy, CSV, PLY) compared with
 * float64 references computed here from the sample generator's points; inspect and bench; and
 * malformed files, which give exit code 4 and one message on stderr naming the file and the fault.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'uvu';
import * as assert from 'uvu/assert';
import { clouds, head, terrainPositions } from '../../scripts/gen-sample-data.js';
import { readPLY } from '../../src/cli/formats/ply.js';
import { webgpuTestable } from '../helpers/adapter.js';
import { assertClose, assertNearest, DATA, density, f32, kernelflow, nearest, parseCsv, parseNpy, softTarget, type Run } from './helpers.js';

let dir = '';
test.before(() => {
  dir = mkdtempSync(join(tmpdir(), 'kf-cli-'));
});
test.after(() => {
  rmSync(dir, { recursive: true, force: true });
});

const ok = (r: Run, what: string): void => assert.is(r.code, 0, `${what}: exit code 0\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
const { scan, ref, terrain } = clouds();
const scanPos = f32(scan.position);
const refPos = f32(ref.position);

test('registration example (scan.ply binary LE, ref.pcd binary): PLY, CSV and .npy outputs match float64', async () => {
  const out = join(dir, 'matches.ply');
  const r = await kernelflow([
    'run', 'examples/cli/registration.json', '--backend', 'cpu',
    '--output', `d2,nn,target=${out}`, '--output', `shift=${join(dir, 'shift.csv')}`, '--output', `nn=${join(dir, 'nn.npy')}`, '--output', `moved=${join(dir, 'moved.npy')}`,
  ]);
  ok(r, 'run');
  assert.match(r.stdout, /computed 5 results in [\d.]+ ms \(3 dispatches\)/, "match and target, siblings over scan and ref, run as one fused kernel");
  const refNN = nearest(scanPos, refPos, 3);
  // .npy: the indices, int32 [800, 1]
  const npy = parseNpy(readFileSync(join(dir, 'nn.npy')));
  assert.is(npy.descr, '<i4');
  assert.equal(npy.shape, [800, 1]);
  assertNearest(npy.data, scanPos, refPos, 3, refNN, 'nn.npy');
  // PLY: the scan's points, then d2, nn, target_0..2
  const ply = readPLY(out, readFileSync(out));
  assert.equal(ply.columns.map((c) => c.name), ['x', 'y', 'z', 'd2', 'nn', 'target_0', 'target_1', 'target_2']);
  const colOf = (name: string): ArrayLike<number> => ply.columns.find((c) => c.name === name)!.values;
  assert.equal(Array.from(colOf('x')), Array.from({ length: 800 }, (_, i) => scanPos[3 * i]));
  assertClose(colOf('d2'), refNN.d2, 1e-5, 1e-9, 'd2');
  assertNearest(colOf('nn'), scanPos, refPos, 3, refNN, 'nn (PLY)');
  const target = softTarget(scanPos, refPos, 3, 50);
  for (let k = 0; k < 3; k++) {
    assertClose(colOf(`target_${k}`), Float64Array.from({ length: 800 }, (_, i) => target[3 * i + k]!), 0, 1e-5, `target_${k}`);
  }
  // CSV: the translation step, the mean of target - scan
  const csv = parseCsv(readFileSync(join(dir, 'shift.csv'), 'utf8'));
  assert.equal(csv.names, ['shift_0', 'shift_1', 'shift_2']);
  const shift = [0, 1, 2].map((k) => {
    let s = 0;
    for (let i = 0; i < 800; i++) s += target[3 * i + k]! - scanPos[3 * i + k]!;
    return s / 800;
  });
  assertClose(csv.rows[0]!, shift, 0, 1e-5, 'shift');
  // .npy: the moved scan, scan + shift
  const moved = parseNpy(readFileSync(join(dir, 'moved.npy')));
  assert.equal(moved.shape, [800, 3]);
  assertClose(moved.data, Float64Array.from(scanPos, (x, i) => x + shift[i % 3]!), 0, 1e-5, 'moved');
});

test('every other reader (PLY ascii and big-endian, PCD ascii and compressed, LAS, LAZ, .npy, CSV) with attributes, one .npy per result', async () => {
  const pipeline = {
    version: 1,
    inputs: {
      asc: { dim: 3 }, be: { dim: 3 }, pa: { dim: 1 }, pc: { dim: 3 }, las: { dim: 3 }, li: { dim: 1 }, laz: { dim: 3 }, lzc: { dim: 3 }, npy: { dim: 3 }, csv: { dim: 3 },
      g: { value: 200 }, gl: { value: 0.5 }, gi: { value: 50 }, gc: { value: 0.01 },
    },
    outputs: Object.fromEntries(
      [['asc', 'g'], ['be', 'g'], ['pa', 'gi'], ['pc', 'g'], ['las', 'gl'], ['li', 'gi'], ['laz', 'gl'], ['lzc', 'gc'], ['npy', 'g'], ['csv', 'g']].map(([x, g]) => [
        `d_${x}`,
        { formula: 'Exp(-g*SqDist(p,q))', aliases: [`p = Vi(${x})`, `q = Vj(${x})`, `g = Pm(${g})`], reduction: 'Sum', axis: 1 },
      ]),
    ),
  };
  const file = join(dir, 'all-formats.json');
  writeFileSync(file, JSON.stringify(pipeline));
  const inputs = [
    'asc=scan-ascii.ply', 'be=scan-be.ply:normal', 'pa=ref-ascii.pcd:intensity', 'pc=ref-compressed.pcd:position',
    'las=terrain.las', 'li=terrain.las:intensity', 'laz=terrain.laz', 'lzc=terrain.laz:color', 'npy=scan.npy', 'csv=scan.csv:x,y,z',
  ].flatMap((a) => ['--input', `${a.split('=')[0]}=${join(DATA, a.split('=')[1]!)}`]);
  const outputs = Object.keys(pipeline.outputs).flatMap((k) => ['--output', `${k}=${join(dir, `${k}.npy`)}`]);
  const r = await kernelflow(['run', file, '--backend', 'cpu', ...inputs, ...outputs]);
  ok(r, 'run');
  const small = head(scan, 300);
  const smallRef = head(ref, 300);
  const col = (a: Float64Array, k: number, d: number): Float64Array => Float64Array.from({ length: a.length / d }, (_, i) => a[i * d + k]!);
  const lasPos = f32(terrainPositions(terrain));
  const expect: Record<string, [Float64Array, number, number]> = {
    asc: [f32(small.position), 3, 200],
    be: [f32(small.normal), 3, 200],
    pa: [f32(smallRef.intensity), 1, 50],
    pc: [f32(smallRef.position), 3, 200],
    las: [lasPos, 3, 0.5],
    li: [Float64Array.from(terrain.intensity), 1, 50],
    laz: [lasPos, 3, 0.5],
    // loaders.gl gives 8-bit colour: the top byte of the 16-bit channels the file stores.
    lzc: [Float64Array.from(terrain.rgb, (c) => c >> 8), 3, 0.01],
    npy: [scanPos, 3, 200],
    csv: [f32(small.position), 3, 200],
  };
  assert.is(col(scanPos, 0, 3).length, 800);
  for (const [x, [pts, d, g]] of Object.entries(expect)) {
    const got = parseNpy(readFileSync(join(dir, `d_${x}.npy`)));
    assert.is(got.descr, '<f4', x);
    assert.equal(got.shape, [pts.length / d, 1], `${x}: shape`);
    assertClose(got.data, density(pts, pts, d, g), 1e-5, 0, `density of ${x}`);
  }
});

test('density example on the LAS terrain, --param overrides the bandwidth, PLY written with the points', async () => {
  const out = join(dir, 'terrain-density.ply');
  const r = await kernelflow(['run', 'examples/cli/density.json', '--backend', 'cpu', '--input', 'x=examples/data/terrain.las', '--param', 'g=0.5', '--output', out]);
  ok(r, 'run');
  assert.match(r.stdout, /wrote .*terrain-density\.ply: points of 'x', density \[1000, 1\] float32/);
  const ply = readPLY(out, readFileSync(out));
  assert.equal(ply.columns.map((c) => c.name), ['x', 'y', 'z', 'density']);
  const pos = f32(terrainPositions(terrain));
  assertClose(ply.columns[3]!.values, density(pos, pos, 3, 0.5), 1e-5, 0, 'terrain density');
});

test('inspect prints the graph (printGraph) and the kernels; bench times the runs', async () => {
  const [ins, ben] = await Promise.all([
    kernelflow(['inspect', 'examples/cli/registration.json', '--backend', 'cpu']),
    kernelflow(['bench', 'examples/cli/density.json', '--backend', 'cpu', '--repeat', '2']),
  ]);
  ok(ins, 'inspect');
  assert.match(ins.stdout, /^kernelflow graph: 8 nodes$/m);
  assert.match(ins.stdout, /#\d+ source 'scan' \[800, 3\] float32/);
  assert.match(ins.stdout, /reduction = Min_ArgMin_Reduction\(SqDist\(Var\(0,3,0\),Var\(1,3,1\)\),axis=1\)/);
  assert.match(ins.stdout, /^kernels: 4 to compile on the cpu backend \((WebAssembly SIMD, generated JavaScript for float64 plans and block-sparse ArgMin and ArgMax|generated JavaScript)\), at most 4 dispatches per run \(sibling reductions over the same points run as one fused kernel; `kernelflow bench` counts them\)$/m);
  assert.match(ins.stdout, /-> d2, nn {2}reading scan \(i\), ref \(j\)/);
  ok(ben, 'bench');
  assert.match(ben.stdout, /^first run: [\d.]+ ms \(1 kernels compiled, 1 dispatches\)$/m);
  assert.match(ben.stdout, /^runs: 2, median [\d.]+ ms, min [\d.]+ ms, mean [\d.]+ ms, 1 dispatches per run$/m);
});

test('malformed files: truncated binary PLY, wrong header, missing attribute, truncated LAZ -> exit 4, the file and the fault on stderr', async () => {
  const good = readFileSync(join(DATA, 'scan.ply'));
  const truncated = join(dir, 'truncated.ply');
  writeFileSync(truncated, good.subarray(0, 15000));
  const wrong = join(dir, 'wrong.ply');
  writeFileSync(wrong, Buffer.concat([Buffer.from('ply\nformat binary_little_endian 1.0\nelement vertex 800\nproperty flaot x\nend_header\n'), good.subarray(300)]));
  const laz = readFileSync(join(DATA, 'terrain.laz'));
  const cutLaz = join(dir, 'cut.laz');
  writeFileSync(cutLaz, laz.subarray(0, 6000));
  const lazTable = Number(laz.readBigInt64LE(laz.readUInt32LE(96)));
  const runs = await Promise.all([
    kernelflow(['run', 'examples/cli/density.json', '--backend', 'cpu', '--input', `x=${truncated}`]),
    kernelflow(['run', 'examples/cli/density.json', '--backend', 'cpu', '--input', `x=${wrong}`]),
    kernelflow(['run', 'examples/cli/density.json', '--backend', 'cpu', '--input', `x=${join(DATA, 'scan.csv')}:normal`]),
    kernelflow(['run', 'examples/cli/density.json', '--backend', 'cpu', '--input', `x=${cutLaz}`]),
  ]);
  const expected = [
    new RegExp(`^kernelflow: error: ${truncated}: truncated binary PLY: the header declares 800 'vertex' records of 28 bytes \\(22400 bytes\\) from byte 244, but only 14756 bytes follow \\(the file ends in record 527\\)\\n$`),
    new RegExp(`^kernelflow: error: ${wrong}: PLY header line 4: expected 'property TYPE NAME' with a PLY scalar type, got 'property flaot x'\\n$`),
    /^kernelflow: error: .*scan\.csv: no attribute 'normal' \(columns nx,ny,nz or normal_x,normal_y,normal_z\) in this CSV file; its columns are: x, y, z, intensity\n$/,
    new RegExp(`^kernelflow: error: ${cutLaz}: truncated LAZ: the chunk table is at byte ${lazTable}, but the file has only 6000 bytes \\(it ends inside the compressed points\\)\\n$`),
  ];
  runs.forEach((r, k) => {
    assert.is(r.code, 4, `exit code 4 (bad input data file): ${r.stderr}`);
    assert.match(r.stderr, expected[k]!);
    assert.is(r.stdout, '');
  });
});

if (webgpuTestable((name, fn) => test(name, fn), 'the kernelflow command on WebGPU')) {
  test('on WebGPU: the density example matches float64', async () => {
    const out = join(dir, 'gpu.npy');
    const r = await kernelflow(['run', 'examples/cli/density.json', '--backend', 'webgpu', '--output', out]);
    ok(r, 'run on webgpu');
    assertClose(parseNpy(readFileSync(out)).data, density(scanPos, scanPos, 3, 200), 1e-5, 0, 'density on WebGPU');
  });
}

test.run();
