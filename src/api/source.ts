import { Observable } from 'rxjs';
import { SourceNode } from '../nodes/source.js';
import { isDataArray, type TensorLike } from '../tensor.js';

/** A stream of frames a source can follow: an rxjs Observable (sampled) or an AsyncIterable (pulled). */
type Stream = Observable<TensorLike> | AsyncIterable<TensorLike>;

/**
 * A source node: dense data (copied) or a stream of frames (an rxjs Observable or AsyncIterable).
 * `set(data, shape?)` replaces the data and every observed node downstream recomputes, once per
 * batch. An Observable is sampled: frames arriving faster than the graph computes are skipped
 * (counted in `stats().framesSkipped`) and the latest is always computed. An AsyncIterable is
 * pulled: its next frame is asked for once a recompute has taken the current one. A stream source
 * has no value until its first frame; give the frames' shape (`source(frames$, [0, 3])`) to lift it
 * with `Vi`/`Vj` before then.
 * Forms: `source(typedArray, shape, label?)`, `source(tensorLike, label?)`,
 * `source(observableOrAsyncIterable, shape?, label?)`. A typed array without a shape is a column
 * `[length, 1]`. A Float64Array (or a TensorLike of float64 data) makes a float64 source: what
 * reads it computes in float64 on the CPU backend and reads back Float64Array (docs/from-pykeops.md#float64).
 * @example
 * ```ts
 * import { Subject } from 'rxjs';
 * import { source, Vi, Vj, type TensorLike } from 'kernelflow';
 * const x = source(new Float32Array([0, 0, 1, 1]), [2, 2], 'x');
 * x.set(new Float32Array([0, 1, 1, 0]));
 * const frames$ = new Subject<TensorLike>();
 * const scan = source(frames$, [0, 2], 'scan');           // a stream of [n, 2] frames
 * const nearest = Vi(scan).sqdist(Vj(x)).min(1);
 * nearest.observe().subscribe((t) => console.log(t.shape)); // [3, 1] once the frame is computed
 * frames$.next({ data: new Float32Array(6), shape: [3, 2] });
 * ```
 */
export function source(data: Float32Array | Float64Array | Int32Array, shape: readonly number[], label?: string): SourceNode;
export function source(data: Stream, shape?: readonly number[], label?: string): SourceNode;
export function source(data: TensorLike | Stream, label?: string): SourceNode;
export function source(
  data: Float32Array | Float64Array | Int32Array | TensorLike | Stream,
  shapeOrLabel?: readonly number[] | string,
  label?: string,
): SourceNode {
  const shape = Array.isArray(shapeOrLabel) ? (shapeOrLabel as readonly number[]) : undefined;
  const name = typeof shapeOrLabel === 'string' ? shapeOrLabel : (label ?? 'source');
  if (isDataArray(data)) {
    return new SourceNode({ data, shape: shape ?? [data.length, 1] }, name);
  }
  if (data instanceof Observable || (typeof data === 'object' && data !== null && Symbol.asyncIterator in data)) {
    const node = new SourceNode(undefined, name, shape === undefined ? {} : { shape });
    node.follow(data as Stream);
    return node;
  }
  return new SourceNode(data as TensorLike, name);
}
