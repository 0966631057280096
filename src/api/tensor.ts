import { DataError } from '../errors.js';

/** Dense data: row-major, the last axis is the vector dimension (API.md). */
export interface TensorLike {
  readonly data: Float32Array | Int32Array;
  readonly shape: readonly number[];
}

/** What reads return: values as Float32Array, indices (argmin, argKmin, ...) as Int32Array. */
export interface Tensor {
  readonly data: Float32Array | Int32Array;
  readonly shape: number[];
}

/** Checks a TensorLike's shape against its data length; `name` is the culprit in messages. */
export function checkTensor(t: unknown, name: string): TensorLike {
  if (typeof t !== 'object' || t === null || !('data' in t) || !('shape' in t)) {
    throw new DataError(`${name}: expected a TensorLike { data, shape }, got ${t === null ? 'null' : typeof t}`);
  }
  const { data, shape } = t as { data: unknown; shape: unknown };
  if (!(data instanceof Float32Array) && !(data instanceof Int32Array)) {
    throw new DataError(`${name}: data must be a Float32Array or Int32Array`);
  }
  if (!Array.isArray(shape) || shape.some((s) => !Number.isInteger(s) || s < 0)) {
    throw new DataError(`${name}: shape must be an array of non-negative integers, got ${JSON.stringify(shape)}`);
  }
  const n = shape.reduce((a: number, b: number) => a * b, 1);
  if (n !== data.length) {
    throw new DataError(`${name}: data has ${data.length} values but shape [${shape.join(', ')}] needs ${n}`);
  }
  return { data, shape: shape as number[] };
}

/** The values of a TensorLike as float32 (a view when already float32: never written to). */
export function asFloat32(t: TensorLike): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}
