import * as kf from './src/index.js';
const T = (d: number[], s: number[]) => ({ data: Float32Array.from(d), shape: s });
const I = (d: number[], s: number[]) => ({ data: Int32Array.from(d), shape: s });
const op = (backend: 'cpu' | 'webgpu') => kf.genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1, backend } as never);
const x = T([1, 2, 3, 4], [4, 1]), y = T([1, 2, 3], [3, 1]);
const good = () => [I([0, 2, 2, 4], [2, 2]), I([1, 2], [2]), I([0, 3, 0, 1], [2, 2]), I([0, 3], [1, 2]), I([2], [1]), I([0, 4], [1, 2])];
const cases: [string, () => unknown[]][] = [
  ['good', good],
  ['j range beyond N', () => { const r = good(); r[2] = I([0, 9, 0, 1], [2, 2]); return r; }],
  ['negative', () => { const r = good(); r[0] = I([-1, 2, 2, 4], [2, 2]); return r; }],
  ['reversed', () => { const r = good(); r[0] = I([2, 0, 2, 4], [2, 2]); return r; }],
  ['slices beyond', () => { const r = good(); r[1] = I([1, 7], [2]); return r; }],
  ['float ranges', () => { const r = good(); r[0] = T([0, 2, 2, 4], [2, 2]) as never; return r; }],
  ['overlapping i', () => { const r = good(); r[0] = I([0, 3, 2, 4], [2, 2]); return r; }],
];
for (const backend of ['cpu', 'webgpu'] as const) for (const [name, f] of cases) {
  try {
    const out = await (op(backend) as any)(x, y, { ranges: f() });
    console.log(backend, 'NO ERROR ', name, Array.from(out.data).join(','));
  } catch (e) {
    console.log(backend, e instanceof kf.KernelflowError ? 'typed    ' : 'UNTYPED  ', name, (e as Error).constructor.name, String((e as Error).message).slice(0, 140));
  }
}
process.exit(0);
