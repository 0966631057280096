import { Observable } from 'rxjs';
import { emptyTensor, SourceNode } from './node.js';
import type { TensorLike } from './tensor.js';

/**
 * A source node: dense data (copied) or a stream of frames (an rxjs Observable or AsyncIterable).
 * `set(data, shape?)` replaces the data and every dependent node recomputes, once per batch.
 * @example
 * ```ts
 * const x = source(new Float32Array([0, 0, 1, 1]), [2, 2]);
 * x.set(new Float32Array([0, 1, 1, 0]));
 * ```
 */
export function source(data: Float32Array | Int32Array, shape: readonly number[], label?: string): SourceNode;
export function source(data: TensorLike | Observable<TensorLike> | AsyncIterable<TensorLike>, label?: string): SourceNode;
export function source(
  data: Float32Array | Int32Array | TensorLike | Observable<TensorLike> | AsyncIterable<TensorLike>,
  shapeOrLabel?: readonly number[] | string,
  label?: string,
): SourceNode {
  if (data instanceof Float32Array || data instanceof Int32Array) {
    const shape = Array.isArray(shapeOrLabel) ? shapeOrLabel : [data.length, 1];
    return new SourceNode({ data, shape }, label ?? 'source');
  }
  const name = typeof shapeOrLabel === 'string' ? shapeOrLabel : 'source';
  if (data instanceof Observable || Symbol.asyncIterator in data) {
    const node = new SourceNode(emptyTensor(), name);
    node.follow(data as Observable<TensorLike> | AsyncIterable<TensorLike>);
    return node;
  }
  return new SourceNode(data as TensorLike, name);
}
