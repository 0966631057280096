import * as kf from './src/index.js';
const T = (d: number[], s: number[]) => ({ data: Float32Array.from(d), shape: s });
const cases: [string, () => unknown][] = [
  ['init unknown key', () => kf.init({ backnd: 'cpu' } as never)],
  ['init cpuKernels bad', () => kf.init({ cpuKernels: 'gpu' } as never)],
  ['init float64 bad', () => kf.init({ float64: 'yes' } as never)],
  ['init fuse bad', () => kf.init({ fuse: 'yes' } as never)],
  ['init gpuProfile bad', () => kf.init({ gpuProfile: 'fast' } as never)],
  ['init autotune bad', () => kf.init({ autotune: 3 } as never)],
  ['init kernelShape bad', () => kf.init({ kernelShape: { workgroupSize: -1, rowsPerThread: 0 } } as never)],
  ['gridCluster bad eps', () => kf.gridCluster(T([0, 1], [2, 1]) as never, -1 as never)],
  ['gridCluster NaN eps', () => kf.gridCluster(T([0, 1], [2, 1]) as never, NaN as never)],
  ['gridCluster NaN data', () => kf.gridCluster(T([NaN, 1], [2, 1]) as never, 0.5 as never)],
  ['sortClusters bad labels', () => kf.sortClusters(T([0, 1], [2, 1]) as never, Int32Array.of(0) as never)],
  ['clusterRangesCentroids bad', () => (kf.clusterRangesCentroids as any)(T([0, 1], [2, 1]), Int32Array.of(0, 5))],
  ['fromMatrix bad', () => (kf.fromMatrix as any)(null, null, null)],
  ['genred ranges bad', () => kf.genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 } as never)(T([1], [1, 1]), T([1], [1, 1]), { ranges: 'x' } as never)],
  ['genred call opt unknown', () => kf.genred('x*y', ['x = Vi(1)', 'y = Vj(1)'], { reduction: 'Sum', axis: 1 } as never)(T([1], [1, 1]), T([1], [1, 1]), { bakend: 'cpu' } as never)],
  ['kernelSolve refine bad', () => kf.kernelSolve('Exp(-SqDist(x,x))*b' as never, 'b' as never, ['x = Vi(1)', 'b = Vj(1)'] as never, { alpha: 1, refine: -1 } as never)],
  ['kernelShapes arg', () => (kf.kernelShapes as any)('foo')],
  ['stats arg', () => (kf.stats as any)('foo')],
  ['Vi sum bad axis', () => kf.Vi(kf.source(T([1, 2], [2, 1]))).sum(3 as never)],
  ['Vi sum opts unknown', () => kf.Vi(kf.source(T([1, 2], [2, 1]))).sum(1, { bakend: 'cpu' } as never)],
  ['toArray bad', () => (kf.toArray as any)({ data: [1], shape: [2] })],
  ['scope bad', () => (kf.scope as any)(5)],
  ['batch bad', () => (kf.batch as any)(5)],
];
for (const [name, f] of cases) {
  try {
    const r = f();
    const v = r instanceof Promise ? await r : r;
    console.log('NO ERROR ', name, typeof v === 'object' ? Object.prototype.toString.call(v) : v);
  } catch (e) {
    const ok = e instanceof kf.KernelflowError;
    console.log(ok ? 'typed    ' : 'UNTYPED  ', name, (e as Error).constructor.name, String((e as Error).message).slice(0, 110));
  }
}
await kf.init({ backend: 'cpu' });
process.exit(0);
