import { DataError } from './errors.js';

/**
 * Dense data: row-major, the last axis is the vector dimension. A cloud of M points in dimension
 * D is `shape [M, D]`; a parameter is `shape [D]` (or `[1, D]`). Every entry point accepts it.
 * @example
 * ```ts
 * import { genred, type TensorLike } from 'kernelflow';
 * const x: TensorLike = { data: new Float32Array([0, 0, 1, 0, 0, 1]), shape: [3, 2] }; // 3 points in 2-D
 * const sqn = genred('SqNorm2(x)', ['x = Vi(2)'], { reduction: 'Sum', axis: 1 });
 * console.log((await sqn(x)).data); // Float32Array [0, 1, 1]
 * ```
 */
export interface TensorLike {
  /** The values, row-major; float32 (int32 data is read as float32 by formulas). */
  readonly data: Float32Array | Int32Array;
  /** The shape; the product of its entries must equal `data.length`. */
  readonly shape: readonly number[];
}

/**
 * What reads return: values as Float32Array, indices (argmin, argKmin, ...) as Int32Array. The
 * type parameter is the data's type: reductions are typed by what they give (`argmin` reads a
 * `Tensor<Int32Array>`, `sum` a `Tensor<Float32Array>`); plain `Tensor` is either.
 * @example
 * ```ts
 * import { source, Vi, Vj, type Tensor } from 'kernelflow';
 * const x = source(new Float32Array([0, 0, 3, 3]), [2, 2]);
 * const y = source(new Float32Array([1, 1, 4, 4, 0, 1]), [3, 2]);
 * const nearest: Tensor<Int32Array> = await Vi(x).sqdist(Vj(y)).argmin(1).read();
 * const indices: Int32Array = nearest.data;  // no cast
 * console.log(nearest.shape, indices);       // [2, 1] Int32Array [2, 1]
 * ```
 */
export interface Tensor<D extends Float32Array | Float64Array | Int32Array = Float32Array | Int32Array> {
  /** Float32Array for values, Int32Array for indices. */
  readonly data: D;
  /** The shape, row-major (see the reductions' output shapes in docs/formula-reference.md). */
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

/**
 * A copy of what a call was given, taken when it is called: the caller may overwrite, transfer or
 * detach its arrays as soon as the call returns, and a SharedArrayBuffer view becomes a plain one.
 * Anything that is not a TensorLike is passed through for the checks to name.
 */
export function ownedCopy<T>(t: T): T {
  if (typeof t !== 'object' || t === null || !('data' in t) || !('shape' in t)) return t;
  const { data, shape } = t as { data: unknown; shape: unknown };
  const copy = data instanceof Float32Array || data instanceof Int32Array ? data.slice() : data;
  return { ...t, data: copy, shape: Array.isArray(shape) ? [...(shape as unknown[])] : shape } as T;
}

/** The values of a TensorLike as float32 (a view when already float32: never written to). */
export function asFloat32(t: TensorLike): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}
