/**
 * The options of the user-facing entries, declared once each for the checker of src/options.ts:
 * genred, LazyTensor reductions and the pipeline JSON functions (solves: src/solve/options.ts,
 * init: src/scheduler/backends.ts).
 */
import { anything, axisOf, checkOptions, isAxis, isString, oneOf, type OptionChecks } from '../options.js';
import { backendOption, type BackendChoice } from '../scheduler/backends.js';
import type { Ranges } from '../kernel/ranges.js';

/** genred's options; `dim` is pykeops's name of `axis`. K and the reduction name are checked by the plan (ReductionError). */
const GENRED: OptionChecks = { reduction: anything, axis: isAxis, dim: isAxis, K: anything, formula2: isString, backend: backendOption };

/** Checks genred's options; returns the axis (`axis` or `dim`, default 0 as in pykeops). */
export function genredAxis(opts: unknown): 0 | 1 {
  checkOptions('genred', opts, GENRED);
  return axisOf('genred', opts as { axis?: unknown; dim?: unknown }, 0);
}

const AXIS_HINT = "the axis is the reduction's first argument here, as in x.sum(1)";

/** Checks the options of a LazyTensor reduction (`weight` is LogSumExp's). */
export function checkReduceOptions(reduction: string, opts: unknown): void {
  const checks: OptionChecks = reduction === 'LogSumExp' ? { backend: backendOption, weight: anything, ranges: anything } : { backend: backendOption, ranges: anything };
  checkOptions(reduction, opts, checks, { axis: AXIS_HINT, dim: AXIS_HINT });
}

/** Checks toJSON's options. */
export function checkToJSONOptions(opts: unknown): void {
  checkOptions('toJSON', opts, { data: oneOf('base64', 'array') });
}

/** Checks fromJSON's options. */
export function checkFromJSONOptions(opts: unknown): void {
  checkOptions('fromJSON', opts, { backend: backendOption });
}

/**
 * Options every reduction accepts.
 * @example
 * ```ts
 * import { source, Vi, Vj, type ReduceOptions } from 'kernelflow';
 * const x = source(new Float32Array([0, 1, 2]), [3, 1]);
 * const onCpu: ReduceOptions = { backend: 'cpu' };
 * console.log((await Vi(x).sqdist(Vj(x)).sum(1, onCpu).read()).data); // Float32Array [5, 2, 5]
 * ```
 */
export interface ReduceOptions {
  /** Runs this reduction on this backend instead of the one `init` chose. */
  readonly backend?: BackendChoice;
  /** Block-sparse reduction over these blocks: pykeops's six `ranges` arrays (its `LazyTensor.ranges`), e.g. from `fromMatrix`. */
  readonly ranges?: Ranges;
}
