/**
 * Typed errors. Every failure a user can cause is a `KernelflowError` subclass whose
 * message names the culprit (an alias, an argument position, a column of a formula string).
 * Subclasses: {@link ParseError}, {@link DimensionError}, {@link DataError},
 * {@link ReductionError}, {@link BackendError}, {@link LimitError}, {@link SolveError}; errors without a subclass
 * (a wrong argument count, a disposed node, a cancelled solve) are a `KernelflowError` with their
 * own `code` (`'ARGUMENT'`, `'DISPOSED'`, `'CANCELLED'`, ...).
 *
 * @example
 * ```ts
 * import { genred, KernelflowError } from 'kernelflow';
 * try {
 *   genred('Exp(x', ['x = Vi(1)'], { reduction: 'Sum', axis: 1 });
 * } catch (e) {
 *   if (e instanceof KernelflowError) console.log(e.code); // 'PARSE'
 * }
 * ```
 */
export class KernelflowError extends Error {
  /** Stable machine-readable code, e.g. `'PARSE'`, `'DIMENSION'`. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
    this.name = new.target.name;
  }
}

/**
 * The part of a (possibly huge) formula string a message shows: all of it up to 160 characters,
 * else 60 characters either side of `column` with `...` for the rest; `caret` is the column's
 * 1-based position in `text`.
 */
export function excerpt(source: string, column: number): { text: string; caret: number } {
  if (source.length <= 160) return { text: source, caret: column };
  const from = Math.max(0, column - 1 - 60);
  const to = Math.min(source.length, column - 1 + 60);
  const head = from > 0 ? '...' : '';
  return { text: `${head}${source.slice(from, to)}${to < source.length ? '...' : ''}`, caret: column - from + head.length };
}

/**
 * A formula string (or alias declaration) that does not parse; `column` is 1-based within it, and
 * the message shows the formula with a caret under the culprit.
 * @example
 * ```ts
 * import { genred, ParseError } from 'kernelflow';
 * try {
 *   genred('Exp(-SqDst(x,y))', ['x = Vi(3)', 'y = Vj(3)'], { reduction: 'Sum', axis: 1 });
 * } catch (e) {
 *   if (e instanceof ParseError) console.log(e.column, e.message); // 6 "unknown function 'SqDst' at column 6 ..."
 * }
 * ```
 */
export class ParseError extends KernelflowError {
  /** 1-based column of the culprit within `source`. */
  readonly column: number;
  /** The formula (or alias declaration) that failed to parse. */
  readonly source: string;
  constructor(message: string, source: string, column: number) {
    const shown = excerpt(source, column);
    super('PARSE', `${message} at column ${column}\n  ${shown.text}\n  ${' '.repeat(Math.max(0, shown.caret - 1))}^`);
    this.column = column;
    this.source = source;
  }
}

/**
 * Operand dimensions that do not fit an operation, or extents of variables that disagree.
 * @example
 * ```ts
 * import { genred, DimensionError } from 'kernelflow';
 * try {
 *   genred('SqDist(x,y)', ['x = Vi(3)', 'y = Vj(2)'], { reduction: 'Sum', axis: 1 });
 * } catch (e) {
 *   if (e instanceof DimensionError) console.log(e.message); // "SqDist at column 1 of 'SqDist(x,y)': operand dimensions 3 and 2 differ ..."
 * }
 * ```
 */
export class DimensionError extends KernelflowError {
  constructor(message: string) {
    super('DIMENSION', message);
  }
}

/**
 * A TensorLike whose data length differs from the product of its shape, or a wrong dtype.
 * @example
 * ```ts
 * import { source, DataError } from 'kernelflow';
 * try {
 *   source({ data: new Float32Array(5), shape: [2, 3] });
 * } catch (e) {
 *   if (e instanceof DataError) console.log(e.message); // "source: data has 5 values but shape [2, 3] needs 6"
 * }
 * ```
 */
export class DataError extends KernelflowError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('DATA', message, options);
  }
}

