import type { VarNode } from '../graph/formula.js';
import type { Linearized } from '../graph/lower.js';
import type { Dialect, EmitCtx } from './op.js';
import { opDef } from './ops/index.js';

/** Scalar code for a linearised formula: statements per loop level and the names of every temp's components. */
export interface RenderedTemps {
  /** Statements to run once (level 0), per i (level 1), per (i, j) pair (level 2). */
  readonly stmts: readonly [string[], string[], string[]];
  /** `names[t][k]`: an expression (usually a local name) for component k of temp t. */
  readonly names: readonly (readonly string[])[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Prints the list of temporaries with a dialect. `loadVar(v, k)` gives the expression that reads
 * component k of variable v at the current (i, j). Simple results alias instead of copying.
 */
export function renderTemps(lin: Linearized, d: Dialect, loadVar: (v: VarNode, k: number) => string): RenderedTemps {
  const stmts: [string[], string[], string[]] = [[], [], []];
  const names: string[][] = [];
  for (const t of lin.temps) {
    const out = stmts[t.level];
    const node = t.node;
    if (node.kind === 'const') {
      names.push([d.num(node.value)]);
      continue;
    }
    let exprs: readonly string[];
    if (node.kind === 'var') {
      exprs = Array.from({ length: node.dim }, (_, k) => loadVar(node, k));
    } else {
      let fresh = 0;
      const ctx: EmitCtx = {
        d,
        args: t.args.map((a) => names[a]!),
        argDims: node.args.map((a) => a.dim),
        params: node.params,
        dim: node.dim,
        fresh: (hint) => `${hint}_${t.id}_${fresh++}`,
      };
      const def = opDef(node.op);
      const emitted = (d.name === 'wgsl' && def.wgsl !== undefined ? def.wgsl : def.emit)(ctx);
      if ('stmts' in emitted) {
        out.push(...emitted.stmts);
        exprs = emitted.out;
      } else {
        exprs = emitted as readonly string[];
      }
      if (exprs.length !== node.dim) throw new Error(`internal: ${node.op} emitted ${exprs.length} components for dim ${node.dim}`);
    }
    names.push(
      exprs.map((e, k) => {
        if (IDENT.test(e)) return e;
        const name = `t${t.id}_${k}`;
        out.push(d.decl(name, e));
        return name;
      }),
    );
  }
  return { stmts, names };
}
