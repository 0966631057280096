/**
 * kernelflow: KeOps-style lazy kernel formulas and reductions as a reactive dataflow graph.
 *
 * Start with the guide (concepts with runnable snippets), the formula reference (every op and
 * reduction) and the pykeops migration notes, all in docs/ beside this reference.
 *
 * @packageDocumentation
 * @document ../docs/guide.md
 * @document ../docs/from-pykeops.md
 * @document ../docs/formula-reference.md
 * @document ../docs/benchmarks.md
 * @document ../docs/scaling-out.md
 * @document ../docs/gpu-profiles.md
 */
export { KernelflowError, ParseError, DimensionError, DataError, ReductionError, BackendError, OptionError, PipelineError, LimitError } from './errors.js';
export type { TensorLike, Tensor, FloatArray } from './tensor.js';
export { init, backendName, shutdown, softwareAdapter, cpuKernels, type Backend, type BackendName, type BackendChoice, type InitOptions, type Float64Policy } from './scheduler/backends.js';
export type { CpuKernelInfo, CpuKernels } from './cpu/backend.js';
export { stats, resetStats, type Stats } from './stats.js';
export { kernelShapes, type KernelShapeInfo } from './gpu/tuner.js';
export type { KernelShape } from './gpu/codegen.js';
export { genred, type GenredOptions, type GenredCallOptions, type GenredResult, type PairReduction } from './api/genred.js';
export { gridCluster, sortClusters, clusterRangesCentroids, fromMatrix } from './api/clustering.js';
export type { Ranges, RangeArray } from './kernel/ranges.js';
export { Vi, Vj, Pm, LazyTensor, type Operand } from './api/lazy.js';
export type { ReduceOptions } from './api/options.js';
export { Node, batch } from './nodes/node.js';
export { SourceNode } from './nodes/source.js';
export { source } from './api/source.js';
export { natsSource, natsSink, type NatsSink, type NatsStreamOptions } from './api/nats.js';
export type { ClusterOptions } from './cluster/options.js';
export { printGraph, toJSON, fromJSON, type PipelineJSON, type Pipeline, type SourceJSON, type ReductionJSON } from './api/pipeline.js';
export type { SourceOptions } from './nodes/source.js';
export { grad } from './grad/grad.js';
export { toArray, type NestedArray } from './api/dense.js';
export { scope } from './api/scope.js';
/**
 * The KeOps reduction names: `'Sum' | 'LogSumExp' | 'Min' | 'Max' | 'ArgMin' | 'ArgMax' |
 * 'Min_ArgMin' | 'Max_ArgMax' | 'KMin' | 'ArgKMin' | 'KMin_ArgKMin' | 'SumSoftMaxWeight'`
 * (definitions and output shapes: docs/formula-reference.md).
 * @example
 * ```ts
 * import { genred, type ReductionName } from 'kernelflow';
 * const reduction: ReductionName = 'LogSumExp';
 * const lse = genred('-SqDist(x,y)', ['x = Vi(1)', 'y = Vj(1)'], { reduction, axis: 1 });
 * console.log((await lse({ data: Float32Array.of(0), shape: [1, 1] }, { data: Float32Array.of(0, 0), shape: [2, 1] })).data); // [log 2]
 * ```
 */
export type { ReductionName } from './ops/reductions.js';
export { SolveNode } from './nodes/solve.js';
export { kernelSolve, type KernelSolveCallOptions } from './api/kernel-solve.js';
export type { SolveInfo, SolveOptions, SolveProgress } from './solve/kernel-solve.js';
export type { LandmarkRule } from './solve/nystrom.js';
export { SolveError } from './solve/cg.js';
