import { KernelflowError } from '../errors.js';
import { sumCotangents } from '../nodes/cotangent.js';
import { Node, type Cotangent } from '../nodes/node.js';
import { SourceNode } from '../nodes/source.js';
import type { BackendChoice } from '../scheduler/backends.js';
import { ReshapeNode, rowsOf } from '../nodes/reshape.js';
import type { FloatArray, Tensor, TensorLike } from '../tensor.js';

/*
 * Reverse mode over the node graph (the "mirrored graph" of DESIGN.md), as a generic walk: each
 * node kind says which inputs its cotangent flows into (`gradInputs`) and pushes its inputs'
 * cotangents (`backward`), building new nodes of the same graph. Only nodes on a path from the
 * output to a target are visited; nodes without `backward` (sources, computed nodes) are constants.
 */

/**
 * Reverse-mode gradient of `output` with respect to each node of `wrt`, as nodes of the same
 * graph: d<output, gradOutput>/d wrt[k], shaped like wrt[k]. A gradient with respect to an
 * i-variable of a reduction over j is itself one fused reduction over j (KeOps `Grad`); a
 * j-variable's is a reduction over i; a parameter's sums over both. The results recompute when
 * a source changes, like any node, and can be differentiated again (Hessian-vector products).
 * Targets that `output` does not depend on get zeros. Index outputs (argmin, argKmin, ...) and
 * nodes computed outside formulas carry no gradient.
 * @param output the node to differentiate (a reduction, a solve, or a node built from them).
 * @param wrt the nodes to differentiate with respect to (sources, or any node `output` reads).
 * @param gradOutput the cotangent of `output` (default: ones of its shape).
 * @returns one node per `wrt` entry, shaped like it: a tuple of the same length when `wrt` is
 * written as an array literal (`const [dx, dy] = grad(a, [x, y])`).
 * @example
 * ```ts
 * import { source, Vi, Vj, grad } from 'kernelflow';
 * const M = 100, N = 200;
 * const x = source(Float32Array.from({ length: M * 3 }, Math.random), [M, 3]);
 * const y = source(Float32Array.from({ length: N * 3 }, Math.random), [N, 3]);
 * const b = source(Float32Array.from({ length: N }, Math.random), [N, 1]);
 * const v = source(Float32Array.from({ length: M * 3 }, Math.random), [M, 3]);
 * const a = Vi(x).sqdist(Vj(y)).neg().exp().matmul(b);        // [M, 1]
 * const [dx, dy] = grad(a, [x, y]);                             // d sum(a) / dx: [M, 3], / dy: [N, 3]
 * const [hv] = grad(Vi(dx!).dot(Vi(v)).sum(0), [x]);            // Hessian-vector product, [M, 3]
 * console.log((await dx!.read()).shape, (await dy!.read()).shape, (await hv!.read()).shape);
 * ```
 */
export function grad<const W extends readonly Node[]>(
  output: Node,
  wrt: W,
  gradOutput?: Node | TensorLike,
): { -readonly [K in keyof W]: Node<Tensor<FloatArray>> } {
  if (!(output instanceof Node)) throw new KernelflowError('ARGUMENT', 'grad: output must be a Node');
  for (const w of wrt) if (!(w instanceof Node)) throw new KernelflowError('ARGUMENT', 'grad: every target must be a Node');
  const targets = new Set(wrt);
  const order = reverseOrder(output, targets);
  const reachesTarget = new Set(order);
  const reaches = (n: Node): boolean => reachesTarget.has(n);
  const cot = new Map<Node, Cotangent[]>();
  const push = (n: Node, t: Cotangent): void => void (cot.get(n) ?? cot.set(n, []).get(n)!).push(t);
  const dim = output.dim;
  if (gradOutput === undefined) push(output, { ones: true, dim });
  else {
    const g = gradOutput instanceof Node ? gradOutput : new SourceNode(gradOutput, 'gradOutput');
    // Rows of width dim; leading batch dims (a batched output's) are kept.
    const shape = (t: Tensor): number[] => (t.shape.length > 2 && t.shape[t.shape.length - 1] === dim ? [...t.shape] : rowsOf(dim)(t));
    push(output, { node: new ReshapeNode(g, 'view', dim, shape), dim });
  }
  // Every node before the nodes it reads, so its cotangent is complete when its backward runs.
  for (let k = order.length - 1; k >= 0; k--) {
    const n = order[k]!;
    const terms = cot.get(n);
    if (terms !== undefined) n.backward(terms, { reaches, push });
  }
  const grads = wrt.map((w): Node<Tensor<FloatArray>> => {
    const terms = cot.get(w) ?? [];
    const hint = (): readonly number[] | undefined => w.staticShape();
    if (terms.length === 0) return new ReshapeNode(w, 'zeros', w.dim, (t) => [...t.shape], hint);
    const backend = terms.map((t) => ('node' in t ? t.node.gradBackend() : undefined)).find((b) => b !== undefined) as BackendChoice | undefined;
    return new ReshapeNode(sumCotangents(terms, w, backend), 'view', terms[0]!.dim, (t) => w.gradShape(t), hint);
  });
  return grads as { -readonly [K in keyof W]: Node<Tensor<FloatArray>> };
}

/**
 * The nodes on a path from `output` to a target, in post-order (each after the nodes it reads),
 * walked with an explicit stack so that deep graphs do not overflow the call stack.
 */
function reverseOrder(output: Node, targets: ReadonlySet<Node>): Node[] {
  const reach = new Map<Node, boolean>();
  const order: Node[] = [];
  const stack: { node: Node; next: number }[] = [{ node: output, next: 0 }];
  reach.set(output, targets.has(output));
  while (stack.length > 0) {
    const top = stack[stack.length - 1]!;
    const ins = top.node.gradInputs();
    if (top.next < ins.length) {
      const child = ins[top.next++]!;
      if (!reach.has(child)) {
        reach.set(child, targets.has(child));
        stack.push({ node: child, next: 0 });
      }
      continue;
    }
    stack.pop();
    if (!reach.get(top.node)) reach.set(top.node, ins.some((c) => reach.get(c) === true));
    if (reach.get(top.node) === true) order.push(top.node);
  }
  return order;
}
