import { Cat, mapVars, mkOpUnchecked, mkVar, variables, type Formula, type OpNode } from '../graph/formula.js';
import type { OpDef } from './op.js';
import { opDef } from './table.js';
import { vjpFormula } from './vjp.js';

/** What a composite op declares: its signature, its definition by other ops, and an independent float64 reference. */
export interface CompositeSpec {
  readonly name: string;
  readonly arity: number;
  readonly nParams: number;
  dim(argDims: readonly number[], params: readonly number[]): number;
  /** The op as a formula of other ops (keopscore: `SqDist(a, b) = SqNorm2(a - b)`). */
  expand(args: readonly Formula[], params: readonly number[]): Formula;
  ref(args: readonly (readonly number[])[], params: readonly number[], dim: number): number[];
}

/**
 * An op defined by composition: no emitter of its own (plans expand it before codegen, see
 * `expandComposites`) and a vjp through its expansion, so its derivative is its parts' derivatives.
 */
export function composite(spec: CompositeSpec): OpDef {
  return { ...spec, vjp: (node, g) => vjpThroughExpansion(spec, node, g) };
}

/** Cotangents of a composite's arguments: the expansion over placeholder variables, differentiated, then the arguments put back. */
function vjpThroughExpansion(spec: CompositeSpec, node: OpNode, g: Formula): (Formula | null)[] {
  // Placeholders take indices past every variable of the node and of g, so nothing else is replaced.
  let base = 0;
  for (const f of [node, g]) for (const v of variables(f)) base = Math.max(base, v.index + 1);
  const holes = node.args.map((a, k) => mkVar(base + k, a.dim, Cat.param));
  const body = spec.expand(holes, node.params);
  const fill = (h: Formula): Formula => mapVars(h, (v) => (v.cat === Cat.param && v.index >= base ? node.args[v.index - base]! : v));
  return holes.map((p) => {
    const h = vjpFormula(body, p, g);
    return h === null ? null : fill(h);
  });
}

/** The formula with every composite op replaced by its expansion (recursively), shared nodes once. */
export function expandComposites(root: Formula): Formula {
  const done = new Map<Formula, Formula>();
  const stack: Formula[] = [root];
  while (stack.length > 0) {
    const f = stack[stack.length - 1]!;
    if (done.has(f)) {
      stack.pop();
      continue;
    }
    if (f.kind !== 'op') {
      done.set(f, f);
      stack.pop();
      continue;
    }
    const pending = f.args.filter((a) => !done.has(a));
    if (pending.length > 0) {
      stack.push(...pending);
      continue;
    }
    stack.pop();
    const args = f.args.map((a) => done.get(a)!);
    const def = opDef(f.op);
    if (def.expand !== undefined) done.set(f, expandComposites(def.expand(args, f.params)));
    else done.set(f, args.every((a, k) => a === f.args[k]) ? f : mkOpUnchecked(f.op, args, f.params, f.dim));
  }
  return done.get(root)!;
}
