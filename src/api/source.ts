import { Observable } from 'rxjs';
import { SourceNode } from './node.js';
import type { TensorLike } from './tensor.js';

type Stream = Observable<TensorLike> | AsyncIterable<TensorLike>;

/**
 * A source node: dense data (copied) or a stream of frames (an rxjs Observable or AsyncIterable).
 * `set(data, shape?)` replaces the data and every observed node downstream recomputes, once per
 * batch. An Observable is sampled: frames arriving faster than the graph computes are skipped
 * (counted in `stats().framesSkipped`) and the latest is always computed. An AsyncIterable is
 * pulled: its next frame is asked for once a recompute has taken the current one. A stream source
 * has no value until its first frame; give the frames' shape (`source(frames$, [0, 3])`) to lift it
 * with `Vi`/`Vj` before then.
 * @example
 * ```ts
 * const x = source(new Float32Array([0, 0, 1, 1]), [2, 2]);
 * x.set(new Float32Array([0, 1, 1, 0]));
 * const frames = source(frames$, [0, 3], 'scan');   // rxjs Observable<TensorLike>
 * ```
 */
export function source(data: Float32Array | Int32Array, shape: readonly number[], label?: string): SourceNode;
export function source(data: Stream, shape?: readonly number[], label?: string): SourceNode;
export function source(data: TensorLike | Stream, label?: string): SourceNode;
export function source(
  data: Float32Array | Int32Array | TensorLike | Stream,
  shapeOrLabel?: readonly number[] | string,
  label?: string,
): SourceNode {
  const shape = Array.isArray(shapeOrLabel) ? (shapeOrLabel as readonly number[]) : undefined;
  const name = typeof shapeOrLabel === 'string' ? shapeOrLabel : (label ?? 'source');
  if (data instanceof Float32Array || data instanceof Int32Array) {
    return new SourceNode({ data, shape: shape ?? [data.length, 1] }, name);
  }
  if (data instanceof Observable || (typeof data === 'object' && data !== null && Symbol.asyncIterator in data)) {
    const node = new SourceNode(undefined, name, shape === undefined ? {} : { shape });
    node.follow(data as Stream);
    return node;
  }
  return new SourceNode(data as TensorLike, name);
}
