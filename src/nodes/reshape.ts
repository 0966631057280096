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