/**
 * A reduction that cannot be formed: unknown name, K larger than the reduced extent, bad axis.
 * @example
 * ```ts
 * import { source, Vi, Vj, ReductionError } from 'kernelflow';
 * const x = source(new Float32Array(6), [2, 3]);
 * const y = source(new Float32Array(9), [3, 3]);
 * try {
 *   await Vi(x).sqdist(Vj(y)).kmin(5, 1).read(); // only 3 points to choose from
 * } catch (e) {
 *   if (e instanceof ReductionError) console.log(e.message); // "KMin: K = 5 is larger than the reduced extent 3"
 * }
 * ```
 */
export class ReductionError extends KernelflowError {
  constructor(message: string) {
    super('REDUCTION', message);
  }
}

/**
 * A backend that is unavailable or failed (no adapter, device lost).
 * @example
 * ```ts
 * import { init, shutdown, BackendError } from 'kernelflow';
 * try {
 *   await init({ backend: 'webgpu' });
 * } catch (e) {
 *   if (e instanceof BackendError) await init({ backend: 'cpu' }); // no WebGPU adapter here
 * }
 * await shutdown();
 * ```
 */
export class BackendError extends KernelflowError {
  /**
   * A fault of the machine rather than of the input (a lost device, a worker thread that died, a
   * shutdown during the call): the same call may succeed now, and a node that failed with it
   * computes again on its next read instead of repeating the error.
   */
  readonly transient: boolean;
  /** The generated kernel source, for a kernel that did not compile (kept off the message, which stays short). */
  readonly source: string | undefined;
  constructor(message: string, options?: { transient?: boolean; cause?: unknown; source?: string }) {
    super('BACKEND', message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.transient = options?.transient === true;
    this.source = options?.source;
  }
}

/** Whether an error is a transient backend fault (see {@link BackendError.transient}). */
export function isTransient(e: unknown): boolean {
  return e instanceof BackendError && e.transient;
}

/**
 * An option that is not one of the entry's (`{ alhpa: 0.1 }`), or whose value is out of range
 * (`{ maxIter: -5 }`). `option` names it; the message says where and what is accepted.
 * @example
 * ```ts
 * import { genred, KernelflowError } from 'kernelflow';
 * try {
 *   genred('SqNorm2(x)', ['x = Vi(2)'], { reduction: 'Sum', axsi: 1 } as never);
 * } catch (e) {
 *   if (e instanceof KernelflowError) console.log(e.code, e.message); // 'OPTION' "genred: unknown option 'axsi' (did you mean 'axis'?) ..."
 * }
 * ```
 */
export class OptionError extends KernelflowError {
  constructor(
    message: string,
    /** The option's key (`'alpha'`, `'x0'`). */
    readonly option: string,
  ) {
    super('OPTION', message);
  }
}

/**
 * A saved pipeline (`fromJSON`'s input) that does not follow the format; `path` is the JSON path
 * of the culprit (`$.nodes[2].shape[1]`).
 * @example
 * ```ts
 * import { fromJSON, KernelflowError } from 'kernelflow';
 * try {
 *   fromJSON({ format: 'kernelflow-pipeline', version: 99, nodes: [], outputs: [] } as never);
 * } catch (e) {
 *   if (e instanceof KernelflowError) console.log(e.code, e.message); // 'JSON' "$.version: unknown pipeline version 99 ..."
 * }
 * ```
 */
export class PipelineError extends KernelflowError {
  constructor(
    message: string,
    /** JSON path of the culprit, `$` for the whole document. */
    readonly path: string,
  ) {
    super('JSON', `${path}: ${message}`);
  }
}

/**
 * A hard limit of kernelflow was hit: a vector dimension above 2^16, a variable index of 2^16 or
 * more, a static parameter beyond 2^31, K above 2^16, a formula too large to print exactly.
 * `limit` names which one (`'dim'`, `'varIndex'`, `'param'`, `'K'`, `'printLength'`, ...).
 * @example
 * ```ts
 * import { genred, LimitError } from 'kernelflow';
 * try {
 *   genred('Sum(Zero(100000000))', [], { reduction: 'Sum', axis: 1 });
 * } catch (e) {
 *   if (e instanceof LimitError) console.log(e.limit, e.message); // 'dim' "... exceeds the limit of 65536 ..."
 * }
 * ```
 */
export class LimitError extends KernelflowError {
  /** Which limit was hit. */
  readonly limit: string;
  constructor(limit: string, message: string) {
    super('LIMIT', message);
    this.limit = limit;
  }
}
