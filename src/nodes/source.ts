/** Source nodes: where data enters the graph (set by hand, or fed by an Observable or AsyncIterable). */
import { Observable, type Subscription } from 'rxjs';
import { DataError, DimensionError, KernelflowError } from '../errors.js';
import type { NodeKind } from '../graph/state.js';
import { checkTensor, copyData, dtypeOfArray, isDataArray, type Tensor, type TensorLike } from '../tensor.js';
import { Node } from './node.js';
import { engine } from './scheduler.js';
import { streamEndedError, streamError } from './stream-errors.js';

/**
 * Options of a source node (the `SourceNode` constructor's third argument).
 * @example
 * ```ts
 * import { SourceNode, type SourceOptions } from 'kernelflow';
 * const opts: SourceOptions = { shape: [0, 3] };
 * const frames = new SourceNode(undefined, 'frames', opts); // no value until its first set()
 * frames.set(new Float32Array(6), [2, 3]);
 * ```
 */
export interface SourceOptions {
  /** Created implicitly by lifting dense data into a formula (`Vj(tensorLike)`, `Pm(0.5)`). */
  readonly lifted?: boolean;
  /** The shape of the frames of a stream source, known before its first frame (its last axis matters). */
  readonly shape?: readonly number[];
}

/**
 * A source of dense data: a point cloud, weights or parameters. Made by {@link source};
 * `set()` replaces its data and everything downstream recomputes.
 * @example
 * ```ts
 * import { source, Vi, type SourceNode } from 'kernelflow';
 * const x: SourceNode = source(new Float32Array([1, 2, 3]), [3, 1], 'x');
 * const total = Vi(x).sum(0);
 * console.log((await total.read()).data);    // Float32Array [6]
 * x.set(new Float32Array([1, 1, 1, 1]), [4, 1]);  // a new size: nothing recompiles
 * console.log((await total.read()).data, x.shape); // Float32Array [4] [4, 1]
 * ```
 */
export class SourceNode extends Node {
  private subscription: Subscription | undefined;
  private iterator: AsyncIterator<unknown> | undefined;
  private declaredShape: readonly number[] | undefined;
  /** A stream source has had a frame (good or malformed). */
  private framed = false;

  protected override kind(): NodeKind {
    return 'source';
  }

  /** `value` undefined: a stream source waiting for its first frame. */
  constructor(
    value: TensorLike | undefined,
    /** The name shown by `printGraph` and in error messages. */
    readonly label = 'source',
    opts: SourceOptions = {},
  ) {
    super([]);
    const t = value === undefined ? undefined : copyTensor(checkTensor(value, label));
    this.declaredShape = opts.shape === undefined ? undefined : [...opts.shape];
    engine.annotate(this.id, {
      label,
      ...(t === undefined ? {} : { shape: [...t.shape], dtype: dtypeOf(t) }),
      ...(opts.lifted === true ? { lifted: true } : {}),
    });
    if (t !== undefined) engine.setSource(this.id, t);
  }

  /**
   * Replaces the data (copied; the caller's array is never written); dependents recompute, once per
   * batch. The shape may change between calls (a point cloud of varying size): compiled kernels
   * depend on formulas only, never on sizes. Without `shape`, a typed array keeps the current shape.
   * @example
   * ```ts
   * import { source } from 'kernelflow';
   * const x = source(new Float32Array(6), [2, 3]);
   * x.set(new Float32Array(9), [3, 3]);
   * x.set({ data: new Float32Array(3), shape: [1, 3] });
   * console.log(x.shape); // [1, 3]
   * ```
   */
  set(data: Float32Array | Float64Array | Int32Array | TensorLike, shape?: readonly number[]): void {
    if (this.disposed) throw new KernelflowError('DISPOSED', `${this.describe()} was disposed`);
    const t: TensorLike =
      isDataArray(data)
        ? { data, shape: shape ?? engine.sourceValue(this.id)?.shape ?? this.declaredShape ?? [data.length, 1] }
        : data;
    const value = copyTensor(checkTensor(t, this.label));
    engine.annotate(this.id, { dtype: dtypeOf(value) });
    engine.setSource(this.id, value, value.shape);
  }

