import { Observable, type Subscriber, type Subscription } from 'rxjs';
import { DataError, DimensionError, KernelflowError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import { printFormula } from '../graph/print.js';
import type { GraphState, NodeKind, NodeRecord } from '../graph/state.js';
import type { ReductionSpec } from '../ops/reductions.js';
import { Engine } from '../scheduler/engine.js';
import { aliasSymbolObservable, iterate, nodeCreated } from './interop.js';
import { checkTensor, copyData, dtypeOfArray, isDataArray, type Tensor, type TensorLike } from '../tensor.js';
import { streamEndedError, streamError } from './stream-errors.js';
import { checkFunction } from '../options.js';

/** The one scheduler all nodes live in. */
const engine = new Engine<Tensor>({
  bytesOf: (t) => t.data.byteLength,
  disposedError: (id) => new KernelflowError('DISPOSED', `node #${id} was disposed`),
});

/** @internal The current graph state (immutable; for printGraph, toJSON and tests). */
export function graphState(): GraphState {
  return engine.state;
}

/** @internal The live node of an id in the graph state. */
export function nodeById(id: number): Node | undefined {
  const t = engine.task(id);
  return t instanceof Node ? t : undefined;
}

/** @internal Resolves when no recompute is scheduled or running. */
export function whenIdle(): Promise<void> {
  return engine.idle();
}

/** @internal Disposes every live node (tests use it to leave `bytesAllocated` as they found it). */
export function disposeAll(): void {
  engine.disposeAll();
}

/** How a reduction node describes itself to the graph state (see `Node.wire`). */
export interface ReductionWiring {
  readonly formula: Formula;
  readonly spec: ReductionSpec;
  readonly backend?: string;
  readonly output: number;
}

/** A contribution to a node's cotangent: a node of rows of width `dim`, or the default ones (grad's seed). */
export type Cotangent = { readonly node: Node; readonly dim: number } | { readonly ones: true; readonly dim: number };

/** What a node's `backward` may ask of the reverse walk (see src/grad). */
export interface BackwardContext {
  /** Whether cotangents pushed to `n` can reach a target (pruning). */
  reaches(n: Node): boolean;
  /** Adds a contribution to the cotangent of `n`. */
  push(n: Node, t: Cotangent): void;
}

/**
 * A node of the dataflow graph: a value that can be read once (`read`) or observed as it
 * changes (`observe`). Nothing computes until it is read or observed; a change of a source
 * recomputes the observed nodes downstream of it once per batch, glitch-free (see src/scheduler).
 * Sources ({@link SourceNode}), reductions (what LazyTensor reductions return), solves
 * ({@link SolveNode}) and gradients (what {@link grad} returns) are all Nodes.
 * @example
 * ```ts
 * import { source, Vi, Vj, type Node } from 'kernelflow';
 * const x = source(new Float32Array([0, 1, 2]), [3, 1]);
 * const total: Node = Vi(x).sqdist(Vj(x)).sum(1);
 * console.log((await total.read()).data);   // Float32Array [5, 2, 5]
 * x.set(new Float32Array([0, 0, 0]));
 * console.log((await total.read()).data);   // Float32Array [0, 0, 0]
 * total.dispose();
 * ```
 */
export abstract class Node<T extends Tensor = Tensor> implements AsyncIterable<T> {
  /** This node's id in the graph state (`printGraph` shows it as `#id`). */
  readonly id: number;
  /** How many times this node actually computed (for tests and stats). */
  computeCount = 0;

  constructor(protected readonly inputs: readonly Node[]) {
    for (const n of inputs) if (n.disposed) throw new KernelflowError('DISPOSED', `${n.describe()} was disposed: it cannot be an input`);
    this.id = engine.add(this, { kind: this.kind(), label: '', inputs: inputs.map((n) => n.id) });
    nodeCreated.hook?.(this);
  }

  /** The kind recorded in the graph state when the node is wired (read before subclass fields exist). */
  protected kind(): NodeKind {
    return 'computed';
  }

  /**
   * Computes this node's value from its inputs' values. `signal` aborts when an input changes
   * while this runs: a long computation may stop early (reject), and its work is then dropped.
   */
  protected abstract compute(inputs: readonly Tensor[], signal?: AbortSignal): Promise<T>;

  /** @internal The scheduler's entry point. */
  evaluate(inputs: readonly Tensor[], signal?: AbortSignal): Promise<T> {
    this.computeCount++;
    return this.compute(inputs, signal);
  }

  /** @internal Called when the scheduler disposes this node. */
  onDispose(): void {}

  /** The width of this node's rows: the dimension it has when lifted with Vi/Vj (1 where unknown). */
  get dim(): number {
    return 1;
  }

  /** @internal The inputs a cotangent of this node flows into (none: the node is a constant for `grad`). */
  gradInputs(): readonly Node[] {
    return [];
  }

  /** @internal Pushes the cotangent contributions of this node (the sum of `terms`) onto its inputs. */
  backward(_terms: readonly Cotangent[], _ctx: BackwardContext): void {}

  /** @internal The shape of a gradient with respect to this node, given the computed gradient's value. */
  gradShape(t: Tensor): number[] {
    return [...t.shape];
  }

  /** @internal The backend a gradient reading this node should run on (undefined: the one `init` chose). */
  gradBackend(): string | undefined {
    return undefined;
  }

  /** The version of this node's value: it changes whenever an input changes. */
  protected get version(): number {
    return engine.version(this.id);
  }

  /** Whether this node (or a node it reads) was disposed. */
  get disposed(): boolean {
    return !engine.has(this.id);
  }

  /** Describes this node in the graph state: a subclass calls it from its constructor. */
  protected wire(patch: { kind?: NodeKind; label?: string; reduction?: ReductionWiring }): void {
    const rec: { -readonly [K in keyof NodeRecord]?: NodeRecord[K] } = {};
    if (patch.kind !== undefined) rec.kind = patch.kind;
    if (patch.label !== undefined) rec.label = patch.label;
    const r = patch.reduction;
    if (r !== undefined) {
      rec.kind = 'reduction';
      rec.label ??= '';
      rec.reduction = {
        formula: printFormula(r.formula),
        reduction: r.spec.reduction,
        axis: r.spec.axis,
        ...(r.spec.K === undefined ? {} : { K: r.spec.K }),
        weight: r.spec.weight == null ? null : printFormula(r.spec.weight),
        ...(r.backend === undefined ? {} : { backend: r.backend }),
        output: r.output,
        dim: this.dim,
      };
    }
    engine.annotate(this.id, rec);
  }

  /**
   * The current value: computes this node (and the stale nodes it reads) if needed. Rejects with
   * the error of a failed computation, or a `'DISPOSED'` KernelflowError for a disposed node.
   * @example
   * ```ts
   * import { source, Vi } from 'kernelflow';
   * const x = source(new Float32Array([1, 2, 3]), [3, 1]);
   * const t = await Vi(x).mul(2).sum(1).read();   // an elementwise map: the j extent is 1
   * console.log(t.data);                          // Float32Array [2, 4, 6]
   * ```
   */
  read(): Promise<T> {
    return (engine.read(this.id) as Promise<T>).catch((e: unknown) => {
      throw e instanceof KernelflowError && e.code === 'DISPOSED' ? new KernelflowError('DISPOSED', `${this.describe()} was disposed`) : e;
    });
  }

  /**
   * An rxjs Observable of this node's value: the current value on subscribe, then one value per
   * batch of input changes (frames that arrive faster than they compute are skipped; the latest is
   * always computed). A failure reaches the error channel; the graph keeps working and the next good
   * input recomputes the node, so `observe().pipe(retry())` keeps observing through errors.
   * Disposing the node (or a node it reads) completes the Observable.
   * @example
   * ```ts
   * import { source, Vi } from 'kernelflow';
   * const x = source(new Float32Array([3, 4]), [1, 2]);
   * const sq = Vi(x).sqnorm2().sum(1);
   * const sub = sq.observe().subscribe((t) => console.log(t.data)); // Float32Array [25]
   * await sq.read();
   * x.set(new Float32Array([1, 0]));                                // then Float32Array [1]
   * setTimeout(() => sub.unsubscribe(), 100);
   * ```
   */
  observe(): Observable<T> {
    return new Observable<T>((sub) => engine.subscribe(this.id, sub as Subscriber<Tensor>));
  }

  /**
   * `for await (const t of node)`: the current value, then one per recompute (a consumer slower
   * than the recomputes gets the latest); ends when the node is disposed, throws its errors.
   */
  [Symbol.asyncIterator](): AsyncIterableIterator<T> {
    return iterate(this.observe());
  }

  /** rxjs interop (`from(node)`, and `Symbol.observable` where defined): {@link Node.observe}. */
  ['@@observable'](): Observable<T> {
    return this.observe();
  }

  /** A short description for messages (`source 'x'`, `Sum(..., axis 1)`). */
  describe(): string {
    return this.constructor.name;
  }

  /** @internal The shape of this node's value where known without computing it (-1: an unknown extent). */
  staticShape(): readonly number[] | undefined {
    return undefined;
  }

  /** @internal The dtype of this node's values where known without computing (sources; what reads float64 sources). */
  valueDtype(): 'float32' | 'float64' | 'int32' | undefined {
    return undefined;
  }

  /** @internal What `toString` adds after the shape (dtype, backend). */
  protected details(): string {
    return '';
  }

  /**
   * For people (and `console.log` in Node): kind and id, the reduction in KeOps syntax, the shape
   * (`?` where known only once computed), dtype and backend, e.g.
   * `ReductionNode #2 ArgMin(SqDist(Var(0,3,0),Var(1,3,1)), axis 1) [100, 1] int32 on cpu`.
   */
  toString(): string {
    const s = this.disposed ? undefined : this.staticShape();
    const shape = s === undefined ? '?' : `[${s.map((d) => (d < 0 ? '?' : d)).join(', ')}]`;
    return `${this.constructor.name} #${this.id} ${this.describe()} ${shape}${this.details()}${this.disposed ? ' (disposed)' : ''}`;
  }

  /** @internal console.log / util.inspect in Node. */
  [Symbol.for('nodejs.util.inspect.custom')](): string {
    return this.toString();
  }


  /**
   * Releases this node and every node that reads it: their observers complete, their cached values
   * are freed (`stats().bytesAllocated`), and they leave the graph. A later `read()` rejects.
   * @example
   * ```ts
   * import { source, Vi } from 'kernelflow';
   * const x = source(new Float32Array([1, 2]), [2, 1]);
   * const y = Vi(x).square().sum(1);
   * y.observe().subscribe({ complete: () => console.log('completed') });
   * x.dispose();                 // logs 'completed': y read x, so it is disposed too
   * console.log(y.disposed);     // true
   * ```
   */
  dispose(): void {
    engine.dispose(this.id);
  }
}

aliasSymbolObservable(Node.prototype);

/**
 * Runs `fn` and recomputes observers once for all the changes it makes. (Changes made in one
 * synchronous stretch of code are coalesced anyway, one recompute per microtask; `batch` makes the
 * grouping explicit, and nested batches recompute once, at the end of the outermost. `set` calls
 * separated by an `await` are separate changes.)
 * @example
 * ```ts
 * import { source, Vi, Vj, batch } from 'kernelflow';
 * const x = source(new Float32Array([0, 1]), [2, 1]);
 * const y = source(new Float32Array([0, 1, 2]), [3, 1]);
 * const d = Vi(x).sqdist(Vj(y)).min(1);
 * d.observe().subscribe((t) => console.log(t.data)); // Float32Array [0, 0]
 * await d.read();
 * batch(() => {
 *   x.set(new Float32Array([5, 6]));
 *   y.set(new Float32Array([5, 7]), [2, 1]);
 * });                           // d recomputes once, with both new values: Float32Array [0, 1]
 * ```
 */
export function batch(fn: () => void): void {
  checkFunction('batch', fn);
  engine.batch(fn);
}

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

/** A node computed by a function of its inputs' values. */
export class ComputedNode extends Node {
  constructor(
    inputs: readonly Node[],
    private readonly fn: (vals: readonly Tensor[], signal?: AbortSignal) => Promise<Tensor>,
    private readonly label = 'node',
  ) {
    super(inputs);
    this.wire({ kind: 'computed', label });
  }
  protected compute(vals: readonly Tensor[], signal?: AbortSignal): Promise<Tensor> {
    return this.fn(vals, signal);
  }
  override describe(): string {
    return this.label;
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
