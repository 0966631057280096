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
  /**
   * The values, row-major: float32, float64 (computed in float64 on the CPU backend, see
   * docs/from-pykeops.md#float64), or int32 (read as values by formulas, dtype-neutral).
   */
  readonly data: Float32Array | Float64Array | Int32Array;
  /** The shape; the product of its entries must equal `data.length`. */
  readonly shape: readonly number[];
}

/**
 * What reads return: values as Float32Array (Float64Array for a float64 computation), indices
 * (argmin, argKmin, ...) as Int32Array. The
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
export interface Tensor<D extends Float32Array | Float64Array | Int32Array = Float32Array | Float64Array | Int32Array> {
  /** Float32Array for values (Float64Array when computed in float64), Int32Array for indices. */
  readonly data: D;
  /** The shape, row-major (see the reductions' output shapes in docs/formula-reference.md). */
  readonly shape: number[];
}

/** Checks a TensorLike's shape against its data length; `name` is the culprit in messages. */
export function checkTensor(t: unknown, name: string): TensorLike {
  if (typeof t !== 'object' || t === null || !('data' in t) || !('shape' in t)) {
    // A bare typed array is the likeliest mistake (a numpy array carries its shape, a typed array does not).
    const what = ArrayBuffer.isView(t) ? `a bare ${t.constructor.name} (wrap it with its shape: { data, shape: [n, d] })` : t === null ? 'null' : typeof t;
    throw new DataError(`${name}: expected a TensorLike { data, shape }, got ${what}`);
  }
  const { data, shape } = t as { data: unknown; shape: unknown };
  if (!isDataArray(data)) {
    const what = ArrayBuffer.isView(data) ? (data as object).constructor.name : typeof data;
    throw new DataError(`${name}: data must be a Float32Array, Float64Array or Int32Array, got ${what}`);
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
  const copy = isDataArray(data) ? data.slice() : data;
  return { ...t, data: copy, shape: Array.isArray(shape) ? [...(shape as unknown[])] : shape } as T;
}

/** The values of a TensorLike as float32 (a view when already float32: never written to). */
export function asFloat32(t: TensorLike): Float32Array {
  return t.data instanceof Float32Array ? t.data : Float32Array.from(t.data);
}

/** The precision a computation runs in: float64 when any value input is float64 (numpy's promotion). */
export type Dtype = 'float32' | 'float64';

/**
 * Value arrays of either precision: what value reads (`sum`, `min`, `kmin`, gradients, solves)
 * give. Float64Array when the computation ran in float64 (float64 data on the CPU backend).
 * @example
 * ```ts
 * import { source, Vi, Vj, type FloatArray } from 'kernelflow';
 * const x = source(Float64Array.of(0.1, 0.2, 0.3), [3, 1]);
 * const s: FloatArray = (await Vi(x).sqdist(Vj(x)).sum(1, { backend: 'cpu' }).read()).data;
 * console.log(s instanceof Float64Array); // true: float64 in, float64 out
 * ```
 */
export type FloatArray = Float32Array | Float64Array;

/** Whether `a` is one of the typed arrays a TensorLike may hold. */
export function isDataArray(a: unknown): a is Float32Array | Float64Array | Int32Array {
  return a instanceof Float32Array || a instanceof Float64Array || a instanceof Int32Array;
}

/**
 * The dtype of a computation over `values` (numpy's rule): float64 as soon as one of them holds
 * float64 data; float32 and int32 inputs are promoted with it. Undefined entries are skipped.
 */
export function promotedDtype(values: readonly ({ readonly data: unknown } | undefined)[]): Dtype {
  return values.some((t) => t !== undefined && t.data instanceof Float64Array) ? 'float64' : 'float32';
}

// Exact values of float32 data made from JavaScript numbers (`Pm(0.1)`), by data array: such data
// never promotes a computation to float64 (it is float32), but a float64 one reads it unrounded.
const exactValues = new WeakMap<object, Float64Array>();

/** Records `exact` (float64) as the values of `data`, float32 data made from those numbers. */
export function setExactValues(data: Float32Array, exact: Float64Array): void {
  exactValues.set(data, exact);
}

/** The values of a TensorLike in `dtype` (a view when already of that type: never written to). */
export function asFloat(t: TensorLike, dtype: Dtype): FloatArray {
  if (dtype === 'float32') return asFloat32(t);
  return t.data instanceof Float64Array ? t.data : (exactValues.get(t.data) ?? Float64Array.from(t.data));
}

/** A copy of a TensorLike's data, of the same type (and with the same exact values, if any). */
export function copyData<D extends Float32Array | Float64Array | Int32Array>(data: D): D {
  const copy = data.slice() as D;
  const exact = exactValues.get(data);
  if (exact !== undefined) exactValues.set(copy, exact);
  return copy;
}

/** A new value array of `dtype` and length n (zeros). */
export function floatArray(dtype: Dtype, n: number): FloatArray {
  return dtype === 'float64' ? new Float64Array(n) : new Float32Array(n);
}

/** A value array's dtype. */
export const dtypeOfArray = (a: Float32Array | Float64Array | Int32Array): Dtype => (a instanceof Float64Array ? 'float64' : 'float32');
