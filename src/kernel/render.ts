import type { VarNode } from '../graph/formula.js';
import type { Level, Linearized } from '../graph/lower.js';
import type { Dialect, EmitCtx } from '../ops/op.js';
import { opDef } from '../ops/table.js';

/** Scalar code for a linearised formula: statements per loop level and the names of every temp's components. */
export interface RenderedTemps {
  /** Statements to run once (level 0), per i (1), per j (2), per (i, j) pair (3). */
  readonly stmts: readonly [string[], string[], string[], string[]];
  /** `names[t][k]`: an expression (usually a local name) for component k of temp t. */
  readonly names: readonly (readonly string[])[];
}

const IDENT = /^[A-Za-z_][A-Za-z0-9_]*$/;

/**
 * Prints the list of temporaries with a dialect. `loadVar(v, k)` gives the expression that reads
 * component k of variable v at the current (i, j). Simple results alias instead of copying.
 * For a block of rows, render once per row with a name `suffix`, sharing the first rendering's
 * temps of the given levels (those that do not depend on i) instead of repeating them.
 */
export function renderTemps(
  lin: Linearized,
  d: Dialect,
  loadVar: (v: VarNode, k: number) => string,
  suffix = '',
  shared?: { readonly from: RenderedTemps; readonly levels: readonly Level[] },
): RenderedTemps {
  const stmts: [string[], string[], string[], string[]] = [[], [], [], []];
  const names: (readonly string[])[] = [];
  for (const t of lin.temps) {
    const out = stmts[t.level];
    if (shared !== undefined && shared.levels.includes(t.level)) {
      names.push(shared.from.names[t.id]!);
      continue;
    }
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
        fresh: (hint) => `${hint}_${t.id}_${fresh++}${suffix}`,
      };
      const def = opDef(node.op);
      const emit = d.name === 'wgsl' && def.wgsl !== undefined ? def.wgsl : def.emit;
      if (emit === undefined) throw new Error(`internal: composite ${node.op} reached codegen unexpanded (plans expand composites)`);
      const emitted = emit(ctx);
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
        const name = `t${t.id}_${k}${suffix}`;
        out.push(d.decl(name, e));
        return name;
      }),
    );
  }
  return { stmts, names };
}
