import { batchDims } from '../kernel/batch.js';
import type { FloatArray, Tensor } from '../tensor.js';
import { Node, type BackwardContext, type Cotangent } from './node.js';

/**
 * A node whose value is another node's data with another shape (`view`), or a constant of
 * another node's size (`zeros`, `ones`). `grad` uses them: views pass cotangents through,
 * constants stop them. Values keep their precision (float64 stays float64).
 */
export class ReshapeNode extends Node<Tensor<FloatArray>> {
  constructor(
    readonly source: Node,
    readonly role: 'view' | 'zeros' | 'ones',
    /** Width of a row: the dimension this node has when lifted with Vi/Vj. */
    private readonly width: number,
    private readonly shapeOf: (t: Tensor) => number[],
    /** The shape of the value where known before computing it (a gradient has its target's shape). */
    private readonly hint?: () => readonly number[] | undefined,
  ) {
    super([source]);
    this.wire({ kind: 'computed', label: `gradient ${role}` });
  }

  override get dim(): number {
    return this.width;
  }

  protected compute([t]: readonly Tensor[]): Promise<Tensor<FloatArray>> {
    const shape = this.shapeOf(t!);
    const n = t!.data.length;
    // float64 stays float64 (the gradient of a float64 computation is float64); int32 reads as float32.
    const Type = t!.data instanceof Float64Array ? Float64Array : Float32Array;
    const data = this.role === 'view' ? Type.from(t!.data) : new Type(n).fill(this.role === 'ones' ? 1 : 0);
    return Promise.resolve({ data, shape });
  }

  override valueDtype(): 'float32' | 'float64' | undefined {
    return this.source.valueDtype() === 'float64' ? 'float64' : 'float32';
  }

  override gradInputs(): readonly Node[] {
    return this.role === 'view' ? [this.source] : [];
  }

  override backward(terms: readonly Cotangent[], ctx: BackwardContext): void {
    if (this.role === 'view') for (const t of terms) ctx.push(this.source, t);
  }

  override describe(): string {
    return `gradient ${this.role} of ${this.source.describe()}`;
  }

  override staticShape(): readonly number[] | undefined {
    return this.hint?.() ?? (this.role === 'view' ? undefined : this.source.staticShape());
  }
}

/** Rows of width `dim`: the shape function of a [rows, dim] view. */
export const rowsOf = (dim: number) => (t: Tensor): number[] => [t.data.length / dim, dim];

/** A [rows, dim] view of `n`. */
export function rowView(n: Node, dim: number): ReshapeNode {
  return new ReshapeNode(n, 'view', dim, rowsOf(dim));
}

/**
 * The gradient of a broadcast input (pykeops, torch): a batched reduction's gradient with respect
 * to an input whose batch dims broadcast (size 1 or missing) is summed over those dims, giving the
 * input's own batch shape. Its value: `grad` ([...batch, rows, d]) summed down to the batch dims of
 * `target`'s value (`[...batch, n, d]`, or `[...batch, d]` for a parameter). Not differentiated
 * again (a constant for higher-order gradients).
 */
export class BatchSumNode extends Node<Tensor<Float32Array>> {
  constructor(
    readonly grad: Node,
    readonly target: Node,
    private readonly param: boolean,
  ) {
    super([grad, target]);
    this.wire({ kind: 'computed', label: 'gradient summed over broadcast batch dims' });
  }

  override get dim(): number {
    return this.grad.dim;
  }

  protected compute([t, w]: readonly Tensor[]): Promise<Tensor<Float32Array>> {
    const tb = t!.shape.slice(0, Math.max(0, t!.shape.length - 2));
    const ws = w!.shape;
    const wb = batchDims(ws, this.param);
    const inner = t!.shape.slice(tb.length);
    const data = t!.data instanceof Float32Array ? t!.data : Float32Array.from(t!.data);
    if (tb.length === 0) return Promise.resolve({ data, shape: [...t!.shape] });
    const per = inner.reduce((a, b) => a * b, 1);
    const outCount = wb.reduce((a, b) => a * b, 1);
    const out = new Float64Array(outCount * per);
    const pad = tb.length - wb.length;
    const count = tb.reduce((a, b) => a * b, 1);
    for (let b = 0; b < count; b++) {
      // Batch b of the gradient lands in the target's batch: broadcast dims (1 or missing) collapse.
      let rest = b;
      let o = 0;
      let step = 1;
      for (let k = tb.length - 1; k >= 0; k--) {
        const i = rest % tb[k]!;
        rest = Math.floor(rest / tb[k]!);
        const wk = k - pad;
        if (wk >= 0) {
          if (wb[wk] !== 1) o += i * step;
          step *= wb[wk]!;
        }
      }
      for (let e = 0; e < per; e++) out[o * per + e]! += data[b * per + e]!;
    }
    return Promise.resolve({ data: Float32Array.from(out), shape: [...wb, ...inner] });
  }

  override describe(): string {
    return `gradient of ${this.target.describe()} summed over its broadcast batch dims`;
  }
}
