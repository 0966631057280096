/** kernelflow: KeOps-style lazy kernel formulas and reductions as a reactive dataflow graph. */
export { KernelflowError, ParseError, DimensionError, DataError, ReductionError, BackendError } from './errors.js';
export type { TensorLike, Tensor } from './api/tensor.js';
export { init, backendName, shutdown, softwareAdapter, type Backend, type BackendName, type BackendChoice } from './api/backend.js';
export { stats, resetStats, type Stats } from './stats.js';
export { genred, type GenredOptions, type GenredResult, type PairReduction } from './api/genred.js';
export { Vi, Vj, Pm, LazyTensor, type Operand, type ReduceOptions } from './api/lazy.js';
export { Node, SourceNode, batch } from './api/node.js';
export { source } from './api/source.js';
export { printGraph, toJSON, fromJSON, type PipelineJSON, type Pipeline, type SourceJSON, type ReductionJSON } from './api/pipeline.js';
export type { SourceOptions } from './api/node.js';
export { grad } from './grad/grad.js';
export type { ReductionName } from './nodes/reductions.js';
export { SolveNode, kernelSolve, type SolveOptions, type SolveProgress } from './api/solve.js';
export { SolveError } from './solve/cg.js';
