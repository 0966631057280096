import { Observable, type Subscriber } from 'rxjs';
import { KernelflowError } from '../errors.js';
import type { Formula } from '../graph/formula.js';
import { printFormula } from '../graph/print.js';
import type { NodeKind, NodeRecord } from '../graph/state.js';
import type { ReductionSpec } from '../ops/reductions.js';
import { engine } from './scheduler.js';
import { aliasSymbolObservable, iterate, nodeCreated } from './interop.js';
import type { Tensor } from '../tensor.js';
import { checkFunction } from '../options.js';

export { graphState, whenIdle, disposeAll } from './scheduler.js';

/** @internal The live node of an id in the graph state. */
export function nodeById(id: number): Node | undefined {
  const t = engine.task(id);
  return t instanceof Node ? t : undefined;
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