  /** @internal Follows an Observable (sampled: the latest frame wins) or AsyncIterable (pulled as consumed). */
  follow(input: Observable<TensorLike> | AsyncIterable<TensorLike>): void {
    engine.annotate(this.id, { stream: true });
    if (input instanceof Observable) {
      this.subscription = input.subscribe({
        next: (t) => this.take(t),
        error: (e: unknown) => this.streamFailed(e),
        complete: () => this.streamEnded(),
      });
      return;
    }
    const it = input[Symbol.asyncIterator]();
    this.iterator = it;
    void (async () => {
      try {
        for (;;) {
          const r = await it.next();
          if (r.done === true) return this.streamEnded();
          if (this.disposed) return;
          this.take(r.value);
          // Pull-based back-pressure: the next frame is asked for once a recompute took this one.
          await engine.whenConsumed(this.id);
          if (this.disposed) return;
        }
      } catch (e) {
        this.streamFailed(e);
      }
    })();
  }

  /** A stream that ends before its first frame fails what reads it (a read would otherwise wait forever). */
  private streamEnded(): void {
    if (!this.disposed && !this.framed && engine.sourceValue(this.id) === undefined) engine.failSource(this.id, streamEndedError(this.describe()));
  }

  /** A stream error is a DataError naming this source (the stream's own error is its cause). */
  private streamFailed(e: unknown): void {
    if (!this.disposed) engine.failSource(this.id, streamError(this.describe(), e));
  }

  private take(frame: unknown): void {
    if (this.disposed) return;
    this.framed = true;
    try {
      this.set(checkFrame(frame, this.label));
    } catch (e) {
      // A malformed frame fails the dependents' observers; the next good frame recovers.
      engine.failSource(this.id, e);
    }
  }

  /** The current value (undefined while a stream source waits for its first frame, or after a stream error). */
  get value(): Tensor | undefined {
    return engine.sourceValue(this.id);
  }

  /** The shape of the current value (of the frames to come, for a stream source declared with one). */
  get shape(): readonly number[] {
    if (this.disposed) throw new KernelflowError('DISPOSED', `${this.describe()} was disposed`);
    const s = engine.sourceValue(this.id)?.shape ?? this.declaredShape;
    if (s === undefined) {
      throw new DimensionError(
        `${this.describe()} has had no frame yet, so its shape is unknown: give the frames' shape, source(stream, [0, D])`,
      );
    }
    return s;
  }

  override get dim(): number {
    const s = this.shape;
    return s.length <= 1 ? 1 : s[s.length - 1]!;
  }

  override staticShape(): readonly number[] | undefined {
    return this.disposed ? undefined : (engine.sourceValue(this.id)?.shape ?? this.declaredShape);
  }

  override valueDtype(): 'float32' | 'float64' | 'int32' | undefined {
    const v = this.disposed ? undefined : engine.sourceValue(this.id);
    return v === undefined ? undefined : dtypeOf(v);
  }

  protected override details(): string {
    const d = this.valueDtype();
    return d === undefined ? '' : ` ${d}`;
  }

  override gradShape(t: Tensor): number[] {
    const s = this.shape;
    return s.reduce((a, b) => a * b, 1) === t.data.length ? [...s] : [...t.shape];
  }

  protected compute(): Promise<Tensor> {
    const v = engine.sourceValue(this.id);
    return v === undefined ? Promise.reject(new DataError(`${this.describe()} has no value`)) : Promise.resolve(v);
  }

  override describe(): string {
    return `source '${this.label}'`;
  }

  override onDispose(): void {
    this.subscription?.unsubscribe();
    this.subscription = undefined;
    void this.iterator?.return?.()?.catch(() => undefined);
    this.iterator = undefined;
  }
}

function dtypeOf(t: TensorLike): 'float32' | 'float64' | 'int32' {
  return t.data instanceof Int32Array ? 'int32' : dtypeOfArray(t.data);
}

/** A copy of the user's data, of the same type (float64 stays float64: it computes in float64). */
function copyTensor(t: TensorLike): Tensor {
  return { data: copyData(t.data), shape: [...t.shape] };
}


/** Rejects non-TensorLike frames early with the source's name. */
export function checkFrame(t: unknown, label: string): TensorLike {
  if (typeof t !== 'object' || t === null) throw new DataError(`${label}: a frame must be a TensorLike`);
  return checkTensor(t, label);
}
