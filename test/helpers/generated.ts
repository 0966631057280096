import { linearize } from '../../src/graph/lower.js';
import type { Formula, VarNode } from '../../src/graph/formula.js';
import { expandComposites } from '../../src/ops/composite.js';
import { renderTemps } from '../../src/kernel/render.js';
import { components } from '../../src/ops/loop.js';
import { jsDialect, JS_PRELUDE } from '../../src/cpu/dialect.js';

/** Evaluates a formula once through generated JavaScript; `value` gives each variable's components. */
export function evalGenerated(f: Formula, value: (v: VarNode) => readonly number[]): number[] {
  const lin = linearize([expandComposites(f)]);
  const vars: VarNode[] = [];
  const r = renderTemps(lin, jsDialect, (v, k) => {
    let at = vars.indexOf(v);
    if (at < 0) at = vars.push(v) - 1;
    return `V[${at}][${k}]`;
  });
  const out = components(r.values[lin.roots[0]!]!);
  const body = `${JS_PRELUDE}\nreturn function (V) {\n${[...r.arrays.flat(), ...r.stmts.flat()].join('\n')}\nreturn [${out.join(', ')}];\n};`;
  const fn = new Function(body)() as (v: readonly (readonly number[])[]) => number[];
  return fn(vars.map(value));
}
