import { DataError, KernelflowError } from '../errors.js';

/** The error of a stream source whose stream completed before its first frame. */
export function streamEndedError(source: string): DataError {
  return new DataError(`${source}: its stream completed before its first frame, so it has no value`);
}

/** A stream's error as a typed error naming the source: a KernelflowError passes as is, anything else is a DataError with it as cause. */
export function streamError(source: string, e: unknown): KernelflowError {
  if (e instanceof KernelflowError) return e;
  const why = e instanceof Error ? e.message : String(e);
  return new DataError(`${source}: its stream failed: ${why}`, { cause: e });
}
