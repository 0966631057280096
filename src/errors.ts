/**
 * Typed errors. Every failure a user can cause is a `KernelflowError` subclass whose
 * message names the culprit (an alias, an argument position, a column of a formula string).
 *
 * @example
 * ```ts
 * import { genred, KernelflowError } from 'kernelflow';
 * try { genred('Exp(x', ['x = Vi(1)']); } catch (e) { if (e instanceof KernelflowError) console.log(e.code); }
 * ```
 */
export class KernelflowError extends Error {
  /** Stable machine-readable code, e.g. `'PARSE'`, `'DIMENSION'`. */
  readonly code: string;
  constructor(code: string, message: string) {
    super(message);
    this.code = code;
    this.name = new.target.name;
  }
}

/** A formula string that does not parse; `column` is 1-based within the formula. */
export class ParseError extends KernelflowError {
  readonly column: number;
  readonly source: string;
  constructor(message: string, source: string, column: number) {
    super('PARSE', `${message} at column ${column}\n  ${source}\n  ${' '.repeat(Math.max(0, column - 1))}^`);
    this.column = column;
    this.source = source;
  }
}

/** Operand dimensions that do not fit an operation, or extents of variables that disagree. */
export class DimensionError extends KernelflowError {
  constructor(message: string) {
    super('DIMENSION', message);
  }
}

/** A TensorLike whose data length differs from the product of its shape, or a wrong dtype. */
export class DataError extends KernelflowError {
  constructor(message: string) {
    super('DATA', message);
  }
}

/** A reduction that cannot be formed: unknown name, K larger than the reduced extent, bad axis. */
export class ReductionError extends KernelflowError {
  constructor(message: string) {
    super('REDUCTION', message);
  }
}

/** A backend that is unavailable or failed (no adapter, device lost). */
export class BackendError extends KernelflowError {
  constructor(message: string) {
    super('BACKEND', message);
  }
}
