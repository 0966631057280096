/**
 * Type tests: checked by `tsc --noEmit` (and by test/types/types.spec.ts, with
 * noUncheckedIndexedAccess on), never run. Each `@ts-expect-error` line must fail to compile: tsc
 * reports an unused one, so a type that became too loose fails the check.
 */
import { from } from 'rxjs';
import { genred, grad, kernelSolve, scope, source, Vi, Vj, type LazyTensor, type Node, type Tensor, type TensorLike, type FloatArray } from '../../src/index.js';

declare const t: TensorLike;

export async function indexOutputs(): Promise<void> {
  const x = source(new Float32Array(6), [3, 2]);
  const S = Vi(x).sqdist(Vj(x));
  const i: Int32Array = (await S.argmin(1).read()).data;
  const a: Int32Array = (await S.argmax(0).read()).data;
  const k: Int32Array = (await S.argKmin(2, 1).read()).data;
  const v: FloatArray = (await S.sum(1).read()).data;
  const m: FloatArray = (await S.kmin(2, 1).read()).data;
  // @ts-expect-error values are not indices
  const notIdx: Int32Array = (await S.sum(1).read()).data;
  // @ts-expect-error indices are not values
  const notVal: Float32Array = (await S.argmin(1).read()).data;
  // Plain `Tensor` (no type argument) still takes either.
  const plain: Tensor = await S.argmin(1).read();
  const plain2: Tensor = await S.sum(1).read();
  // The observable and the node types carry the data type too.
  S.argKmin(3, 1).observe().subscribe((u) => u.data satisfies Int32Array);
  const n: Node<Tensor<Int32Array>> = S.argmin(1);
  const wide: Node = n; // a typed node is a Node
  void [i, a, k, v, m, notIdx, notVal, plain, plain2, wide];
}

export async function pairs(): Promise<void> {
  const x = source(new Float32Array(6), [3, 2]);
  const S = Vi(x).sqdist(Vj(x));
  const [d, j] = S.minArgmin(1);
  const [dk, jk] = S.kminArgKmin(2, 1);
  const [mx, jx] = S.maxArgmax(0);
  const values: FloatArray[] = [(await d.read()).data, (await dk.read()).data, (await mx.read()).data];
  const indices: Int32Array[] = [(await j.read()).data, (await jk.read()).data, (await jx.read()).data];
  // @ts-expect-error a pair has two nodes
  const [, , third] = S.minArgmin(1);
  void [values, indices, third];
}

export async function gradients(): Promise<void> {
  const x = source(new Float32Array(6), [3, 2]);
  const y = source(new Float32Array(4), [2, 2]);
  const a = Vi(x).sqdist(Vj(y)).sum(1);
  const [dx, dy] = grad(a, [x, y]); // a tuple: no `!` needed, even with noUncheckedIndexedAccess
  const g: FloatArray = (await dx.read()).data;
  const h: FloatArray = (await dy.read()).data;
  const three: [Node, Node, Node] = grad(a, [x, y, x]);
  // @ts-expect-error three targets give three gradients, not two
  const two: [Node, Node] = grad(a, [x, y, x]);
  // An array (not a literal) gives an array.
  const targets: Node[] = [x, y];
  const many: Node<Tensor<FloatArray>>[] = grad(a, targets);
  void [g, h, three, two, many];
}

export function innerSum(): void {
  const x = source(new Float32Array(6), [3, 2]);
  const s: LazyTensor = Vi(x).sum(); // sum() is sum(-1), the inner sum
  const s2: LazyTensor = Vi(x).sum(-1);
  const r: Node<Tensor<FloatArray>> = Vi(x).sum(1);
  void [s, s2, r];
}

export async function genredArity(): Promise<void> {
  const op = genred('SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'Sum', axis: 1 });
  const s: FloatArray = (await op(t, t)).data;
  // @ts-expect-error two aliases, one argument
  await op(t);
  // A third argument compiles: inline Var(2,d,c) in a formula is argument 2 (pykeops counts it too).
  await op(t, t, t).catch(() => undefined);
  const am = genred('SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'ArgKMin', K: 2, axis: 1 });
  const idx: Int32Array = (await am(t, t)).data;
  const [vals, ids] = await genred('SqDist(x,y)', ['x = Vi(2)', 'y = Vj(2)'], { reduction: 'Min_ArgMin', axis: 1 })(t, t);
  const pair: [FloatArray, Int32Array] = [vals.data, ids.data];
  // Aliases known only at run time: any count compiles (and is checked when called).
  const aliases: string[] = ['x = Vi(2)', 'y = Vj(2)'];
  await genred('SqDist(x,y)', aliases, { reduction: 'Sum', axis: 1 })(t);
  void [s, idx, pair];
}

export async function kernelSolveArity(): Promise<void> {
  const Kinv = kernelSolve('Exp(-SqDist(x,y))*b', ['x = Vi(2)', 'y = Vj(2)', 'b = Vj(1)'], 'b', { axis: 1 });
  const c: FloatArray = (await Kinv(t, t, t)).data;
  await Kinv(t, t, t, { alpha: 0.1, tol: 1e-5 });
  // @ts-expect-error three aliases, two arguments
  await Kinv(t, t);
  // @ts-expect-error the options come last
  await Kinv({ alpha: 0.1 }, t, t, t);
  void c;
}

export async function resultsAndInterop(): Promise<void> {
  const x = source(new Float32Array(6), [3, 2]);
  const S = Vi(x).sqdist(Vj(x));
  // The dense toolkit gives value nodes, whatever it starts from.
  const m: Node<Tensor<FloatArray>> = S.argmin(1).add(1).mean(0, true);
  const r: FloatArray = (await S.sum(1).sub(x).norm().read()).data;
  // @ts-expect-error an operand is a Node, a TensorLike or a number
  S.sum(1).add('1');
  const nested = await S.kmin(2, 1).array();
  // @ts-expect-error nested arrays may be a number (shape []): narrow first
  nested.length;
  // for await and from() keep the data type.
  for await (const t of S.argKmin(2, 1)) {
    const i: Int32Array = t.data;
    void i;
    break;
  }
  from(S.sum(1)).subscribe((t) => t.data satisfies FloatArray);
  // scope returns what fn returns, sync or async.
  const kept: Node<Tensor<Int32Array>> = scope(() => S.argmin(1));
  const total: Promise<number> = scope(async () => (await S.sum(1).read()).data[0] ?? 0);
  // The symbolic shape and the printed forms.
  const shape: number[] = S.shape;
  const printed: string = `${S.formulaString} ${String(S)} ${String(kept)}`;
  void [m, r, kept, total, shape, printed];
}
