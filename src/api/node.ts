import { Observable, type Subscriber, type Subscription } from 'rxjs';
import { DataError, KernelflowError } from '../errors.js';
import { checkTensor, type Tensor, type TensorLike } from './tensor.js';

/**
 * A node of the dataflow graph: a value that can be read once (`read`) or observed as it
 * changes (`observe`). Values are pulled: a node recomputes only when read or observed, and only
 * when one of its inputs has changed since its cached value.
 */
export abstract class Node {
  /** Bumped whenever this node's value may have changed. */
  protected version = 0;
  private readonly dependents = new Set<Node>();
  private readonly observers = new Set<Subscriber<Tensor>>();
  private cached: { stamp: string; value: Promise<Tensor> } | undefined;
  protected disposed = false;
  /** How many times this node actually computed (for tests and stats). */
  computeCount = 0;

  constructor(protected readonly inputs: readonly Node[]) {
    for (const n of inputs) n.dependents.add(this);
  }

  /** Computes this node's value from its inputs' values. */
  protected abstract compute(inputs: readonly Tensor[]): Promise<Tensor>;

  /** A stamp of everything this value depends on: equal stamps mean an equal value. */
  protected stamp(): string {
    return `${this.version}:${this.inputs.map((n) => n.stamp()).join(',')}`;
  }

  /**
   * The current value.
   * @example
   * ```ts
   * const t = await Vi(x).mul(2).sum(1).read();
   * ```
   */
  read(): Promise<Tensor> {
    if (this.disposed) return Promise.reject(new KernelflowError('DISPOSED', `${this.describe()} was disposed`));
    const stamp = this.stamp();
    if (this.cached?.stamp === stamp) return this.cached.value;
    const value = Promise.all(this.inputs.map((n) => n.read())).then((vals) => {
      this.computeCount++;
      return this.compute(vals);
    });
    this.cached = { stamp, value };
    return value;
  }

  /**
   * An rxjs Observable of this node's value: the current value on subscribe, then one value per
   * batch of input changes.
   * @example
   * ```ts
   * Vi(x).sqnorm2().sum(1).observe().subscribe((t) => console.log(t.data));
   * ```
   */
  observe(): Observable<Tensor> {
    return new Observable<Tensor>((sub) => {
      this.observers.add(sub);
      this.emitTo([sub]);
      return () => {
        this.observers.delete(sub);
      };
    });
  }

  /** A short description for messages. */
  describe(): string {
    return this.constructor.name;
  }

  /** Marks this node and everything downstream as changed and schedules observer updates. */
  protected invalidate(): void {
    const seen = new Set<Node>();
    const walk = (n: Node): void => {
      if (seen.has(n)) return;
      seen.add(n);
      if (n.observers.size > 0) scheduleFlush(n);
      n.dependents.forEach(walk);
    };
    walk(this);
  }

  /** Emits the latest value to some observers (errors go to their error channel). */
  private emitTo(subs: Iterable<Subscriber<Tensor>>): void {
    const targets = [...subs];
    const stamp = this.stamp();
    this.read().then(
      (v) => {
        // A newer change is already scheduled: skip this stale value.
        if (this.stamp() !== stamp) return;
        for (const s of targets) if (this.observers.has(s)) s.next(v);
      },
      (e: unknown) => {
        for (const s of targets) if (this.observers.has(s)) s.error(e);
      },
    );
  }

  /** @internal flush hook */
  flush(): void {
    if (this.observers.size > 0) this.emitTo(this.observers);
  }

  /** Releases this node: completes its observers and detaches it from its inputs. */
  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.cached = undefined;
    for (const s of this.observers) s.complete();
    this.observers.clear();
    for (const n of this.inputs) n.dependents.delete(this);
    for (const d of [...this.dependents]) d.dispose();
  }
}

let pending: Set<Node> | undefined;
let batchDepth = 0;

function scheduleFlush(n: Node): void {
  if (pending === undefined) {
    pending = new Set();
    if (batchDepth === 0) queueMicrotask(flushAll);
  }
  pending.add(n);
}

function flushAll(): void {
  const nodes = pending;
  pending = undefined;
  nodes?.forEach((n) => n.flush());
}

/**
 * Runs `fn` and recomputes observers once for all the changes it makes.
 * @example
 * ```ts
 * batch(() => { x.set(newX); y.set(newY); });
 * ```
 */
export function batch(fn: () => void): void {
  batchDepth++;
  try {
    fn();
  } finally {
    batchDepth--;
    if (batchDepth === 0 && pending !== undefined) queueMicrotask(flushAll);
  }
}

/** A source of dense data: a point cloud, weights or parameters. */
export class SourceNode extends Node {
  private value: Tensor;
  private subscription: Subscription | undefined;

  constructor(value: TensorLike, readonly label = 'source') {
    super([]);
    this.value = copyTensor(checkTensor(value, label));
  }

  /** Replaces the data (copied; the caller's array is never written); dependents recompute. */
  set(data: Float32Array | Int32Array | TensorLike, shape?: readonly number[]): void {
    if (this.disposed) throw new KernelflowError('DISPOSED', `${this.label} was disposed`);
    const t: TensorLike =
      data instanceof Float32Array || data instanceof Int32Array ? { data, shape: shape ?? this.value.shape } : data;
    this.value = copyTensor(checkTensor(t, this.label));
    this.version++;
    this.invalidate();
  }

  /** @internal follows an Observable or AsyncIterable of TensorLikes. */
  follow(input: Observable<TensorLike> | AsyncIterable<TensorLike>): void {
    if (input instanceof Observable) {
      this.subscription = input.subscribe({ next: (t) => this.set(t), complete: () => undefined });
      return;
    }
    void (async () => {
      for await (const t of input) {
        if (this.disposed) return;
        this.set(t);
      }
    })();
  }

  get shape(): readonly number[] {
    return this.value.shape;
  }

  protected compute(): Promise<Tensor> {
    return Promise.resolve(this.value);
  }

  override describe(): string {
    return `source '${this.label}'`;
  }

  override dispose(): void {
    this.subscription?.unsubscribe();
    super.dispose();
  }
}

/** A node computed by a function of its inputs' values. */
export class ComputedNode extends Node {
  constructor(
    inputs: readonly Node[],
    private readonly fn: (vals: readonly Tensor[]) => Promise<Tensor>,
    private readonly label = 'node',
  ) {
    super(inputs);
  }
  protected compute(vals: readonly Tensor[]): Promise<Tensor> {
    return this.fn(vals);
  }
  override describe(): string {
    return this.label;
  }
}

function copyTensor(t: TensorLike): Tensor {
  const data = t.data instanceof Int32Array ? Int32Array.from(t.data) : Float32Array.from(t.data);
  return { data, shape: [...t.shape] };
}

/** An empty placeholder value for a source created from a stream before its first frame. */
export function emptyTensor(): TensorLike {
  return { data: new Float32Array(0), shape: [0, 1] };
}

/** Rejects non-TensorLike frames early with the source's name. */
export function checkFrame(t: unknown, label: string): TensorLike {
  if (typeof t !== 'object' || t === null) throw new DataError(`${label}: a frame must be a TensorLike`);
  return checkTensor(t, label);
}
